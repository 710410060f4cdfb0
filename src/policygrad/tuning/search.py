"""``policygrad tune``: a hyperparameter search with Optuna, whose trials are runs of the study runner.

A tuning lives in ``STUDY_DIR`` (``studies/NAME``): ``tune.json`` (what is searched and how),
``optuna.journal`` (the Optuna study: Optuna's JournalStorage, an append-only file that several
processes may share; ``--storage URL`` puts it in a database instead), ``runs/trial_NNNN__seed=S/``
(normal run directories), ``reeval/`` (the re-evaluation runs), ``trials.csv``, ``reeval.csv``,
``best_preset.yaml`` and the report (:mod:`policygrad.tuning.report`).

What a trial is. Optuna's TPE sampler (seeded: trial N's random draws come from ``sampler_seed + N``,
so a resumed or second process never repeats the first one's draws) picks values from the search
space (:mod:`policygrad.tuning.space`); the trial trains them on K seeds, one after the other,
each seed a run of the backend (local worker processes or Ray), and its value is the mean over the K
seeds of the final deterministic evaluation (``final``) or of the area under the evaluation curve
(``auc``), never one seed's last evaluation (one seed's score is mostly its luck; RL Baselines3 Zoo's
tuned values often fail to reproduce for that reason).

Pruning. Runs go to the backend whole (on Ray, a run's records come back only when it ends), so a
trial can only be stopped between its seeds. After seed k (but the last) the trial reports that
seed's score (its final evaluation, or the area under its periodic evaluations: the objective's own
measure) at Optuna step k, and the median pruner stops it when that is below the median of the
completed trials' seed-k scores: seed k against seed k, like with like. Reporting every periodic
evaluation instead (at steps ``k * P + j``) would add nothing the pruner can act on, and would make
it blind: Optuna's median pruner compares a trial's *best* value over all its steps, and on
CartPole a curve that touches 500 once, then falls, would never be pruned (a 20-trial tuning
reported that way pruned none, trials at half the median included).

Parallelism. ``workers`` trials run at a time (a generation: their seed-k runs go to the backend
together), and at most ``workers`` training processes: an A3C run takes ``num_workers`` of them
(:mod:`policygrad.studies.backends.scheduler`). Several processes may tune into one directory (or
one ``--storage``): a lock file in the study directory makes "count the trials, ask for new ones"
atomic, so together they run ``trials`` trials with distinct numbers. Each process holds
``.owners/HOST-PID.lock`` while it runs; a trial still RUNNING whose owner's lock is free belonged to
a killed process, and the next process adopts it: its runs resume from their checkpoints and it ends
in the same Optuna trial. Running the same command again (or ``--resume STUDY_DIR``) thus continues
the same study, counting every trial already there toward ``trials``.

After the search, the top trials are trained on fresh seeds (never used in the search) and the report
says whether their order holds. The best config (the highest mean over all its seeds, search and
fresh) is written as a preset file for ``policygrad train ALGO --env ENV --preset best_preset.yaml``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout

from policygrad.core.config import Config, user_fields
from policygrad.core.errors import UserInputError
from policygrad.reporting.formatting import format_value
from policygrad.run.files import write_text_atomic
from policygrad.studies.backends import Backend, open_backend
from policygrad.studies.backends.run_task import DONE, RunTask, TaskResult, one_line
from policygrad.studies.backends.scheduler import check_workers, processes_needed
from policygrad.studies.grid import point_config
from policygrad.studies.results import summarize_run
from policygrad.studies.spec import DEFAULT_EVAL_EPISODES, RUNS_DIR
from policygrad.tuning.space import Space
from policygrad.tuning.spec import (
    BEST_PRESET,
    NOT_IN_PRESET,
    OBJECTIVES,
    OWNERS_DIR,
    REEVAL_DIR,
    REEVAL_FILE,
    TRIALS_FILE,
    TUNE_FILE,
    TUNE_LOCK,
    TuneSpec,
    check_same_tuning,
    load_optuna_study,
    make_tune_spec,
    open_storage,
    optuna_module,
    read_tune_spec,
)


# -- scoring a trial ------------------------------------------------------------------------------------
def report_seed(trial: Any, seed_index: int, score: float, prune: bool) -> bool:
    """Report seed ``seed_index``'s score at Optuna step ``seed_index`` and return whether the pruner
    stops the trial here (asked only when ``prune``: never after the last seed)."""
    with warnings.catch_warnings():  # a trial continued after a kill reports its seeds again: Optuna
        warnings.simplefilter("ignore")  # keeps the first value, with a warning that says nothing new
        trial.report(float(score), seed_index)
    return prune and trial.should_prune()


def seed_scores(run_dir: Path) -> dict[str, float | None]:
    """``final_eval`` and ``auc`` of a finished run (None where missing or not finite)."""
    row = summarize_run(run_dir, None)
    out: dict[str, float | None] = {}
    for key in ("final_eval", "auc"):
        value = float(row[key]) if row[key] else None
        out[key] = value if value is not None and math.isfinite(value) else None
    return out


def run_id(number: int, seed: int) -> str:
    return f"trial_{number:04d}__seed={seed}"


# -- processes sharing a tuning ---------------------------------------------------------------------------
def owner_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@contextlib.contextmanager
def owner_lock(study_dir: Path) -> Iterator[str]:
    """Hold ``.owners/HOST-PID.lock`` while this process tunes: the operating system releases it when
    the process dies, however it dies, which is how another process tells a killed one's trials."""
    name = owner_name()
    folder = study_dir / OWNERS_DIR
    folder.mkdir(exist_ok=True)
    lock = FileLock(folder / f"{name}.lock")
    lock.acquire(timeout=0)
    try:
        yield name
    finally:
        lock.release()
        with contextlib.suppress(OSError):
            (folder / f"{name}.lock").unlink()


