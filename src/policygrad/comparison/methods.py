"""Comparisons (``policygrad compare``, :func:`compare`): a study whose varied field is the method.

Methods: the policygrad algorithms (each with its preset for the environment), ``sb3:ALGO``
(Stable-Baselines3's dqn, ppo, a2c, sac, td3 with RL Baselines3 Zoo's hyperparameters,
:mod:`policygrad.comparison.zoo`; the optional extra ``policygrad[compare]``) and ``random`` (a uniform
random policy, the floor). Every method gets the same protocol: ``total_steps`` environment steps,
a deterministic evaluation at step 0, every ``eval_every`` steps and at the end, each on
``eval_episodes`` episodes of fresh environment copies reset from ``eval_seed``, ``eval_seed + 1``,
... (:func:`play_episodes`, the same episodes as the trainer's
:func:`~policygrad.algos.rollout.evaluation_episodes`), evaluation time kept off ``wall_seconds``.
Every method makes the environment with the same keyword arguments (``env_kwargs``, ``--env-kwargs``)
and acts under its action masks where it gives some (policygrad's algorithms and ``random`` always,
``sb3:ppo`` as sb3-contrib's ``MaskablePPO``; the other SB3 methods are refused on a masked
environment), and Dict observations reach SB3 through its ``MultiInputPolicy``
(:mod:`policygrad.comparison.observations`).
An evaluation happens at the first step at or past each multiple of ``eval_every`` that the method
reaches: a policygrad algorithm at an iteration boundary, SB3 every ``n_envs`` steps, ``random``
exactly; choose ``eval_every`` a multiple of every method's step (the spec notes when it is not).

The study directory is a sweep's (study.json, results.csv with a ``method`` column, runs/RUN_ID/
with evals.csv, report.md / report.html); study.json adds ``kind: compare``, ``methods`` (each
method's settings), ``shared`` and ``env_kwargs``. The runs go through :func:`policygrad.studies.runner.run_study`:
its worker processes, resume, failure handling and results. External runs (sb3, random) have no
checkpoints: killed, they start over.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from policygrad.algos import ALGORITHMS
from policygrad.comparison.observations import (
    MASKABLE,
    RandomPolicy,
    SB3MaskAdapter,
    mask_source,
    protocol_env,
    random_problem,
    sb3_observation_space,
    sb3_policy,
    sb3_problem,
    split_batch,
)
from policygrad.core.config import Config, check_json_mapping
from policygrad.core.envs import env_kwargs_for, env_spaces, make_env_fn, make_vec_env
from policygrad.core.errors import UserInputError
from policygrad.core.masks import MASKING_MODES, SOURCES
from policygrad.reporting.choices import DEFAULT_MIN_EFFECT, DEFAULT_TEST
from policygrad.run.files import write_json_atomic
from policygrad.run.logger import EVALS_COLUMNS, EVALS_FILE
from policygrad.studies.backends import Backend
from policygrad.studies.backends.run_task import EVAL_FILE
from policygrad.studies.grid import ExternalRun, GridRun, expand
from policygrad.studies.runner import StudyResult, run_study
from policygrad.studies.spec import DEFAULT_CURVE_POINTS, DEFAULT_EVAL_EPISODES, NAME, StudySpec, make_spec

SB3_ALGOS = ("dqn", "ppo", "a2c", "sac", "td3")
DISCRETE_ONLY, BOX_ONLY = ("dqn",), ("sac", "td3")
INSTALL = "pip install 'policygrad[compare]'"
EVAL_SEED = 10_000  # the default eval_seed of every policygrad config
SB3_SHARED = ("gamma", "learning_rate", "ent_coef", "gae_lambda", "vf_coef", "max_grad_norm")


def sb3_available() -> bool:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


# -- the evaluation protocol ----------------------------------------------------------------------------
Act = Callable[[Any, np.ndarray | None], np.ndarray]  # (observations, masks or None) -> actions, a batch


def play_episodes(act: Act, env_id: str, episodes: int, seed: int = EVAL_SEED) -> list[float]:
    """The returns of ``episodes`` whole episodes of ``env_id`` played by ``act`` (a batch of
    observations and of action masks -> a batch of actions: :func:`~policygrad.comparison.observations.split_batch`
    says what they are), on the trainer's evaluation episodes: ``min(episodes, 8)`` fresh copies, copy i
    reset from ``seed + i``, each playing its share (:func:`~policygrad.algos.rollout.evaluation_episodes`
    with another policy). The environment arguments and masking mode in effect apply
    (:func:`~policygrad.comparison.observations.protocol_env`)."""
    from policygrad.algos.rollout import split_quota

    envs = make_vec_env(env_id, min(episodes, 8))
    try:
        quota = np.asarray(split_quota(episodes, envs.num_envs))
        done = np.zeros_like(quota)
        obs, mask = split_batch(envs.reset(seed=seed))
        envs.pop_episodes()
        returns: list[float] = []
        while (done < quota).any():
            next_obs, _, _, _, _ = envs.step_arrays(np.asarray(act(obs, mask)))
            for episode in envs.pop_episodes():
                if done[episode.env_index] < quota[episode.env_index]:
                    done[episode.env_index] += 1
                    returns.append(float(episode.ret))
            obs, mask = split_batch(next_obs)
        return returns
    finally:
        envs.close()


class EvalWriter:
    """evals.csv (the trainer's columns) and eval.json of an external run, and its training clock
    (evaluations taken off)."""

    def __init__(self, run_dir: Path, protocol: Mapping[str, Any]) -> None:
        self.run_dir, self.protocol = Path(run_dir), protocol
        self.every = int(protocol["eval_every"])
        self.start, self.excluded = time.perf_counter(), 0.0
        self.next: float = 0
        self.last_step: int | None = None
        self.last: tuple[int, list[float]] | None = None
        with open(self.run_dir / EVALS_FILE, "w", newline="") as f:
            csv.writer(f).writerow(EVALS_COLUMNS)

    def due(self, step: int) -> bool:
        return step >= self.next

    def run(self, step: int, act: Act) -> None:
        clock, tick = time.perf_counter() - self.start - self.excluded, time.perf_counter()
        returns = play_episodes(act, self.protocol["env_id"], int(self.protocol["eval_episodes"]),
                                int(self.protocol["eval_seed"]))
        self.excluded += time.perf_counter() - tick
        x = np.asarray(returns)
        with open(self.run_dir / EVALS_FILE, "a", newline="") as f:
            csv.writer(f).writerow([step, f"{clock:.3f}", float(x.mean()), float(x.std()), float(x.min()),
                                    float(x.max()), len(x)])
        self.next = (step // self.every + 1) * self.every if self.every else math.inf
        self.last_step, self.last = step, (step, returns)

    def finish(self, step: int, act: Act) -> None:
        """The final evaluation (unless one was just made), then eval.json: the run is done."""
        if self.last_step != step:
            self.run(step, act)
        if self.last is None:  # run() above always records one; say so rather than fail on None
            raise RuntimeError(f"no evaluation was recorded before step {step}")
        x = np.asarray(self.last[1])
        data = {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max()),
                "episodes": len(x), "returns": [float(r) for r in x], "global_step": step,
                "deterministic": True, "seed": int(self.protocol["eval_seed"])}
        write_json_atomic(self.run_dir / EVAL_FILE, data)


# -- the external methods (run in the worker processes) -----------------------------------------------------
def run_random(run_dir: Path, settings: Mapping[str, Any], protocol: Mapping[str, Any]) -> None:
    """A uniform random policy (no learning), among the allowed actions where the environment masks
    them: evaluated at every mark, up to total_steps."""
    with protocol_env(protocol):
        _, space = env_spaces(protocol["env_id"])
        act = RandomPolicy(space, np.random.default_rng(int(protocol["seed"])))
        writer = EvalWriter(run_dir, protocol)
        total, every = int(protocol["total_steps"]), int(protocol["eval_every"])
        marks = [0] + (list(range(every, total, every)) if every else [])
        for step in marks:
            writer.run(step, act)
        writer.finish(total, act)


def _schedule(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress_remaining: progress_remaining * start
    return value


def sb3_training_env(env_id: str, n_envs: int, seed: int, masks: str | None = None) -> tuple[Any, str]:
    """SB3's vector env of ``n_envs`` training copies of ``env_id`` (made with the environment
    arguments in effect) and the SB3 policy class for it. Images: SB3's ``CnnPolicy`` on the copies
    policygrad's own agents learn from (for Atari ids, core/atari.py's training stack: the same
    frames, life loss and clipping as SB3's AtariWrapper), so that a comparison differs only in the
    learner. Dict observations: ``MultiInputPolicy``. Other observations: SB3's ``make_vec_env`` and
    ``MlpPolicy``, as before. ``masks``: the convention the environment gives masks by, offered to
    sb3-contrib's MaskablePPO as ``action_masks()`` (:class:`~policygrad.comparison.observations.SB3MaskAdapter`,
    which also takes a Dict's mask key off the observation); None: no masks read."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    space = env_spaces(env_id)[0]
    adapt = masks is not None or sb3_observation_space(space) is not space
    policy = sb3_policy(sb3_observation_space(space))
    if policy != "CnnPolicy":
        wrapper = functools.partial(SB3MaskAdapter, source=masks) if adapt else None
        return sb3_vec_env(make_env_fn(env_id), n_envs=n_envs, seed=seed, wrapper_class=wrapper), policy
    made = make_env_fn(env_id, training=True)
    env = DummyVecEnv([(lambda: SB3MaskAdapter(made(), masks)) if adapt else made for _ in range(n_envs)])
    env.seed(seed)  # copy i resets from seed + i, as SB3's make_vec_env seeds its copies
    return env, policy


