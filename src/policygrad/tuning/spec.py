"""A tuning's record and its Optuna study: :class:`TuneSpec` (``STUDY_DIR/tune.json``: what is searched,
on what, scored how), the storage (Optuna's journal file in the study directory, or a database), the
sampler and the pruner. :mod:`policygrad.tuning.search` runs a tuning; :mod:`policygrad.tuning.report`
reports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policygrad.core.errors import UserInputError
from policygrad.run.files import holds_visible_files
from policygrad.studies.backends.run_task import one_line
from policygrad.studies.grid import RUN_DEFAULTS
from policygrad.studies.spec import DEFAULT_EVAL_EPISODES, NAME, StudySpec, default_name, read_study_file
from policygrad.tuning.space import Space, check_space, default_space, load_space

TUNE_FILE, JOURNAL_FILE, TRIALS_FILE, REEVAL_FILE = "tune.json", "optuna.journal", "trials.csv", "reeval.csv"
BEST_PRESET, REEVAL_DIR, OWNERS_DIR, TUNE_LOCK = "best_preset.yaml", "reeval", ".owners", ".tune.lock"
TUNE_FORMAT = 1
OBJECTIVES = {"final": "final_eval", "auc": "auc"}  # the objective -> the run's score column
PRUNERS = ("median", "none")
EVAL_POINTS = 10  # eval_every defaults to total_steps // this: the points the pruner compares
SAMPLER_STARTUP = 5  # random trials before TPE models the results (RL Baselines3 Zoo uses 5 too)
PRUNER_STARTUP = 5  # completed trials before the median pruner prunes anything
# Config fields a preset file leaves out: they belong to one run or one machine, not to the method
NOT_IN_PRESET = {"seed", "env_id", "total_steps", "eval_every", "eval_episodes", "eval_seed", "preset", "run_dir",
                 "progress", "checkpoint_every", "keep_checkpoints", *RUN_DEFAULTS}


# -- the record -----------------------------------------------------------------------------------------------
@dataclass
class TuneSpec:
    """A tuning: ``algo`` on ``env_id``, ``space`` searched (a space as its file writes it), each trial
    trained on ``seeds``, scored by ``objective``; the ``top`` trials re-evaluated on ``reeval_seeds``.
    ``trials`` (the target count) is not part of its identity: running again with more trials
    continues the same tuning."""

    name: str
    algo: str
    env_id: str
    space: dict[str, Any]
    seeds: list[int]
    objective: str = "final"
    pruner: str = "median"
    total_steps: int = 100_000
    eval_every: int = 10_000
    eval_episodes: int = DEFAULT_EVAL_EPISODES
    fixed: dict[str, Any] = field(default_factory=dict)
    preset: str = "auto"
    sampler_seed: int = 0
    top: int = 3
    reeval_seeds: list[int] = field(default_factory=list)
    trials: int = 20
    storage: str | None = None

    def base(self) -> StudySpec:
        """The study every trial's runs belong to (no varied field: the trial's values come on top)."""
        return StudySpec(name=self.name, algo=self.algo, env_id=self.env_id, vary={}, seeds=list(self.seeds),
                         total_steps=self.total_steps, eval_every=self.eval_every, eval_episodes=self.eval_episodes,
                         fixed=dict(self.fixed), preset=self.preset)

    def check(self) -> Space:
        """Check every field (one-line UserInputErrors) and return the checked search space."""
        if not isinstance(self.name, str) or not NAME.fullmatch(self.name):
            raise UserInputError(f"name {self.name!r} is invalid: expected letters, digits and . _ = + , -")
        space = check_space(self.algo, self.space, "space")
        if self.objective not in OBJECTIVES:
            raise UserInputError(f"objective={self.objective!r}: expected one of {' | '.join(OBJECTIVES)}")
        if self.pruner not in PRUNERS:
            raise UserInputError(f"pruner={self.pruner!r}: expected one of {' | '.join(PRUNERS)}")
        for key in ("trials", "eval_every", "top", "sampler_seed"):
            value = getattr(self, key)
            least = {"trials": 1, "eval_every": 1}.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                why = " (the pruner and the auc objective need periodic evaluations)" if key == "eval_every" else ""
                raise UserInputError(f"{key}={value!r} is invalid: expected an integer >= {least}{why}")
        if self.eval_every > self.total_steps:
            raise UserInputError(f"eval_every={self.eval_every} is above total_steps={self.total_steps}: a run would "
                                 "have no evaluation between its first and last")
        fresh = [s for s in self.reeval_seeds if s in self.seeds]
        if fresh:
            raise UserInputError(f"reeval seed {fresh[0]} is a search seed: re-evaluation seeds must be fresh")
        self.base().check()
        both = sorted(set(self.fixed) & {d.name for d in space.dimensions})
        if both:
            raise UserInputError(f"{both[0]} is both searched and fixed: give it once")
        return space

    def to_dict(self) -> dict[str, Any]:
        fixed = {k: list(v) if isinstance(v, tuple) else v for k, v in self.fixed.items()}
        return {"format": TUNE_FORMAT, "kind": "tune", "name": self.name, "algo": self.algo, "env_id": self.env_id,
                "space": self.space, "seeds": list(self.seeds), "objective": self.objective, "pruner": self.pruner,
                "total_steps": self.total_steps, "eval_every": self.eval_every, "eval_episodes": self.eval_episodes,
                "fixed": fixed, "preset": self.preset, "sampler_seed": self.sampler_seed, "top": self.top,
                "reeval_seeds": list(self.reeval_seeds), "trials": self.trials, "storage": self.storage}

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in json.loads(json.dumps(self.to_dict())).items() if k != "trials"}

    @classmethod
    def from_dict(cls, data: Any, source: str) -> TuneSpec:
        if not isinstance(data, dict) or data.get("kind") != "tune":
            raise UserInputError(f"{source}: not a tuning's record")
        data = {k: v for k, v in data.items() if k not in ("format", "kind")}
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - names)
        if unknown:
            raise UserInputError(f"{source}: unknown keys {', '.join(unknown)}")
        try:
            spec = cls(**data)
            spec.check()
        except (TypeError, ValueError) as exc:
            raise UserInputError(f"{source}: {exc}") from None
        return spec


def read_tune_spec(study_dir: str | Path) -> TuneSpec:
    data = read_study_file(study_dir, TUNE_FILE, "tuning")
    return TuneSpec.from_dict(data, str(Path(study_dir) / TUNE_FILE))


def make_tune_spec(algo: str, env_id: str, trials: int, *, space: str | Path | Mapping[str, Any] | None = None,
                   seeds_per_trial: int = 2, objective: str = "final", pruner: str = "median",
                   total_steps: int = 100_000, eval_every: int | None = None,
                   eval_episodes: int = DEFAULT_EVAL_EPISODES, name: str | None = None, preset: str = "auto",
                   sampler_seed: int = 0, top: int = 3, reeval_seeds: int = 3, storage: str | None = None,
                   fixed: Mapping[str, Any] | None = None,
                   echo: Callable[[str], None] | None = None) -> TuneSpec:
    """A checked :class:`TuneSpec`. ``space``: a YAML file, a mapping, or None (the algorithm's default
    space). A field in ``fixed`` is taken out of the space: fixing it means not searching it."""
    if isinstance(space, (str, Path)):
        checked = load_space(algo, space)
    elif space is None:
        checked = default_space(algo)
    else:
        checked = check_space(algo, dict(space), "space")
    fixed = dict(fixed or {})
    space_dict = {k: v for k, v in checked.to_dict().items() if k not in fixed}
    taken = [k for k in checked.to_dict() if k in fixed]
    if taken and echo is not None:
        echo(f"  fixed, so not searched: {', '.join(taken)}")
    for key, value in (("seeds_per_trial", seeds_per_trial), ("reeval_seeds", reeval_seeds),
                       ("total_steps", total_steps)):
        least = 0 if key == "reeval_seeds" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise UserInputError(f"{key}={value!r} is invalid: expected an integer >= {least}")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise UserInputError(f"trials={trials!r} is invalid: expected an integer >= 1")
    spec = TuneSpec(name=name or default_name(algo, env_id, [], prefix="tune"), algo=algo, env_id=env_id,
                    space=space_dict, seeds=list(range(1, seeds_per_trial + 1)), objective=objective, pruner=pruner,
                    total_steps=total_steps,
                    eval_every=max(total_steps // EVAL_POINTS, 1) if eval_every is None else eval_every,
                    eval_episodes=eval_episodes, fixed=fixed, preset=preset, sampler_seed=sampler_seed, top=top,
                    reeval_seeds=list(range(seeds_per_trial + 1, seeds_per_trial + 1 + reeval_seeds)),
                    trials=trials, storage=storage)
    spec.check()
    return spec


# -- Optuna -------------------------------------------------------------------------------------------------
def optuna_module() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_storage(study_dir: Path, url: str | None) -> Any:
    """The Optuna storage: the journal file in ``study_dir`` (safe for several processes on one
    filesystem), or the database at ``url``; UserInputError in one line when it cannot be opened."""
    optuna = optuna_module()
    if url is None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(study_dir / JOURNAL_FILE)))
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # SQLAlchemy's errors for a bad URL, a missing driver, a refused connection
        raise UserInputError(f"storage {url!r} cannot be opened: {one_line(exc)}") from None


def make_pruner(kind: str, n_startup_trials: int | None = None) -> Any:
    """``median``: Optuna's median pruner, from ``n_startup_trials`` completed trials on (default
    :data:`PRUNER_STARTUP`); ``none``: never prunes."""
    optuna = optuna_module()
    if kind == "none":
        return optuna.pruners.NopPruner()
    startup = PRUNER_STARTUP if n_startup_trials is None else n_startup_trials
    return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)


def load_optuna_study(spec: TuneSpec, storage: Any, sampler_seed: int | None = None) -> Any:
    """The tuning's Optuna study (created on first use), with a TPE sampler seeded ``sampler_seed``."""
    optuna = optuna_module()
    sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed if sampler_seed is None else sampler_seed,
                                         n_startup_trials=SAMPLER_STARTUP, constant_liar=True)
    return optuna.create_study(study_name=spec.name, storage=storage, direction="maximize", sampler=sampler,
                               pruner=make_pruner(spec.pruner), load_if_exists=True)


