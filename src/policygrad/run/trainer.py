"""The training loop every synchronous algorithm shares, the run directory it writes, its
checkpoints, and putting a resumed run back together (finding and checking the checkpoint to resume
from is :mod:`policygrad.run.resume`).

A run directory holds ``config.json`` (every resolved field, versions, the device used, and a
``resumes`` list when the run was resumed), ``metrics.csv``, ``episodes.csv``, ``evals.csv`` (with
``eval_every``: deterministic evaluations during training, :class:`Evaluations`), TensorBoard events,
``checkpoints/`` (periodic and resumable: ``step_NNNNNNNNN/`` folders and ``latest``, naming the
newest), ``checkpoint/`` (the final weights, which ``policygrad.load`` reads), ``eval.json`` and
``learning_curve.png``; ``.lock`` and ``.lock.pid`` while a process trains or resumes the run (one
at a time: :func:`lock_run_dir`), gone once it ends.

Exact resume. A periodic checkpoint is written between two iterations and holds everything the next
iteration reads: parameters and normalization statistics (buffers of the network), optimizer state,
step and update counters (the learning-rate schedule is a function of the steps done), the Python,
NumPy and torch random states, the state of every environment copy (its ``np_random``, physics,
time-limit counter and the vector env's autoreset flags, see :mod:`policygrad.run.snapshot`), the
observation the next rollout starts from, the per-copy episode accumulators, the reward scaler's
running returns, and where the CSV files stood (evals.csv included: evaluations draw from no random
state of the run, so they change nothing in it). Resuming rebuilds the run from its config, puts all
of that back and continues: on the CPU the result is bit for bit the run that was never stopped.
An environment whose state is not plain data (Box2D, MuJoCo) is reset instead, with a seed derived
from the run's, and the resumed run is then a valid continuation but not an identical one.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from filelock import Timeout

from policygrad.algos import algorithm
from policygrad.algos.base import Algorithm, AsynchronousAlgorithm, checked_int, checked_tensor, nonfinite_term
from policygrad.algos.rollout import evaluation_episodes
from policygrad.core.config import Config
from policygrad.core.envs import env_spaces, make_vec_env
from policygrad.core.errors import NonFiniteError, RunDirInUseError, RunWriteError, UserInputError, cannot_write
from policygrad.core.networks import PolicyNetwork
from policygrad.core.runtime import resolve_device, seed_everything
from policygrad.core.user_network import build_network
from policygrad.core.version import __version__
from policygrad.run.checkpoint import (
    CHECKPOINT_DIR,
    load_model_state,
    load_optimizer_state,
    load_run_state,
    save_checkpoint,
    save_periodic,
)
from policygrad.run.files import acquire_lock_file, release_lock_file, write_json_atomic
from policygrad.run.logger import RunLogger
from policygrad.run.presets import is_preset_file, preset_values
from policygrad.run.resume import ResumePoint, checked_logs, prepare_resume, previous_record
from policygrad.run.snapshot import decode, encode, restore_vec_env_state, rng_state, set_rng_state, vec_env_state

log = logging.getLogger("policygrad")
# RUN_DIR/.lock: held by the process that trains or resumes the run (lock_run_dir); .lock.pid names it
LOCK_FILE, LOCK_PID_FILE = ".lock", ".lock.pid"

@dataclass
class RunOutcome:
    """A finished training loop: its directory, the trained network, where it ran, and how far."""

    run_dir: Path
    network: PolicyNetwork
    device: torch.device
    global_step: int
    seconds: float  # of training in this session, periodic evaluations excluded (A3C's: included)


def default_run_dir(cfg: Config) -> Path:
    env = cfg.env_id.replace("/", "_").replace(":", "_")
    return Path("runs") / f"{env}__{cfg.algo}__{cfg.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(path: Path, overwrite: bool) -> Path:
    """Create the run directory; an existing, non-empty one is an error unless ``overwrite``, which
    empties it. Under :func:`lock_run_dir`, whose lock files stay."""
    entries = [p for p in path.iterdir() if p.name not in (LOCK_FILE, LOCK_PID_FILE)] if path.is_dir() else []
    if entries:
        if not overwrite:
            # Said for both callers: Python's keyword first, the command line's flag in parentheses.
            raise UserInputError(f"run_dir={str(path)!r} already exists and is not empty: choose another run_dir "
                                 "(--run-dir), pass overwrite=True (--overwrite), or continue it with "
                                 f"pg.train(resume_from={str(path)!r}) (policygrad resume {path})")
        for entry in entries:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


# The run directories whose lock this thread holds (lock_run_dir is reentrant within a thread).
_held_locks = threading.local()


@contextlib.contextmanager
def lock_run_dir(path: Path) -> Iterator[None]:
    """Hold the run directory's lock (``RUN_DIR/.lock``, creating the directory) inside: a second
    process training or resuming into it is refused with RunDirInUseError naming this one's PID. The
    lock is the operating system's (flock), so a process that dies, even by SIGKILL, leaves none
    behind. ``RUN_DIR/.lock.pid`` names the process that holds it. Both files go when the holder lets