def quiet_sb3_logger(model: Any) -> None:
    """Give an SB3 model a logger that writes nothing: without one, every ``learn()`` makes an empty
    ``SB3-<time>`` folder in the system's temporary directory (SB3's ``configure`` with no folder), which
    our runs never read (their numbers are our own evaluations)."""
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))


def run_sb3(run_dir: Path, settings: Mapping[str, Any], protocol: Mapping[str, Any]) -> None:
    """Train Stable-Baselines3's ``settings['algo']`` with ``settings['hyperparameters']``, pausing at
    the evaluation marks (a callback) to evaluate the deterministic policy; stops at total_steps."""
    with protocol_env(protocol):
        _run_sb3(run_dir, settings, protocol)


def _run_sb3(run_dir: Path, settings: Mapping[str, Any], protocol: Mapping[str, Any]) -> None:
    import stable_baselines3 as sb3
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    algo, params = settings["algo"], dict(settings["hyperparameters"])
    masks = settings.get("masks")  # the convention of a masked environment: sb3-contrib's MaskablePPO
    seed, total = int(protocol["seed"]), int(protocol["total_steps"])
    writer = EvalWriter(run_dir, protocol)
    n_envs = int(params.pop("n_envs", 1))
    for key in ("learning_rate", "clip_range"):
        if key in params:
            params[key] = _schedule(params[key])
    noise_type, noise_std = params.pop("noise_type", None), params.pop("noise_std", None)
    env, policy = sb3_training_env(protocol["env_id"], n_envs, seed, masks)
    if noise_type == "normal":
        from stable_baselines3.common.noise import NormalActionNoise

        dims = int(np.prod(env.action_space.shape or (1,)))
        params["action_noise"] = NormalActionNoise(np.zeros(dims), float(noise_std) * np.ones(dims))
    if masks is not None:
        import sb3_contrib

        learner = getattr(sb3_contrib, MASKABLE[algo])
    else:
        learner = getattr(sb3, algo.upper())
    model: Any = learner(policy, env, seed=seed, device="cpu", verbose=0, **params)
    quiet_sb3_logger(model)

    def act(obs: Any, mask: np.ndarray | None) -> np.ndarray:
        if masks is not None:  # the evaluation's masks (all allowed where a copy only resets)
            return model.predict(obs, deterministic=True, action_masks=mask)[0]
        return model.predict(obs, deterministic=True)[0]

    class Marks(BaseCallback):
        def _on_step(self) -> bool:
            if writer.due(self.num_timesteps):
                writer.run(self.num_timesteps, act)
            return bool(self.num_timesteps < total)

    writer.run(0, act)
    model.learn(total_timesteps=total, callback=Marks(), progress_bar=False)
    writer.finish(int(model.num_timesteps), act)
    env.close()


