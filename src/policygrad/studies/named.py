"""The named studies (``policygrad study KIND --algo ALGO --env ENV``): for each question people ask
about policy gradients, a grid that answers it for the algorithm at hand, centred on the values the
run would otherwise use (the preset's for the environment, else the algorithm's defaults).

=============== ==================================================================================
lr              learning_rate: 4 log-spaced values, half a decade apart, the current one third
gamma           gamma: 0.9, 0.95, 0.98, 0.99, 0.999
architecture    hidden_sizes: 32, 64x64, 256x256, 64x64x64
batch           the data per update: episodes_per_update (REINFORCE; num_envs follows it), num_envs
                (one-step actor-critic: one transition per copy), num_steps (A2C, A3C; PPO with
                num_minibatches changed along so that the minibatch size stays the same)
entropy         ent_coef: 0, 0.001, 0.01, 0.1
reward-norm     reward_norm: none, scale, standardize, popart, minus what the algorithm refuses;
                standardize with norm_adv on (PPO) runs with norm_adv off instead
=============== ==================================================================================

Each study says in its notes what it changed or left out, and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policygrad.core.config import Config
from policygrad.core.errors import UserInputError
from policygrad.reporting.choices import DEFAULT_MIN_EFFECT, DEFAULT_TEST
from policygrad.reporting.formatting import format_value
from policygrad.run.configure import make_config
from policygrad.studies.runner import StudyResult, run_study
from policygrad.studies.spec import DEFAULT_EVAL_EPISODES, StudySpec, default_name, make_spec

KINDS = ("lr", "gamma", "architecture", "batch", "entropy", "reward-norm")
SCALES = (0.25, 0.5, 1.0, 2.0)  # of the current batch quantity


def _two_digits(x: float) -> float:
    return float(f"{x:.2g}")


def _scaled(base: int) -> list[int]:
    return sorted({max(1, round(base * s)) for s in SCALES})


def _divisor_near(n: int, target: float) -> int:
    """The divisor of ``n`` closest to ``target`` (at least 1)."""
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - target), d))


def named_grid(kind: str, base: Config) -> tuple[dict[str, list[Any]], list[dict[str, dict[str, Any]]], list[str]]:
    """``(vary, adjust, notes)`` of study ``kind`` around the config ``base``."""
    algo = base.algo
    if kind == "lr":
        lr = base.learning_rate
        values = sorted([_two_digits(lr * 10 ** (k / 2)) for k in (-2, -1, 1)] + [lr])
        return {"learning_rate": values}, [], [f"learning_rate {format_value(lr)} is the current value"]
    if kind == "gamma":
        return {"gamma": [0.9, 0.95, 0.98, 0.99, 0.999]}, [], []
    if kind == "architecture":
        if base.network:
            raise UserInputError(f"the architecture study varies the built-in MLP's hidden_sizes; "
                                 f"network={base.network!r} is your own module")
        return {"hidden_sizes": [(32,), (64, 64), (256, 256), (64, 64, 64)]}, [], []
    if kind == "entropy":
        return {"ent_coef": [0.0, 0.001, 0.01, 0.1]}, [], []
    if kind == "batch":
        return _batch_grid(base)
    if kind == "reward-norm":
        return _reward_norm_grid(base)
    raise UserInputError(f"{kind!r} is not a named study: expected one of {' | '.join(KINDS)}"
                         f" (algo {algo})")


def _batch_grid(base: Any) -> tuple[dict[str, list[Any]], list[dict[str, dict[str, Any]]], list[str]]:
    algo = base.algo
    if algo == "reinforce":
        values = _scaled(base.episodes_per_update)
        return {"episodes_per_update": values}, [], [
            f"num_envs follows episodes_per_update (at most {base.num_envs}: each copy plays a share of an update's "
            "episodes)"]
    if algo == "actor_critic":
        values = _scaled(base.num_envs)
        return {"num_envs": values}, [], ["one-step actor-critic learns from one transition per copy: its batch is "
                                          "num_envs"]
    values = _scaled(base.num_steps)
    notes = [f"batch = num_envs ({base.num_envs}) x num_steps"]
    adjust: list[dict[str, dict[str, Any]]] = []
    if algo == "ppo":
        minibatch = base.minibatch_size
        for steps in values:
            batch = steps * base.num_envs
            count = _divisor_near(batch, batch / minibatch)
            adjust.append({"if": {"num_steps": steps}, "set": {"num_minibatches": count}})
        notes.append(f"num_minibatches changes with num_steps so that minibatches stay ~{minibatch} transitions "
                     "(the same gradient steps per transition)")
    return {"num_steps": values}, adjust, notes


def _reward_norm_grid(base: Config) -> tuple[dict[str, list[Any]], list[dict[str, dict[str, Any]]], list[str]]:
    values: list[Any] = []
    adjust: list[dict[str, dict[str, Any]]] = []
    notes: list[str] = []
    for value in ("none", "scale", "standardize", "popart"):
        try:
            base.replace(reward_norm=value)
        except ValueError as exc:
            if value == "standardize" and getattr(base, "norm_adv", False):
                try:
                    base.replace(reward_norm=value, norm_adv=False)
                except ValueError:
                    pass
                else:
                    values.append(value)
                    adjust.append({"if": {"reward_norm": value}, "set": {"norm_adv": False}})
                    notes.append("standardize runs with norm_adv false (with norm_adv on, the advantages would be "
                                 "standardised twice, which the algorithm refuses)")
                    continue
            notes.append(f"{value} left out: {base.algo} refuses it ({exc})")
            continue
        values.append(value)
    return {"reward_norm": values}, adjust, notes


def named_spec(kind: str, algo: str, env_id: str, seeds: int | list[int] = 5, total_steps: int = 100_000, *,
               name: str | None = None, eval_every: int | None = None, eval_episodes: int = DEFAULT_EVAL_EPISODES,
               threshold: float | None = None, preset: str = "auto",
               fixed: Mapping[str, Any] | None = None, test: str = DEFAULT_TEST,
               min_effect: float = DEFAULT_MIN_EFFECT) -> StudySpec:
    """The spec of named study ``kind`` (:data:`KINDS`) for ``algo`` on ``env_id``."""
    if kind not in KINDS:
        raise UserInputError(f"{kind!r} is not a named study: expected one of {' | '.join(KINDS)}")
    base = make_config(algo, preset=preset, env_id=env_id, **dict(fixed or {}))
    vary, adjust, notes = named_grid(kind, base)
    clash = sorted(set(vary) & set(fixed or {}))
    if clash:
        raise UserInputError(f"the {kind} study varies {clash[0]}: do not fix it")
    (field_name, values), = vary.items()
    current = getattr(base, field_name)  # the report's baseline: what a run would use today
    if format_value(current) in [format_value(v) for v in values]:
        baseline = current
    else:
        baseline = None
        notes = [*notes, f"the current {field_name} ({format_value(current, short=True)}) is not in the grid: the "
                         f"report tests against the first value"]
    return make_spec(algo, env_id, vary, seeds, total_steps, name=name or default_name(algo, env_id, [], prefix=kind),
                     eval_every=eval_every, eval_episodes=eval_episodes, threshold=threshold, fixed=fixed,
                     preset=preset, adjust=adjust, notes=notes, baseline=baseline, test=test, min_effect=min_effect)


def study(kind: str, algo: str, env_id: str = "CartPole-v1", seeds: int | list[int] = 5, total_steps: int = 100_000,
          *, workers: int | None = None, out_dir: str = "studies", verbose: bool = True,
          **options: Any) -> StudyResult:
    """Run named study ``kind`` (see :mod:`policygrad.studies.named`); returns the
    :class:`~policygrad.studies.runner.StudyResult`. ``options``: ``name``, ``eval_every``,
    ``eval_episodes``, ``threshold``, ``preset``, ``fixed``."""
    spec = named_spec(kind, algo, env_id, seeds, total_steps, **options)
    return run_study(spec, out_dir, workers, echo=print if verbose else None)