go (a finished run keeps no lock files). A3C's workers never take it.

    Reentrant within a thread: ``train(resume_from=...)`` finds the resume point under the lock and
    runs under it, and the nested call just holds on. Another thread is refused like another process."""
    held: set[str] = _held_locks.__dict__.setdefault("paths", set())
    key = os.path.realpath(path)
    if key in held:
        yield
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = acquire_lock_file(path / LOCK_FILE)
        try:
            (path / LOCK_PID_FILE).write_text(f"{os.getpid()}\n")
        except BaseException:
            lock.release()
            raise
    except Timeout:
        try:
            pid = (path / LOCK_PID_FILE).read_text().strip()
        except OSError:
            pid = ""
        raise RunDirInUseError(
            f"run_dir={str(path)!r} is in use by another policygrad process (PID {pid if pid.isdigit() else '?'}), "
            "which is training or resuming it: wait for it to end or stop it, or choose another --run-dir") from None
    except OSError as exc:
        raise UserInputError(f"run_dir={str(path)!r}: {cannot_write('the lock file', path / LOCK_FILE, exc)}") from exc
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
        release_lock_file(lock, path / LOCK_FILE, path / LOCK_PID_FILE)


def rounding_note(config: Config) -> dict[str, Any] | None:
    """When a fixed-horizon algorithm's ``total_steps`` is not a whole number of rollouts
    (``num_envs x num_steps`` steps each), the steps it will train and why; None when it is."""
    batch = getattr(config, "batch_size", None)
    if not isinstance(batch, int) or batch <= 0 or config.total_steps % batch == 0:
        return None
    trains = -(-config.total_steps // batch) * batch
    return {"requested": config.total_steps, "trains": trains,
            "why": f"training runs whole rollouts of num_envs x num_steps = {config.num_envs} x "
                   f"{getattr(config, 'num_steps', '?')} = {batch} steps"}


def run_record(cfg: Config, device: torch.device, recorded_preset: dict | None = None) -> dict:
    """What config.json says about a run; ``recorded_preset``: the preset's values as the run's first
    record gave them (a resumed run keeps them: its preset file may be gone or edited since)."""
    return {
        "config": cfg.to_dict(),
        "preset_values": preset_values(cfg.algo, cfg.env_id, cfg.preset)[1] if recorded_preset is None
        else recorded_preset,
        "device_used": str(device),
        "versions": {"policygrad": __version__, "torch": torch.__version__,
                     "gymnasium": gymnasium.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }


# -- the synchronous algorithms ----------------------------------------------------------------------
class SynchronousRun:
    """A synchronous algorithm on its vector env, and the state it needs to be resumed exactly.

    Besides the network and optimizer, that state is the VecEnv's (accumulators, step count and the
    environments' own, :func:`policygrad.run.snapshot.vec_env_state`), what the algorithm carries
    between iterations (its :meth:`~policygrad.algos.base.Algorithm.state`), and the reward scaler's
    running discounted returns (tests/test_resume.py checks that a resumed run is the same run).
    """

    def __init__(self, config: Config, algo_cls: type[Algorithm], network: PolicyNetwork,
                 device: torch.device) -> None:
        self.config, self.network = config, network
        self.envs = make_vec_env(config.env_id, config.num_envs, device=device, training=True)
        self.algo = algo_cls(config, self.envs, network)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.algo.optimizer

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        algo_data, tensors = self.algo.state()
        data: dict[str, Any] = {"envs": vec_env_state(self.envs), **{k: encode(v) for k, v in algo_data.items()}}
        tensors = dict(tensors)
        if self.network.reward_scaler is not None:
            tensors["reward_scaler.running_return"] = self.network.reward_scaler.running_return
        return data, tensors

    def load_state(self, data: dict[str, Any], tensors: dict[str, torch.Tensor], fresh_seed: int) -> bool:
        """Put back :meth:`state`; returns whether the continuation is exact (the environments' own
        state was saved). Otherwise every copy starts a new episode from ``fresh_seed``."""
        exact = restore_vec_env_state(self.envs, data.get("envs"))
        if not exact:
            log.warning("the environment state of %r was not saved (%s): the resumed run starts new episodes "
                        "and is not identical to an uninterrupted one", self.config.env_id,
                        "; ".join(data["envs"].get("unsupported", [])[:3]))
        algo_data = {k: decode(v) for k, v in data.items() if k != "envs"}
        self.algo.load_state(algo_data, tensors, exact, fresh_seed)
        scaler = self.network.reward_scaler
        if scaler is not None:
            scaler.running_return = checked_tensor(tensors, "reward_scaler.running_return", scaler.running_return)
            if not exact:
                scaler.running_return.zero_()
        return exact

    def close(self) -> None:
        self.envs.close()


# -- non-finite updates --------------------------------------------------------------------------------
def check_update(config: Config, network: PolicyNetwork, metrics: dict[str, float], skipped: int, streak: int,
                 update: int, global_step: int) -> int:
    """Report an update whose gradient steps were skipped as non-finite; returns the new count of
    such updates in a row and raises NonFiniteError once it reaches ``max_nonfinite_updates``."""
    if not skipped:
        return 0
    streak += 1
    term = nonfinite_term(metrics)
    bad = [name for name, p in network.named_parameters() if not torch.isfinite(p).all()]
    if bad:  # something other than the optimizer step (PopArt's rescaling, say) broke the weights
        raise NonFiniteError(f"update {update} (step {global_step}): parameters {bad[:3]} are not finite "
                             f"after {term} went non-finite")
    log.warning("update %d (step %d): %s went non-finite; %d gradient step(s) skipped, parameters kept "
                "(%d of max_nonfinite_updates=%d in a row)", update, global_step, term, skipped, streak,
                config.max_nonfinite_updates)
    if streak >= config.max_nonfinite_updates:
        raise NonFiniteError(
            f"update {update} (step {global_step}): {term} went non-finite in {streak} updates in a row "
            f"(max_nonfinite_updates={config.max_nonfinite_updates}); every one was skipped, so the saved "
            "parameters are the last finite ones. Lower learning_rate, clip gradients (max_grad_norm), "
            "scale rewards (reward_norm=scale) or check the environment (policygrad check-env)")
    return streak


# -- checkpoints ------------------------------------------------------------------------------------------
class Checkpoints:
    """Writes the run's checkpoints: periodic ones every ``checkpoint_every`` steps, and the final one."""

    def __init__(self, path: Path, config: Config, network: PolicyNetwork, start_step: int) -> None:
        self.path, self.config, self.network = path, config, network
        self.every = config.checkpoint_every
        self.next = self._after(start_step)

    def _after(self, step: int) -> float:  # math.inf when periodic checkpoints are off
        return (step // self.every + 1) * self.every if self.every else math.inf

    def due(self, global_step: int) -> bool:
        return global_step >= self.next and global_step < self.config.total_steps

    def contents(self, optimizer, logger: RunLogger, run: SynchronousRun | None, streak: int,
                 completed: bool, resumable: bool) -> dict[str, Any]:
        counters = {"global_step": logger.global_step, "updates": logger.updates, "completed": completed,
                    "nonfinite_streak": streak}
        contents = {"model": self.network, "optimizer": optimizer, "config": self.config.to_dict(),
                    "counters": counters}
        if resumable:
            rng, tensors = rng_state()
            run_state: dict[str, Any] = {"rng": rng, "logs": logger.position()}
            if run is not None:
                run_state["algo"], algo_tensors = run.state()
                tensors.update(algo_tensors)
            contents.update(run_state=run_state, state_tensors=tensors)
        return contents

    def periodic(self, optimizer, logger: RunLogger, run: SynchronousRun | None, streak: int) -> Path:
        folder = save_periodic(self.path, logger.global_step, self.config.keep_checkpoints,
                               **self.contents(optimizer, logger, run, streak, False, True))
        self.next = self._after(logger.global_step)
        return folder

    def final(self, optimizer, logger: RunLogger, run: SynchronousRun | None, streak: int, completed: bool) -> Path:
        # Resumable only when the run ended between two iterations (completed); a crash or Ctrl-C can
        # stop it mid-update, and then the weights are kept for policygrad.load, marked incomplete.
        return save_checkpoint(self.path / CHECKPOINT_DIR,
                               **self.contents(optimizer, logger, run, streak, completed, completed))


# -- periodic evaluations ----------------------------------------------------------------------------------
class Evaluations:
    """Deterministic evaluations during training (``eval_every`` > 0): ``eval_episodes`` episodes on
    environment copies reset from the fixed seeds ``eval_seed``, ``eval_seed + 1``, ... (the same for
    every run and every evaluation: :func:`~policygrad.algos.rollout.evaluation_episodes`), at step 0,
    at the first iteration boundary at or past each multiple of ``eval_every``, and at the last step;
    each a row of ``evals.csv`` (:meth:`RunLogger.evaluation`).

    The time they take is taken off the run's training clock (``wall_time`` in the CSV files,
    ``wall_seconds`` in evals.csv) when ``pause_clock``; A3C's workers go on training while its parent
    evaluates, so there the clock runs on. An evaluation is written before a checkpoint due at the same
    step, so a checkpoint's position of evals.csv includes it, and a resumed run evaluates at the same
    steps as the uninterrupted one."""

    def __init__(self, config: Config, network: PolicyNetwork, logger: RunLogger, device: torch.device,
                 start_step: int, pause_clock: bool = True) -> None:
        self.config, self.network, self.logger, self.device = config, network, logger, device
        self.every, self.pause_clock = config.eval_every, pause_clock
        self.next = self._after(start_step) if start_step else 0
        self.last_step: int | None = None
        self.seconds = 0.0  # taken off the clock in this session

    def _after(self, step: int) -> float:  # math.inf when periodic evaluations are off
        return (step // self.every + 1) * self.every if self.every else math.inf

    def due(self, global_step: int) -> bool:
        return global_step >= self.next

    def run(self, global_step: int, network: PolicyNetwork | None = None) -> None:
        """Evaluate ``network`` (default: the run's) now and record it at ``global_step``."""
        clock, tick = self.logger.wall_time(), time.perf_counter()
        episodes = evaluation_episodes(network or self.network, self.config.env_id, self.config.eval_episodes,
                                       deterministic=True, seed=self.config.eval_seed, device=self.device)
        if self.pause_clock:
            elapsed = time.perf_counter() - tick
            self.logger.exclude_time(elapsed)
            self.seconds += elapsed
        self.logger.evaluation(global_step, clock, [e.ret for e in episodes])
        self.next, self.last_step = self._after(global_step), global_step

    def final(self, global_step: int, network: PolicyNetwork | None = None) -> None:
        """The evaluation at the end of training, unless one was just made at this step."""
        if self.every and self.last_step != global_step:
            self.run(global_step, network)


def synchronous_loop(config: Config, run: SynchronousRun, logger: RunLogger, checkpoints: Checkpoints,
                     streak: int, evaluations: Evaluations | None = None) -> int:
    """Collect and update until ``total_steps``, evaluating and checkpointing on the way; returns the
    count of non-finite updates in a row at the end."""
    global_step, updates = logger.global_step, logger.updates
    if evaluations is not None and evaluations.due(global_step):  # step 0 of a new run
        evaluations.run(global_step)
    while global_step < config.total_steps:
        tick = time.perf_counter()
        result = run.algo.iterate()
        global_step += result.steps
        updates += 1
        logger.episodes(result.episodes)  # the VecEnv counts the same steps as global_step
        returns = [e.ret for e in result.episodes]
        lengths = [e.length for e in result.episodes]
        metrics = {
            "charts/episodic_return": float(np.mean(returns)) if returns else math.nan,
            "charts/episodic_length": float(np.mean(lengths)) if lengths else math.nan,
            **result.metrics,
            "diag/skipped_steps": float(result.skipped_steps),
            "perf/sps": result.steps / max(time.perf_counter() - tick, 1e-9),
        }
        logger.update(global_step, metrics, result.steps)
        streak = check_update(config, run.network, result.metrics, result.skipped_steps, streak, updates,
                              global_step)
        if evaluations is not None and evaluations.due(global_step):
            evaluations.run(global_step)
        if checkpoints.due(global_step):
            checkpoints.periodic(run.optimizer, logger, run, streak)
    if evaluations is not None:
        evaluations.final(global_step)
    return streak


def run_training(config: Config, run_dir: str | Path | None = None, overwrite: bool = False,
                 point: ResumePoint | None = None, module: torch.nn.Module | None = None,
                 finish: Callable[[RunOutcome], None] | None = None) -> RunOutcome:
    """Train ``config``'s algorithm in a new run directory (``run_dir``, else ``config.run_dir``, else
    :func:`default_run_dir`), or continue the run of the resume ``point`` in its own; write the
    config record, metrics, checkpoints and the final weights. Evaluating and plotting the result is
    :func:`policygrad.training.train`'s. ``config`` must already be checked
    (:func:`policygrad.run.configure.check_runnable`). The run directory is locked for the whole run,
    ``overwrite`` and tidying it for a resume included (:func:`lock_run_dir`), and ``finish(outcome)``
    (the final evaluation and plot) runs before it is released, so that no other process can start
    over the directory while they are written. ``module``: the user's own network
    (:func:`policygrad.core.user_network.build_network`)."""
    if point is None:
        path = Path(run_dir or config.run_dir or default_run_dir(config))
        if not overwrite and not (path / LOCK_PID_FILE).exists():
            prepare_run_dir(path, overwrite)  # refuse a non-empty directory before a lock file goes into it
    else:
        path = point.run_dir
    with lock_run_dir(path):  # released on every exit: the end, an error, Ctrl-C
        if point is None:
            prepare_run_dir(path, overwrite)
        else:
            prepare_resume(point)
        try:
            outcome = _run_locked(config, path, point, module)
        except RunWriteError as exc:
            raise RunWriteError(f"{exc}; the run stopped: make room (or make {path} writable), then continue it "
                                f"from its last checkpoint with policygrad resume {path}") from exc
        if finish is not None:
            finish(outcome)
        return outcome


def _run_locked(config: Config, path: Path, point: ResumePoint | None,
                module: torch.nn.Module | None = None) -> RunOutcome:
    """:func:`run_training` in its prepared, locked run directory ``path``."""
    algo_cls = algorithm(config.algo)
    asynchronous = issubclass(algo_cls, AsynchronousAlgorithm)
    device = torch.device("cpu") if asynchronous else resolve_device(config.device)  # A3C shares CPU memory
    torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)

    observation_space, action_space = env_spaces(config.env_id)
    network = build_network(config, observation_space, action_space,
                            with_value=algo_cls.needs_value(config), module=module).to(device)
    previous = previous_record(path) if point is not None else {}
    kept = previous.get("preset_values") if is_preset_file(config.preset) else None
    record = run_record(config, device, kept if isinstance(kept, dict) else None)
    run_state: dict[str, Any] = {}
    state_tensors: dict[str, torch.Tensor] = {}
    if point is not None:
        load_model_state(point.folder, network, device)
        run_state, state_tensors = load_run_state(point.folder, device="cpu")
        resumes = previous.get("resumes", [])
        record["resumes"] = (resumes if isinstance(resumes, list) else []) + [
            {"from": str(point.folder.relative_to(path)), "global_step": point.global_step,
             "time": time.strftime("%Y-%m-%d %H:%M:%S")}]
    note = None if asynchronous else rounding_note(config)  # A3C: each worker stops on its own
    if note is not None:
        record["total_steps_note"] = note
        log.warning("total_steps=%d is rounded up to %d: %s", note["requested"], note["trains"], note["why"])
    write_json_atomic(path / "config.json", record)
    logs = checked_logs(point.folder, run_state.get("logs")) if point is not None else None
    logger = RunLogger(path, config.total_steps, config.tensorboard, config.progress, resume=logs,
                       evals=config.eval_every > 0)
    start = time.perf_counter()
    checkpoints = Checkpoints(path, config, network, logger.global_step)
    evaluations = (Evaluations(config, network, logger, device, logger.global_step, pause_clock=not asynchronous)
                   if config.eval_every else None)
    streak = checked_int(point.manifest["counters"], "nonfinite_streak", 0) if point is not None else 0
    optimizer: torch.optim.Optimizer | None = None
    run: SynchronousRun | None = None
    completed = False
    try:
        if issubclass(algo_cls, AsynchronousAlgorithm):  # A3C's workers own their loop
            def on_update(optimizer_now: torch.optim.Optimizer) -> None:
                if evaluations is not None and evaluations.due(logger.global_step):
                    # a copy: the workers go on updating the shared network while it plays
                    evaluations.run(logger.global_step, copy.deepcopy(network))
                if checkpoints.due(logger.global_step):
                    checkpoints.periodic(optimizer_now, logger, None, 0)

            def restore_optimizer(shared: torch.optim.Optimizer) -> None:
                if point is not None:
                    load_optimizer_state(point.folder, shared)

            if evaluations is not None and evaluations.due(logger.global_step):  # step 0 of a new run
                evaluations.run(logger.global_step)
            outcome = algo_cls.train_loop(config, network, logger, start_step=logger.global_step,
                                          restore_optimizer=restore_optimizer, on_update=on_update)
            global_step, optimizer = outcome.global_step, outcome.optimizer
            if evaluations is not None:
                evaluations.final(logger.global_step)
        else:
            run = SynchronousRun(config, algo_cls, network, device)
            optimizer = run.optimizer
            if point is not None:
                load_optimizer_state(point.folder, optimizer, device)
                run.load_state(run_state.get("algo", {}), state_tensors,
                               fresh_seed=config.seed + 1_000_003 * (1 + point.global_step))
                set_rng_state(run_state.get("rng", {}), state_tensors)
            streak = synchronous_loop(config, run, logger, checkpoints, streak, evaluations)
            global_step = logger.global_step
        completed = True
    finally:
        # Also on a crash or Ctrl-C: the weights trained so far are kept (the manifest says so).
        try:
            checkpoints.final(optimizer, logger, run, streak, completed)
        except RunWriteError as exc:
            if completed:
                raise
            log.info("the final weights were not saved either: %s", exc)  # the error that stopped the run goes on
        finally:
            logger.close()
            if run is not None:
                run.close()
    excluded = evaluations.seconds if evaluations is not None else 0.0
    return RunOutcome(path, network, device, global_step, time.perf_counter() - start - excluded)