# -- the spec -------------------------------------------------------------------------------------------------
@dataclass
class CompareSpec(StudySpec):
    """A comparison: ``vary = {"method": [...]}``; ``methods``: each method's settings as run;
    ``shared``: the settings given to every method (``--shared``); ``env_kwargs``: the environment's
    keyword arguments, every method's (``--env-kwargs``)."""

    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:  # made by make_compare_spec, which checks everything
        pass

    def environment_kwargs(self) -> dict[str, Any]:
        return dict(self.env_kwargs)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update({"kind": "compare", "env_kwargs": self.env_kwargs, "methods": self.methods,
                     "shared": self.shared})
        return json.loads(json.dumps(data))


@dataclass(frozen=True)
class Comparison:
    spec: CompareSpec
    runs: list[GridRun]


def parse_methods(methods: str | Sequence[str]) -> list[str]:
    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    if not names:
        raise UserInputError("no methods: expected e.g. --methods ppo,sb3:ppo,random")
    twice = next((m for i, m in enumerate(names) if m in names[:i]), None)
    if twice:
        raise UserInputError(f"method {twice} is listed twice")
    return names


def make_comparison(env_id: str, methods: str | Sequence[str], seeds: int | Sequence[int] = 5,
                    total_steps: int = 100_000, *, eval_every: int | None = None,
                    eval_episodes: int = DEFAULT_EVAL_EPISODES, name: str | None = None,
                    shared: Mapping[str, Any] | None = None, test: str = DEFAULT_TEST,
                    min_effect: float = DEFAULT_MIN_EFFECT, env_kwargs: Mapping[str, Any] | None = None) -> Comparison:
    """Check every method against ``env_id`` (made with ``env_kwargs``) and build every run;
    UserInputError (one line per method refused) before anything runs."""
    env_kwargs = dict(env_kwargs or {})
    check_json_mapping("env_kwargs", env_kwargs)
    shared = dict(shared or {})
    if "env_kwargs" in shared:
        raise UserInputError("--shared env_kwargs: give the environment's arguments with --env-kwargs (every method "
                             "gets them, the SB3 and random ones too)")
    with env_kwargs_for(env_id, env_kwargs):
        return _make_comparison(env_id, parse_methods(methods), seeds, total_steps, eval_every, eval_episodes, name,
                                shared, test, min_effect, env_kwargs)


