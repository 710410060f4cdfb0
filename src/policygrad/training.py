"""``train(config)``: check the config against this machine, run the training loop
(:mod:`policygrad.run.trainer`), then evaluate the agent deterministically and draw its learning
curve into the run directory."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from policygrad.agent import Agent
from policygrad.core.config import Config, check_bool, reject_type
from policygrad.core.envs import env_kwargs_for
from policygrad.core.errors import UserInputError
from policygrad.core.masks import masking_for
from policygrad.core.networks import PolicyNetwork
from policygrad.core.user_network import class_spec, network_class
from policygrad.env_check import preflight
from policygrad.evaluation import EvalResult, evaluate
from policygrad.plots import plot_runs
from policygrad.run.configure import check_runnable
from policygrad.run.files import write_json_atomic
from policygrad.run.resume import ResumePoint, find_resume_point, resume_config, resume_run_dir
from policygrad.run.trainer import RunOutcome, lock_run_dir, run_training


@dataclass
class TrainResult:
    run_dir: Path
    agent: Agent
    evaluation: EvalResult | None
    global_step: int
    seconds: float


def train(config: Config | None = None, run_dir: str | Path | None = None, overwrite: bool = False,
          resume_from: str | Path | None = None, check_env: bool = True, trust_env: bool = False,
          network: nn.Module | None = None) -> TrainResult:
    """Train ``config``'s algorithm, write its run directory and evaluate it deterministically.

    ``resume_from`` (a run directory, or one of its checkpoint folders) continues a stopped run in its
    own directory instead; ``config`` may then be None (the checkpoint's) or differ from the
    checkpoint's only in how long the run goes and what it records (:data:`policygrad.run.resume.RESUME_MAY_CHANGE`).
    ``check_env`` first plays a few steps of the environment to catch API and value errors
    (:mod:`policygrad.env_check`). ``trust_env`` allows a checkpoint to name a ``module:attr``
    environment or ``network`` (which imports and runs that module).

    ``network``: your own ``torch.nn.Module`` as the policy (and value) network, its contract in
    :mod:`policygrad.core.user_network`; the run's config records its class in ``network``
    (``module:Class``), and its weights go into the checkpoints like the built-in network's.
    """
    overwrite = check_bool("overwrite", overwrite)
    check_env = check_bool("check_env", check_env)
    trust_env = check_bool("trust_env", trust_env)
    for name, given in (("run_dir", run_dir), ("resume_from", resume_from)):
        if given is not None and not isinstance(given, (str, Path)):
            reject_type(name, given, "str or pathlib.Path")
    if resume_from is None:
        if not isinstance(config, Config):
            reject_type("config", config, "a config such as pg.make_config('ppo', env_id='CartPole-v1') or "
                        "pg.PPOConfig()")
        return _train(config, run_dir, overwrite, None, check_env, network)
    if config is not None and not isinstance(config, Config):
        reject_type("config", config, "a config, or None to resume with the checkpoint's")
    path = resume_run_dir(resume_from)
    if run_dir is not None and Path(run_dir).resolve() != path.resolve():
        raise UserInputError(f"run_dir={str(run_dir)!r}: a resumed run continues in its own directory "
                             f"({path}); copy that directory first to branch off it")
    # The point is found under the run directory's lock, held to the end of the run (run_training takes
    # it again, reentrantly): no other process can write or delete a checkpoint in between.
    with lock_run_dir(path):
        point = find_resume_point(resume_from, trust_env)
        return _train(resume_config(point, config), None, False, point, check_env, network)


def _train(config: Config, run_dir: str | Path | None, overwrite: bool, point: ResumePoint | None,
           check_env: bool, network: nn.Module | None) -> TrainResult:
    """:func:`train` once the config (and the resume ``point``, if any) is known."""
    # every copy of the env: training, evaluations (its arguments, and whether its action masks are read)
    with env_kwargs_for(config.env_id, config.env_kwargs), masking_for(config.action_masking):
        return _train_with_env_kwargs(config, run_dir, overwrite, point, check_env, network)


def _train_with_env_kwargs(config: Config, run_dir: str | Path | None, overwrite: bool, point: ResumePoint | None,
                           check_env: bool, network: nn.Module | None) -> TrainResult:
    check_runnable(config)
    config = with_network(config, network)
    warn_if_main(config)
    if check_env:
        preflight(config.env_id)
    evaluated: list[tuple[Agent, EvalResult]] = []

    def finish(outcome: RunOutcome) -> None:  # under the run directory's lock, like the training
        agent = Agent(outcome.network, config, outcome.device)
        evaluation = evaluate(agent, episodes=config.eval_episodes, deterministic=True, seed=config.eval_seed)
        write_json_atomic(outcome.run_dir / "eval.json", evaluation.to_dict())
        plot_runs([outcome.run_dir], outcome.run_dir / "learning_curve.png")
        evaluated.append((agent, evaluation))

    outcome = run_training(config, run_dir, overwrite, point, module=network, finish=finish)
    agent, evaluation = evaluated[0]
    return TrainResult(outcome.run_dir, agent, evaluation, outcome.global_step, outcome.seconds)


def warn_if_main(config: Config) -> None:
    """Warn when the run's network or environment is defined in ``__main__`` (a script, a notebook):
    another process cannot import it by name, so the run can be loaded only by passing the object."""
    if config.network.startswith("__main__:"):
        warnings.warn(f"network={config.network!r} is defined in __main__ (your script or notebook): no other "
                      "process can import it by name, so this run can be loaded only by passing the network, "
                      "pg.load(run_dir, network=YourClass(...)); put the class in a .py module to load it by name",
                      UserWarning, stacklevel=4)
    if config.env_id.startswith("__main__:"):
        warnings.warn(f"env_id={config.env_id!r} is defined in __main__ (your script or notebook): this run can be "
                      "loaded, evaluated or resumed only where that name is defined again (its script, with "
                      "trust_env=True); put the environment in a .py module to use the run anywhere",
                      UserWarning, stacklevel=4)


def with_network(config: Config, network: nn.Module | None) -> Config:
    """``config`` with ``network`` naming the class of the module given (checked against a class it
    names already); without a module, the class the config names is imported now, before a run starts."""
    if network is None:
        if config.network:
            network_class(config.network)
        return config
    if not isinstance(network, nn.Module) or isinstance(network, PolicyNetwork):
        raise UserInputError(f"network: expected your own torch.nn.Module, not {type(network).__name__}")
    spec = class_spec(type(network))
    if config.network and config.network != spec:
        raise UserInputError(f"network={config.network!r} names another class than the module given ({spec}): "
                             "leave the config's network empty or give an instance of that class")
    return config if config.network else config.replace(network=spec)