def owner_alive(study_dir: Path, owner: str | None) -> bool:
    """Whether the process ``owner`` (HOST-PID) still tunes. One on another host cannot be asked: it
    counts as alive (its trial stays RUNNING; a database with Optuna's heartbeat handles such)."""
    if not owner:
        return False
    host, _, pid = owner.rpartition("-")
    if host != socket.gethostname():
        return True
    if owner == owner_name():
        return True
    path = study_dir / OWNERS_DIR / f"{owner}.lock"
    if not path.exists():
        return False
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


@contextlib.contextmanager
def tune_lock(study_dir: Path) -> Iterator[None]:
    """Count the trials and ask for new ones as one step, across the processes tuning this directory."""
    lock = FileLock(study_dir / TUNE_LOCK)
    with lock.acquire(timeout=600):
        yield


# -- one tuning -------------------------------------------------------------------------------------------
@dataclass
class TrialJob:
    """A trial being run by this process: its Optuna handle, config values and scores so far."""

    trial: Any
    values: dict[str, Any]
    configs: list[Config] | None = None
    scores: dict[str, list[float | None]] = field(default_factory=lambda: {"final_eval": [], "auc": []})

    @property
    def number(self) -> int:
        return int(self.trial.number)


@dataclass
class TuneResult:
    study_dir: Path
    spec: TuneSpec
    trials: list[dict[str, str]]
    best: dict[str, Any] | None  # trial number, value, config values, preset path; None: no trial completed
    reeval: list[dict[str, str]]
    handed_over: bool = False  # another process still runs trials of this tuning: it re-evaluates and reports