def _make_comparison(env_id: str, names: list[str], seeds: int | Sequence[int], total_steps: int,
                     eval_every: int | None, eval_episodes: int, name: str | None, shared: dict[str, Any],
                     test: str, min_effect: float, env_kwargs: dict[str, Any]) -> Comparison:
    import gymnasium as gym

    if eval_every is None:
        eval_every = total_steps // DEFAULT_CURVE_POINTS if isinstance(total_steps, int) else 0
    base = make_spec("ppo", env_id, {}, seeds, total_steps, eval_every=eval_every, eval_episodes=eval_episodes,
                     test=test, min_effect=min_effect)
    name = name or f"compare_{base.name.split('_', 1)[1].rsplit('_', 1)[0]}"
    if not NAME.fullmatch(name):
        raise UserInputError(f"study name {name!r} is invalid: expected letters, digits and . _ = + , -")
    obs_space, space = env_spaces(env_id)
    discrete, box = isinstance(space, gym.spaces.Discrete), isinstance(space, gym.spaces.Box)
    refused: list[str] = []
    settings: dict[str, dict[str, Any]] = {}
    runs: list[GridRun] = []
    notes: list[str] = []
    if any(m.startswith("sb3:") for m in names) and not sb3_available():
        raise UserInputError(f"the sb3:* methods need Stable-Baselines3: {INSTALL}")
    masking = shared.get("action_masking", "auto")  # the other methods obey masks as policygrad's do
    if masking not in MASKING_MODES:
        raise UserInputError(f"--shared action_masking={masking!r} is invalid: expected one of "
                             f"{' | '.join(MASKING_MODES)}")
    external = any(m == "random" or m.startswith("sb3:") for m in names)
    source = mask_source(env_id) if external and masking == "auto" else None
    protocol = {"env_id": env_id, "total_steps": total_steps, "eval_every": eval_every,
                "eval_episodes": eval_episodes, "eval_seed": EVAL_SEED, "env_kwargs": env_kwargs,
                "action_masking": masking}
    fixed = {**shared, "env_kwargs": env_kwargs} if env_kwargs else shared
    for method in names:
        if method in ALGORITHMS:
            try:
                spec = make_spec(method, env_id, {}, base.seeds, total_steps, eval_every=eval_every,
                                 eval_episodes=eval_episodes, fixed=fixed)
                grid = expand(spec)
            except ValueError as exc:
                refused.append(f"{method} cannot run on {env_id}: {exc}")
                continue
            config: Config | None = grid[0].config
            if config is None:  # expand() gives policygrad methods a config; anything else is a bug here
                raise RuntimeError(f"{method}: the study grid holds no policygrad config")
            settings[method] = {"kind": "policygrad", "source": "policygrad preset for the environment (else the "
                                "algorithm's defaults)", "config": json.loads(json.dumps(config.to_dict()))}
            per_step = getattr(config, "num_envs", 1) * getattr(config, "num_steps", 1)
            if eval_every and method in ("a2c", "ppo") and eval_every % per_step:
                notes.append(f"{method} evaluates at iteration boundaries ({per_step} steps): eval_every {eval_every} "
                             "is not a multiple, so its step marks differ from the other methods'")
            if method == "reinforce":
                notes.append("reinforce's steps are the steps of its batches' episodes: copies that finished their "
                             "share of an update's episodes keep stepping until the slowest is done, and those "
                             "steps are discarded and not counted (perf/discarded_steps in metrics.csv), so "
                             "total_steps is the same used experience for every method")
            runs += [GridRun(f"method={method}__seed={run.seed}", {"method": method}, run.seed, run.config)
                     for run in grid]
        elif method == "random":
            problem = random_problem(space)
            if problem is not None:
                refused.append(f"random cannot run on {env_id}: {problem}")
                continue
            masked = " among the allowed actions (the environment's masks)" if source else ""
            settings[method] = {"kind": "random", "source": f"a uniform random policy{masked} (no learning)"}
            runs += [GridRun(f"method=random__seed={s}", {"method": method}, s, None,
                             ExternalRun(run_random, {}, {**protocol, "seed": s})) for s in base.seeds]
        elif method.startswith("sb3:") and method[4:] in SB3_ALGOS:
            algo = method[4:]
            if algo in DISCRETE_ONLY and not discrete or algo in BOX_ONLY and not box or not (discrete or box):
                need = "a Discrete" if algo in DISCRETE_ONLY else "a Box" if algo in BOX_ONLY else "a Discrete or Box"
                refused.append(f"{method} cannot run on {env_id}: it needs {need} action space, not "
                               f"{type(space).__name__}")
                continue
            problem = sb3_problem(algo, obs_space, source, masking)
            if problem is not None:
                refused.append(f"{method} cannot run on {env_id}: {problem}")
                continue
            from policygrad.comparison.zoo import zoo_settings

            params, source_text = zoo_settings(algo, env_id)
            applied = {k: v for k, v in shared.items() if k in SB3_SHARED}
            ignored = sorted(set(shared) - set(applied) - {"action_masking"})
            if ignored:
                notes.append(f"{method}: shared setting(s) {', '.join(ignored)} not applied (no SB3 equivalent here)")
            params.update(applied)
            settings[method] = {"kind": "sb3", "algo": algo, "source": source_text, "hyperparameters": params}
            run_settings: dict[str, Any] = {"algo": algo, "hyperparameters": params}
            policy = sb3_policy(sb3_observation_space(obs_space))
            if policy == "MultiInputPolicy":  # (the Mlp and Cnn policies go without saying, as before)
                settings[method]["policy"] = policy
            if source:  # sb3-contrib's maskable version, acting under the masks as every other method does
                settings[method].update(learner=f"sb3_contrib.{MASKABLE[algo]}", masks=SOURCES[source])
                run_settings["masks"] = source
            n_envs = int(params.get("n_envs", 1))
            if eval_every and eval_every % n_envs:
                notes.append(f"{method} steps {n_envs} environments at a time: eval_every {eval_every} is not a "
                             "multiple, so its step marks differ from the other methods'")
            runs += [GridRun(f"method={method.replace(':', '_')}__seed={s}", {"method": method}, s, None,
                             ExternalRun(run_sb3, run_settings, {**protocol, "seed": s}))
                     for s in base.seeds]
        else:
            refused.append(f"unknown method {method!r}: expected one of {', '.join(ALGORITHMS)}, "
                           f"{', '.join('sb3:' + a for a in SB3_ALGOS)}, random")
    if refused:
        raise UserInputError("\n".join(refused))
    spec = CompareSpec(name=name, algo="compare", env_id=env_id, vary={"method": names}, seeds=base.seeds,
                       total_steps=total_steps, eval_every=eval_every, eval_episodes=eval_episodes, fixed={},
                       notes=notes, methods=settings, shared=shared, test=base.test, min_effect=base.min_effect,
                       env_kwargs=env_kwargs)
    return Comparison(spec, runs)