def read_optuna_study(spec: TuneSpec, storage: Any) -> Any:
    """The tuning's Optuna study, only to read (a report): unlike :func:`load_optuna_study`, whose
    ``create_study(load_if_exists=True)`` appends a record to the journal every time, it writes nothing,
    so reporting on a committed tuning leaves its files as they were."""
    return optuna_module().load_study(study_name=spec.name, storage=storage)


def check_same_tuning(study_dir: Path, spec: TuneSpec) -> bool:
    """Whether ``study_dir`` holds this tuning already (True) or nothing (False); UserInputError naming the
    first difference when it holds another one."""
    path = study_dir / TUNE_FILE
    if not path.exists():
        # its locks, or the tune.json another process is writing this moment, are not another tuning
        if holds_visible_files(study_dir):
            raise UserInputError(f"{study_dir} exists and holds no {TUNE_FILE}: not a tuning directory; choose another "
                                 "--name or --out-dir")
        return False
    theirs = read_tune_spec(study_dir).identity()
    for key, mine in spec.identity().items():
        if theirs.get(key) != mine:
            shown = json.dumps(theirs.get(key))
            raise UserInputError(f"{study_dir} holds a different tuning ({key}: {shown[:80]} there): choose another "
                                 f"--name, or continue that one with policygrad tune --resume {study_dir}")
    return True