class Tuner:
    """Runs one tuning's trials in this process (see the module's docstring)."""

    def __init__(self, spec: TuneSpec, space: Space, study_dir: Path, workers: int, backend: Backend,
                 say: Callable[[str], None]) -> None:
        self.spec, self.space, self.study_dir, self.workers, self.backend, self.say = (
            spec, space, study_dir, workers, backend, say)
        self.base = spec.base()
        self.storage = open_storage(study_dir, spec.storage)
        self.study = load_optuna_study(spec, self.storage)

    def config(self, values: Mapping[str, Any], seed: int) -> Config:
        return point_config(self.base, dict(values), seed)

    def next_jobs(self, owner: str) -> list[TrialJob]:
        """Trials for this process's next generation: a killed process's RUNNING trials first, then new
        ones while the study holds fewer than ``trials``; atomic across processes (:func:`tune_lock`)."""
        optuna = optuna_module()
        jobs: list[TrialJob] = []
        with tune_lock(self.study_dir):
            trials = self.study.get_trials(deepcopy=False)
            for frozen in trials:
                if len(jobs) >= self.workers:
                    break
                if frozen.state == optuna.trial.TrialState.RUNNING and not owner_alive(
                        self.study_dir, frozen.user_attrs.get("owner")):
                    trial = optuna.trial.Trial(self.study, frozen._trial_id)
                    trial.set_user_attr("owner", owner)
                    self.say(f"  trial {frozen.number}: its process is gone; continuing it")
                    jobs.append(TrialJob(trial, self.space.values_of(frozen.params)))
            # every trial counts toward the target but those enqueued and not yet started (ask() starts them)
            count = sum(t.state != optuna.trial.TrialState.WAITING for t in trials)
            while len(jobs) < self.workers and count < self.spec.trials:
                # trial N draws from sampler_seed + N: a second or resumed process never repeats the draws
                study = load_optuna_study(self.spec, self.storage, self.spec.sampler_seed + count)
                trial = study.ask()
                trial.set_user_attr("owner", owner)
                jobs.append(TrialJob(trial, self.space.suggest(trial)))
                count += 1
        return jobs

    def tell_failed(self, job: TrialJob, error: str) -> None:
        optuna = optuna_module()
        job.trial.set_user_attr("error", error)
        self.study.tell(job.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        self.say(f"  trial {job.number}: FAILED: {error}")

    def run_generation(self, jobs: list[TrialJob]) -> None:
        """Train the trials' seeds one seed at a time (each seed's runs of all trials together), judging
        them between seeds; tell Optuna each trial's end."""
        optuna = optuna_module()
        alive = []
        for job in jobs:
            try:
                job.configs = [self.config(job.values, seed) for seed in self.spec.seeds]
                alive.append(job)
            except ValueError as exc:  # values the config refuses (a user's space): the trial fails, the search goes on
                self.tell_failed(job, f"ValueError: {exc}")
        last = len(self.spec.seeds) - 1
        for k, seed in enumerate(self.spec.seeds):
            if not alive:
                return
            tasks = [RunTask(run_id(job.number, seed), str(self.study_dir / RUNS_DIR / run_id(job.number, seed)),
                             job.configs[k] if job.configs else None) for job in alive]
            results = {r.run_id: r for r in self.backend.run_all(tasks, processes_needed(tasks, self.workers) or 1)}
            survivors = []
            for job in alive:
                rid = run_id(job.number, seed)
                result = results.get(rid, TaskResult(rid, "failed", "the backend returned no result"))
                run_dir = self.study_dir / RUNS_DIR / rid
                scores = seed_scores(run_dir) if result.status == DONE else {}
                score = scores.get(OBJECTIVES[self.spec.objective])
                if result.status != DONE or score is None:
                    self.tell_failed(job, result.error or f"seed {seed} gave no {self.spec.objective} score")
                    continue
                for key in ("final_eval", "auc"):
                    job.scores[key].append(scores[key])  # None: no such score (auc of a run with one evaluation)
                if report_seed(job.trial, k, score, prune=k < last and self.spec.pruner != "none"):
                    job.trial.set_user_attr("scores", job.scores)
                    self.study.tell(job.number, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
                    self.say(f"  trial {job.number}: pruned after seed {seed} ({self.spec.objective} "
                             f"{score:.1f}: below the median of the completed trials)")
                    continue
                survivors.append(job)
            alive = survivors
        for job in alive:
            values = [v for v in job.scores[OBJECTIVES[self.spec.objective]] if v is not None]
            value = sum(values) / len(values)
            job.trial.set_user_attr("scores", job.scores)
            self.study.tell(job.number, value, skip_if_finished=True)
            best = self.study.best_trial
            self.say(f"  trial {job.number}: {value:.1f} (seeds {', '.join(f'{v:.1f}' for v in values)}); best "
                     f"{best.value:.1f} (trial {best.number})")

    def running_elsewhere(self) -> int:
        optuna = optuna_module()
        return sum(1 for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                   if owner_alive(self.study_dir, t.user_attrs.get("owner")))


def run_tune(spec: TuneSpec, out_dir: str | Path = "studies", workers: int = 1, *, resume: bool = False,
             backend: Backend | None = None, echo: Callable[[str], None] | None = print) -> TuneResult:
    """Run (or continue) the tuning ``spec`` in ``OUT_DIR/NAME`` until its Optuna study holds
    ``spec.trials`` trials, then re-evaluate the top ones and write the best preset and the report.
    Every problem with the spec or the directory is a UserInputError before any run starts."""
    from policygrad.env_check import preflight

    if backend is None:  # the worker processes are this call's: closed when it ends
        with open_backend("local", echo=echo) as local:
            return run_tune(spec, out_dir, workers, resume=resume, backend=local, echo=echo)
    say = echo or (lambda text: None)
    space = spec.check()
    check_workers(workers)
    point_config(spec.base(), dict(space.fixed), spec.seeds[0])  # the fixed fields and the env, checked now
    study_dir = Path(out_dir) / spec.name
    existed = check_same_tuning(study_dir, spec)
    if resume and not existed:
        raise UserInputError(f"{study_dir}: no tuning to resume (no {TUNE_FILE} there)")
    preflight(spec.env_id, spec.base().environment_kwargs())
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create {study_dir}: {exc.strerror or exc}") from None
    with owner_lock(study_dir) as owner:
        with tune_lock(study_dir):  # several processes may start together: one writes the record
            if not (study_dir / TUNE_FILE).exists() or read_tune_spec(study_dir).trials != spec.trials:
                write_text_atomic(study_dir / TUNE_FILE, json.dumps(spec.to_dict(), indent=2) + "\n")
            (study_dir / RUNS_DIR).mkdir(exist_ok=True)
            # the Optuna study is created here, under the lock: two processes starting together create one
            tuner = Tuner(spec, space, study_dir, workers, backend, say)
        done = len(tuner.study.get_trials(deepcopy=False))
        say(f"tune {study_dir}: {spec.algo} on {spec.env_id}, {spec.trials} trials x {len(spec.seeds)} seeds x "
            f"{spec.total_steps} steps ({done} trials there already), {workers} at a time; objective: mean "
            f"{spec.objective} over the seeds")
        start = time.perf_counter()
        while True:
            jobs = tuner.next_jobs(owner)
            if not jobs:
                break
            tuner.run_generation(jobs)
        say(f"tune {study_dir}: search done in {time.perf_counter() - start:.1f} s")
        if tuner.running_elsewhere():
            say(f"tune {study_dir}: trials still run in another process, which re-evaluates and reports when "
                "they end")
            return TuneResult(study_dir, spec, trial_rows(tuner), None, [], handed_over=True)
        with FileLock(study_dir / ".reeval.lock"):  # two processes ending together: one after the other
            return finish(tuner, echo)


def finish(tuner: Tuner, echo: Callable[[str], None] | None) -> TuneResult:
    """Re-evaluate the top trials on fresh seeds, write trials.csv, reeval.csv, the best preset and
    the report."""
    from policygrad.tuning import report as tune_report

    say = echo or (lambda text: None)
    spec, study_dir = tuner.spec, tuner.study_dir
    rows = trial_rows(tuner)
    write_csv(study_dir / TRIALS_FILE, rows)
    reeval = reevaluate(tuner)
    write_csv(study_dir / REEVAL_FILE, reeval)
    best = best_config(tuner, reeval)
    if best is None:
        say(f"tune {study_dir}: no trial completed; no preset written")
    else:
        path = write_best_preset(tuner, best)
        best["preset"] = str(path)
        say(f"tune {study_dir}: best trial {best['number']}: {best['mean']:.1f} over {best['n_seeds']} seeds; "
            f"preset: {path} (policygrad train {spec.algo} --env {spec.env_id} --preset {path} --total-steps "
            f"{spec.total_steps})")
    try:
        out = tune_report.write_report(study_dir)
        say(f"tune {study_dir}: report {out}")
    except Exception as exc:  # the search's results are on disk already; the report can be made again
        say(f"report not written ({study_dir / TRIALS_FILE} is complete): {one_line(exc)}")
    return TuneResult(study_dir, spec, rows, best, reeval)


def trial_rows(tuner: Tuner) -> list[dict[str, str]]:
    """A row per trial: number, state, value, the seeds' scores, each searched parameter, the error."""
    params = sorted({p for t in tuner.study.get_trials(deepcopy=False) for p in t.params})
    rows = []
    for t in tuner.study.get_trials(deepcopy=False):
        scores = t.user_attrs.get("scores", {}).get(OBJECTIVES[tuner.spec.objective], [])
        row = {"trial": str(t.number), "state": t.state.name.lower(),
               # a pruned trial's value would be Optuna's copy of its last report: one seed's score, not a mean
               "value": repr(float(t.value)) if t.value is not None and t.state.name == "COMPLETE" else "",
               "seed_scores": " ".join(f"{s:.6g}" for s in scores)}
        row.update({p: format_value(t.params[p]) if p in t.params else "" for p in params})
        row["error"] = str(t.user_attrs.get("error", ""))
        rows.append(row)
    return rows


def write_csv(path: Path, rows: Sequence[Mapping[str, str]]) -> None:
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    write_text_atomic(path, text.getvalue())


def reevaluate(tuner: Tuner) -> list[dict[str, str]]:
    """Train the ``top`` completed trials on the fresh seeds; a row per trial, in the search's order:
    its search score and rank, its fresh score and rank."""
    optuna = optuna_module()
    spec = tuner.spec
    complete = tuner.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    top = sorted(complete, key=lambda t: (-t.value, t.number))[:spec.top]
    if not top or not spec.reeval_seeds:
        return []
    tasks, where = [], {}
    for t in top:
        values = tuner.space.values_of(t.params)
        for seed in spec.reeval_seeds:
            rid = run_id(t.number, seed)
            where[rid] = tuner.study_dir / REEVAL_DIR / rid
            try:
                config = tuner.config(values, seed)
            except ValueError:  # the search trained this config: it cannot turn invalid
                continue
            tasks.append(RunTask(rid, str(where[rid]), config))
    tuner.say(f"tune {tuner.study_dir}: re-evaluating the top {len(top)} trials on fresh seeds "
              f"{', '.join(map(str, spec.reeval_seeds))} ({len(tasks)} runs)")
    results = {r.run_id: r for r in tuner.backend.run_all(tasks, processes_needed(tasks, tuner.workers) or 1)}
    key = OBJECTIVES[spec.objective]
    fresh: dict[int, list[float]] = {}
    for t in top:
        fresh[t.number] = []
        for seed in spec.reeval_seeds:
            rid = run_id(t.number, seed)
            score = seed_scores(where[rid])[key] if results.get(rid) and results[rid].status == DONE else None
            fresh[t.number].append(math.nan if score is None else score)
    means = {n: (sum(v) / len(v) if v and all(math.isfinite(x) for x in v) else math.nan) for n, v in fresh.items()}
    order = sorted(means, key=lambda n: (-means[n] if math.isfinite(means[n]) else math.inf, n))
    rows = []
    for rank, t in enumerate(top, 1):
        search = t.user_attrs.get("scores", {}).get(key, [])
        rows.append({"trial": str(t.number), "search_rank": str(rank), "search_value": repr(float(t.value)),
                     "search_seeds": " ".join(map(str, spec.seeds)),
                     "fresh_rank": str(order.index(t.number) + 1) if math.isfinite(means[t.number]) else "",
                     "fresh_value": repr(means[t.number]) if math.isfinite(means[t.number]) else "",
                     "fresh_seeds": " ".join(map(str, spec.reeval_seeds)),
                     "fresh_scores": " ".join(f"{s:.6g}" for s in fresh[t.number]),
                     "all_seeds_value": repr((sum(search) + sum(fresh[t.number])) /
                                             (len(search) + len(fresh[t.number])))
                     if search and math.isfinite(means[t.number]) else ""})
    return rows


def best_config(tuner: Tuner, reeval: Sequence[Mapping[str, str]]) -> dict[str, Any] | None:
    """The trial to recommend: among the re-evaluated ones, the highest mean over all its seeds (search
    and fresh: the most evidence each has); without a re-evaluation, the search's best."""
    optuna = optuna_module()
    complete = tuner.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    scored = [r for r in reeval if r["all_seeds_value"]]
    if scored:
        row = max(scored, key=lambda r: (float(r["all_seeds_value"]), -int(r["trial"])))
        number, mean = int(row["trial"]), float(row["all_seeds_value"])
        n_seeds = len(tuner.spec.seeds) + len(tuner.spec.reeval_seeds)
    else:
        t = max(complete, key=lambda t: (t.value, -t.number))
        number, mean, n_seeds = t.number, float(t.value), len(tuner.spec.seeds)
    trial = next(t for t in complete if t.number == number)
    return {"number": number, "mean": mean, "n_seeds": n_seeds, "values": tuner.space.values_of(trial.params)}


def preset_fields(config: Config) -> dict[str, Any]:
    """The fields of ``config`` a preset carries: those that differ from the config's defaults, but the
    ones that belong to one run or one machine (seed, budget, evaluations, logging)."""
    out = {}
    for f in user_fields(type(config)):
        if f.name in NOT_IN_PRESET:
            continue
        value = getattr(config, f.name)
        default = f.default
        if value != default:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def write_best_preset(tuner: Tuner, best: Mapping[str, Any]) -> Path:
    """``best_preset.yaml``: the best trial's config as ``field: value`` lines (with the env's preset and
    the fixed fields it ran with), and comments saying where it comes from."""
    spec = tuner.spec
    config = tuner.config(best["values"], spec.seeds[0])
    path = tuner.study_dir / BEST_PRESET
    header = [f"# policygrad tune: trial {best['number']} of the tuning {spec.name} ({spec.algo} on {spec.env_id}, "
              f"{spec.total_steps} steps per run),",
              f"# mean {spec.objective} {best['mean']:.4g} over {best['n_seeds']} seeds (search and fresh seeds).",
              f"# Use: policygrad train {spec.algo} --env {spec.env_id} --preset {path.name} --total-steps "
              f"{spec.total_steps}"]
    body = yaml.safe_dump(preset_fields(config), sort_keys=False, default_flow_style=None)
    write_text_atomic(path, "\n".join(header) + "\n" + body)
    return path


def tune(algo: str, env_id: str = "CartPole-v1", trials: int = 20, *,
         space: str | Path | Mapping[str, Any] | None = None, seeds_per_trial: int = 2, objective: str = "final",
         pruner: str = "median", workers: int = 1, total_steps: int = 100_000, eval_every: int | None = None,
         eval_episodes: int = DEFAULT_EVAL_EPISODES, name: str | None = None, out_dir: str | Path = "studies",
         preset: str = "auto", sampler_seed: int = 0, top: int = 3, reeval_seeds: int = 3,
         storage: str | None = None, resume: bool = False, backend: str | Backend | None = "local",
         address: str | None = None, verbose: bool = True, **fixed: Any) -> TuneResult:
    """Search ``algo``'s hyperparameters on ``env_id`` with Optuna: ``trials`` trials, each trained on
    ``seeds_per_trial`` seeds and scored by the mean ``objective`` (``final``: final evaluation;
    ``auc``: area under the evaluation curve); the ``top`` trials re-evaluated on ``reeval_seeds`` fresh
    seeds; the best written as ``OUT_DIR/NAME/best_preset.yaml``. ``fixed`` (keyword arguments): config
    fields, the same for every trial (and taken out of the space). ``backend``: ``local`` (worker
    processes here), ``ray`` (the cluster at ``address``) or a Backend object. Running it again
    continues it.

        result = pg.tune("ppo", "CartPole-v1", trials=20, total_steps=50_000)
        print(result.best["preset"])
    """
    echo = print if verbose else None
    spec = make_tune_spec(algo, env_id, trials, space=space, seeds_per_trial=seeds_per_trial, objective=objective,
                          pruner=pruner, total_steps=total_steps, eval_every=eval_every, eval_episodes=eval_episodes,
                          name=name, preset=preset, sampler_seed=sampler_seed, top=top, reeval_seeds=reeval_seeds,
                          storage=storage, fixed=fixed, echo=echo)
    with open_backend(backend, address, echo=echo) as made:
        return run_tune(spec, out_dir, workers, resume=resume, backend=made, echo=echo)


def resume_tune(study_dir: str | Path, trials: int | None = None, workers: int = 1, *,
                backend: str | Backend | None = "local", address: str | None = None,
                echo: Callable[[str], None] | None = print) -> TuneResult:
    """Continue the tuning in ``study_dir`` (its record in tune.json), to ``trials`` trials (default:
    the recorded target)."""
    study_dir = Path(study_dir)
    spec = read_tune_spec(study_dir)
    if spec.name != study_dir.name:
        raise UserInputError(f"{study_dir}: its tune.json names the tuning {spec.name!r}; a tuning's directory is "
                             "named after it (rename the directory back)")
    if trials is not None:
        spec.trials = trials
    with open_backend(backend, address, echo=echo) as made:
        return run_tune(spec, study_dir.parent, workers, resume=True, backend=made, echo=echo)
