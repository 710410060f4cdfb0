"""``diagnose_gradients``: every estimator's policy gradient on the same episodes, at a fixed policy.

The policy is a run's (its final checkpoint, or one of its periodic ones), a network you pass, or a
fresh one as ``policygrad train ppo`` would build it for the environment. B independent batches of M
whole episodes are played with it; on each batch, every estimator's gradient is computed
(:mod:`~policygrad.diagnostics.estimators`, :mod:`~policygrad.diagnostics.gradients`) and the
statistics compare them (:mod:`~policygrad.diagnostics.statistics`). Nothing is trained and the
policy does not change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from policygrad.agent import load
from policygrad.core.config import Config, check_json_mapping
from policygrad.core.envs import check_env_id, env_kwargs_for, env_spaces
from policygrad.core.errors import UserInputError
from policygrad.core.masks import masking_for
from policygrad.core.networks import PolicyNetwork, mlp_sizes
from policygrad.core.user_network import build_network
from policygrad.diagnostics.critic import Critic, explained_variance, fit_critic, run_critic_problem
from policygrad.diagnostics.episodes import EpisodeBatch, collect_batches
from policygrad.diagnostics.estimators import DEFAULT_ESTIMATORS, Estimator, parse_estimators
from policygrad.diagnostics.gradients import (
    MAX_BYTES,
    actor_parameters,
    batch_signals,
    episode_gradients,
    estimator_weights,
)
from policygrad.diagnostics.report import write_report
from policygrad.diagnostics.result import GradientDiagnosis
from policygrad.diagnostics.statistics import analyse
from policygrad.run.checkpoint import CHECKPOINTS_DIR, STEP_NAME, checkpoint_to_load, read_manifest
from policygrad.run.configure import make_config

MIN_BATCHES = 4  # the covariance, the leave-one-out reference and the sign-flip test need several
MIN_EPISODES = 2  # the mean baseline leaves each episode out of its batch's mean
BATCHES, PURPOSE_CRITIC = 0, 1  # the two uses of random streams (diagnosed batches, the critic's episodes)
CRITICS = ("auto", "run", "fit")


@dataclass
class Policy:
    """The policy diagnosed: its network, the config it came with, and where it came from."""

    network: PolicyNetwork
    config: Config
    source: str
    global_step: int | None = None


def _count(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UserInputError(f"{name}={value!r} is too few: expected an integer >= {minimum}")
    return value


def refuse_recurrent(config: Config) -> None:
    """The estimators' per-episode gradients are computed on flat transitions, without a recurrent state:
    a recurrent policy is refused in one line rather than diagnosed wrongly."""
    if config.recurrent != "none":
        raise UserInputError(f"diagnose gradients measures feed-forward policies; this one is recurrent "
                             f"(recurrent={config.recurrent!r}): diagnose a run or an --env whose PPO is feed-forward")


def load_policy(env_id: str | None, run: str | Path | None = None, checkpoint: str | None = None,
                network: PolicyNetwork | None = None, seed: int = 0, trust_env: bool = False,
                encoder: str | None = None, env_kwargs: dict | None = None) -> Policy:
    """The policy to diagnose: ``run``'s final checkpoint (or ``checkpoint``, a name in its
    ``checkpoints/`` such as ``step_000020480``, or a checkpoint folder), ``network``, or a fresh
    network for ``env_id`` built from ``seed`` as ``policygrad train ppo`` would build it, with the
    ``encoder`` asked for (default: the config's, ``auto``). ``env_kwargs``: the environment's
    keyword arguments (a run's are its own: given, they must be the same)."""
    if env_kwargs is not None:
        check_json_mapping("env_kwargs", env_kwargs)
    if encoder is not None and (run is not None or network is not None):
        # a run's or a user's network already has its encoder: choosing another would diagnose a different policy
        raise UserInputError(f"encoder={encoder!r} applies to a fresh network only: leave it out with a run "
                             "or a network")
    if run is not None:
        if network is not None:
            raise UserInputError("pass a run or a network, not both")
        folder = Path(run)
        if checkpoint is not None:
            if not STEP_NAME.fullmatch(checkpoint):
                raise UserInputError(f"checkpoint {checkpoint!r} is not a checkpoint name (step_NNNNNNNNN: see "
                                     f"RUN_DIR/{CHECKPOINTS_DIR}/)")
            folder = folder / CHECKPOINTS_DIR / checkpoint
            if not folder.is_dir():
                raise UserInputError(f"{folder}: no such checkpoint")
        folder = checkpoint_to_load(folder)
        agent = load(folder, trust_env=trust_env)
        if env_id is not None and env_id != agent.config.env_id:
            raise UserInputError(f"the run {run} trained on {agent.config.env_id}, not on {env_id}: pass its "
                                 "environment or leave --env out")
        if env_kwargs is not None and env_kwargs != agent.config.env_kwargs:
            raise UserInputError(f"the run {run} trained with env_kwargs {agent.config.env_kwargs}, not {env_kwargs}: "
                                 "its episodes are played with its own; leave --env-kwargs out")
        step = read_manifest(folder)["counters"].get("global_step")
        refuse_recurrent(agent.config)
        return Policy(agent.network, agent.config, f"{agent.config.algo} run {folder}",
                      step if isinstance(step, int) else None)
    if env_id is None:
        raise UserInputError("give an environment (--env ENV) or a run (--run RUN_DIR)")
    check_env_id(env_id)
    chosen = {} if encoder is None else {"encoder": encoder}
    config = make_config("ppo", env_id=env_id, seed=seed, progress=False, tensorboard=False,
                         env_kwargs=env_kwargs or {}, **chosen)
    if network is None:
        refuse_recurrent(config)
    if network is not None:
        return Policy(network, config, "the network passed in")
    with env_kwargs_for(env_id, config.env_kwargs):
        obs_space, act_space = env_spaces(env_id)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fresh = build_network(config, obs_space, act_space, with_value=False)
    return Policy(fresh, config, f"a fresh network (PPO's for {env_id}, seed {seed})", 0)


def make_critic(policy: Policy, env_id: str, choice: str, gamma: float, episodes: int, seed: int,
                needed: bool) -> tuple[Critic | None, list[str]]:
    """The critic (None when no estimator needs one) and notes saying which it is."""
    if choice not in CRITICS:
        raise UserInputError(f"critic={choice!r} is invalid: expected one of {' | '.join(CRITICS)}")
    if not needed:
        return None, []
    problem = run_critic_problem(policy.network, policy.config)
    if choice == "run" and problem:
        raise UserInputError(f"critic=run: {problem}")
    if choice != "fit" and problem is None:
        if math.isclose(policy.config.gamma, gamma):
            return Critic(policy.network.value, "the run's own critic"), []
        problem = f"the run's critic was trained with gamma={policy.config.gamma:g}, not {gamma:g}"
        if choice == "run":
            raise UserInputError(f"critic=run: {problem}")
    why = f" ({problem})" if problem and choice == "auto" else ""
    fit_batches = collect_batches(policy.network, env_id, 1, episodes, seed, purpose=PURPOSE_CRITIC)
    obs_space, act_space = policy.network.observation_space, policy.network.action_space
    hidden = mlp_sizes(policy.config) if hasattr(policy.config, "hidden_sizes") else (64, 64)
    fitted = fit_critic(fit_batches, gamma, obs_space, act_space, hidden_sizes=hidden, seed=seed,
                        encoder=str(getattr(policy.config, "encoder", "auto")))
    steps = int(sum(eb.lengths.sum() for eb in fit_batches))
    source = f"a critic fitted here on {episodes} separate episodes ({steps} steps) of the same policy{why}"
    return Critic(fitted, source), [f"Critic: {source}."]


def diagnose_gradients(env_id: str | None = None, run: str | Path | None = None, checkpoint: str | None = None,
                       estimators: Sequence[str | Estimator] | str = DEFAULT_ESTIMATORS, batches: int = 32,
                       batch_episodes: int = 8, seed: int = 0, gamma: float | None = None, cosine: float = 0.9,
                       critic: str = "auto", critic_episodes: int | None = None,
                       network: PolicyNetwork | None = None, trust_env: bool = False,
                       out: str | Path | None = None, encoder: str | None = None,
                       env_kwargs: dict | None = None) -> GradientDiagnosis:
    """Every estimator's policy gradient on ``batches`` batches of ``batch_episodes`` episodes at a
    fixed policy, and their statistics (see :mod:`policygrad.diagnostics`). ``gamma``: the discount
    (default: the run's, or the PPO preset's for a fresh network); ``cosine``: the target of
    "episodes for cosine"; ``critic``: auto (the run's critic if usable, else one fitted on
    ``critic_episodes`` separate episodes, default batches * batch_episodes / 4) | run | fit.
    ``out``: also write the report there (:func:`policygrad.diagnostics.report.write_report`).
    ``encoder``: a fresh network's encoder (``auto`` | ``nature`` | ``impala`` | ``mlp``).
    ``env_kwargs``: the environment's keyword arguments (a run's: its own). Dict/Tuple observations
    and action masks are diagnosed as the policy acts on them (log-probabilities over the allowed
    actions)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # rows of one episode at a time: more threads only wait on each other
    try:
        return _diagnose(env_id, run, checkpoint, estimators, batches, batch_episodes, seed, gamma, cosine, critic,
                         critic_episodes, network, trust_env, out, encoder, env_kwargs)
    finally:
        torch.set_num_threads(threads)


def _diagnose(env_id: str | None, run: str | Path | None, checkpoint: str | None,
              estimators: Sequence[str | Estimator] | str, batches: int, batch_episodes: int, seed: int,
              gamma: float | None, cosine: float, critic: str, critic_episodes: int | None,
              network: PolicyNetwork | None, trust_env: bool, out: str | Path | None,
              encoder: str | None = None, env_kwargs: dict | None = None) -> GradientDiagnosis:
    _count("batches", batches, MIN_BATCHES)
    _count("batch_episodes", batch_episodes, MIN_EPISODES)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UserInputError(f"seed={seed!r} is invalid: expected an integer >= 0")
    if not isinstance(cosine, (int, float)) or not 0.0 < cosine < 1.0:
        raise UserInputError(f"cosine={cosine!r} is invalid: expected a number in (0, 1), e.g. 0.9")
    policy = load_policy(env_id, run, checkpoint, network, seed, trust_env, encoder, env_kwargs)
    env_id = policy.config.env_id if env_id is None else env_id
    # every episode is played on the environment the policy acts in: its arguments, its masks
    with env_kwargs_for(env_id, policy.config.env_kwargs), masking_for(policy.config.action_masking):
        return _diagnose_policy(policy, env_id, estimators, batches, batch_episodes, seed, gamma, cosine, critic,
                                critic_episodes, out)


def _diagnose_policy(policy: Policy, env_id: str, estimators: Sequence[str | Estimator] | str, batches: int,
                     batch_episodes: int, seed: int, gamma: float | None, cosine: float, critic: str,
                     critic_episodes: int | None, out: str | Path | None) -> GradientDiagnosis:
    gamma = policy.config.gamma if gamma is None else gamma
    if not isinstance(gamma, (int, float)) or not 0.0 <= gamma <= 1.0:
        raise UserInputError(f"gamma={gamma!r} is invalid: expected a number in [0, 1]")
    chosen = parse_estimators(estimators, vars(policy.config))
    critic_episodes = max(MIN_EPISODES, batches * batch_episodes // 4) if critic_episodes is None else critic_episodes
    _count("critic_episodes", critic_episodes, MIN_EPISODES)
    net = policy.network
    params = actor_parameters(net)
    names = [n for n, p in net.named_parameters() if any(p is q for q in params)]
    size = len(chosen) * batches * batch_episodes * sum(p.numel() for p in params) * 4
    if size > MAX_BYTES:
        raise UserInputError(f"{len(chosen)} estimators x {batches * batch_episodes} episodes x "
                             f"{sum(p.numel() for p in params)} parameters need {size / 2**30:.1f} GiB of gradients: "
                             "use fewer batches, episodes or estimators")
    needs_critic = any(e.needs_critic for e in chosen)
    critic_model, notes = make_critic(policy, env_id, critic, float(gamma), critic_episodes, seed, needs_critic)
    if critic_model is not None and not notes:
        notes.append(f"Critic: {critic_model.source}.")

    collected: list[EpisodeBatch] = collect_batches(net, env_id, batches, batch_episodes, seed, purpose=BATCHES)
    grads = []
    value = critic_model.value if critic_model is not None else None
    for eb in collected:
        signals = batch_signals(eb, value, float(gamma))
        grads.append(episode_gradients(net, params, eb, estimator_weights(signals, chosen)))
    x = torch.stack(grads, dim=1)  # (E, B, M, P)
    stats = analyse(x, [e.name for e in chosen], [e.unbiased for e in chosen], cosine)
    returns_ = np.concatenate([eb.returns for eb in collected])
    lengths = np.concatenate([eb.lengths for eb in collected])
    ev = explained_variance(critic_model, collected, float(gamma)) if critic_model is not None else math.nan
    if critic_model is not None:
        notes.append(f"The critic explains {ev:.2f} of the variance of the discounted returns of the diagnosed "
                     "episodes (1: all of it; the critic's estimators are biased where it errs).")
    mean_gradients = {e.name: x[i].reshape(-1, x.shape[-1]).mean(0) for i, e in enumerate(chosen)}
    diagnosis = GradientDiagnosis(
        env_id=env_id, source=policy.source, global_step=policy.global_step, batches=batches,
        batch_episodes=batch_episodes, seed=seed, gamma=float(gamma), cosine_target=float(cosine),
        critic=critic_model.source if critic_model is not None else "none (no estimator needs one)",
        critic_explained_variance=ev, return_mean=float(returns_.mean()), return_sd=float(returns_.std(ddof=1)),
        length_mean=float(lengths.mean()), parameter_names=names, stats=stats, mean_gradients=mean_gradients,
        notes=notes, env_kwargs=dict(policy.config.env_kwargs))
    if out is not None:
        write_report(diagnosis, out)
    return diagnosis