def compare(env_id: str = "CartPole-v1", methods: str | Sequence[str] = "ppo,a2c,random",
            seeds: int | Sequence[int] = 5, total_steps: int = 100_000, *, eval_every: int | None = None,
            eval_episodes: int = DEFAULT_EVAL_EPISODES, workers: int | None = None, name: str | None = None,
            out_dir: str | Path = "studies", shared: Mapping[str, Any] | None = None, resume: bool = False,
            backend: Backend | None = None, verbose: bool = True, test: str = DEFAULT_TEST,
            min_effect: float = DEFAULT_MIN_EFFECT, env_kwargs: Mapping[str, Any] | None = None) -> StudyResult:
    """Compare ``methods`` on ``env_id`` under one protocol, into ``OUT_DIR/NAME`` (see the module).
    ``env_kwargs``: the environment's keyword arguments, every method's (recorded in study.json).

        result = pg.compare("CartPole-v1", "reinforce,a2c,ppo,sb3:dqn,sb3:ppo,random", seeds=10,
                            total_steps=100_000)
    """
    comparison = make_comparison(env_id, methods, seeds, total_steps, eval_every=eval_every,
                                 eval_episodes=eval_episodes, name=name, shared=shared, test=test,
                                 min_effect=min_effect, env_kwargs=env_kwargs)
    return run_study(comparison.spec, out_dir, workers, resume=resume, backend=backend,
                     echo=print if verbose else None, runs=comparison.runs)
