"""Studies on a Ray cluster (``--backend ray [--address ADDR]``; ``pip install 'policygrad[ray]'``).

Each run is one Ray task needing one CPU (and one GPU when its config says ``device=cuda``), placed by
Ray on any node; at most ``workers`` are in flight. The driver (the process running the study) keeps
the study directory; no filesystem is shared with the nodes.

What travels, and why this way. The task is a Ray *streaming generator*: it trains the run in a
scratch directory on its node (:func:`policygrad.studies.tasks.execute`, in a thread) and, while it
trains, yields each new periodic checkpoint (the ``checkpoints/step_N/`` folder, ``checkpoints/latest``,
``config.json`` and the CSV logs cut at the sizes that checkpoint recorded, so that they match it
exactly); it ends by yielding every file of the finished run directory. The driver writes each message
into ``runs/RUN_ID/`` as it arrives, so its copy is always a resumable run directory, and in the end
the same directory a local study has (but for the run's lock files, which stay on the node, and the
wall-clock columns). Values travel as Ray's own return values (bytes in dicts);
nothing reads a pickle file.

A lost task (its worker process killed, its node gone, out of memory...) is retried by the driver, not
by Ray: a Ray retry would re-run the task with its original arguments, i.e. from the run directory as
it was when first submitted, while the driver resubmits it with its current copy, so that the run
resumes from the last checkpoint it received rather than from zero. ``retries`` bounds the attempts
(then the run is ``failed``); since a resumed run is bit-identical to an uninterrupted one on the CPU
and seeds come from the spec, results.csv equals a local study's but for ``wall_seconds``. A task that
raises an exception in policygrad's own code is not lost but failed, as in the local backend. Stopping
the driver (Ctrl-C, or a killed process: Ray ends a dead driver's tasks) leaves the study resumable
(``policygrad sweep --resume STUDY_DIR --backend ray``).

Connecting: ``address`` is a running cluster's (``ray start --head`` prints it, e.g. ``HOST:6379``), or
None to start a Ray instance on this machine for the study, shut down by :meth:`RayBackend.close`
(only what this backend started is stopped; a cluster it connected to is left running). A cluster with
token authentication needs ``RAY_AUTH_MODE=token`` and its token (``RAY_AUTH_TOKEN``, or
``~/.ray/auth_token``) in the driver's environment, as on its nodes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from policygrad.run import files as run_files
from policygrad.run.checkpoint import CHECKPOINT_DIR, CHECKPOINTS_DIR, LATEST_FILE, STEP_NAME, read_manifest
from policygrad.run.logger import EPISODES_FILE, EVALS_FILE, METRICS_FILE
from policygrad.studies.tasks import EVAL_FILE, FAILED, RunTask, TaskResult, execute, one_line, warm_up

INSTALL_HINT = "pip install 'policygrad[ray]'"
POLL_SECONDS = 0.5  # how often a task looks for a new periodic checkpoint to send
CONFIG_FILE = "config.json"
LOG_FILES = (METRICS_FILE, EPISODES_FILE, EVALS_FILE)


def require_ray() -> ModuleType:
    """The ``ray`` module, or a one-line ValueError saying how to install it (imported here, at each
    call, so that the message is right whatever was imported before)."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"the Ray backend needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


# -- files in messages ----------------------------------------------------------------------------------
def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` as ``{relative/posix/path: bytes}``, but hidden ones (the run's lock
    files, leftovers of interrupted writes, at any depth) and ``*.tmp`` files being written."""
    files: dict[str, bytes] = {}
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.name.endswith(".tmp"):
            continue
        if path.is_file() and not path.is_symlink():
            files[rel.as_posix()] = path.read_bytes()
    return files


def checked_path(root: Path, rel: str) -> Path:
    """``root / rel`` for a relative path received from a node, refused (ValueError) if it could lead
    outside ``root`` or name a hidden file."""
    parts = PurePosixPath(rel).parts
    if not rel or "\\" in rel or PurePosixPath(rel).is_absolute() or \
            any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise ValueError(f"a run's node sent a file named {rel[:80]!r}, which is not a path inside its run directory")
    return root.joinpath(*parts)


def write_folder(folder: Path, files: Mapping[str, bytes]) -> None:
    """Replace ``folder`` by one holding ``files`` (names inside it, checked) at once, so that a killed
    driver leaves either the old folder or the new one."""

    def fill(staged: Path) -> None:
        for rel, data in files.items():
            target = checked_path(staged, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    run_files.write_folder(folder, fill)


def split_folders(files: Mapping[str, bytes]) -> tuple[dict[str, dict[str, bytes]], dict[str, bytes]]:
    """``files`` as checkpoint folders (``checkpoint`` and ``checkpoints/step_N``: {folder: {name: data}})
    and the other files."""
    folders: dict[str, dict[str, bytes]] = {}
    rest: dict[str, bytes] = {}
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if len(parts) >= 2 and parts[0] == CHECKPOINT_DIR:
            folders.setdefault(CHECKPOINT_DIR, {})["/".join(parts[1:])] = data
        elif len(parts) >= 3 and parts[0] == CHECKPOINTS_DIR and STEP_NAME.fullmatch(parts[1]):
            folders.setdefault(f"{CHECKPOINTS_DIR}/{parts[1]}", {})["/".join(parts[2:])] = data
        else:
            rest[rel] = data
    return folders, rest


def write_checkpoint(run_dir: Path, files: Mapping[str, bytes], keep: Sequence[str]) -> None:
    """A periodic checkpoint from a node, into the driver's copy of the run: its folder first (whole),
    then the logs and config.json, ``checkpoints/latest`` last, so that whenever the driver is killed
    the copy resumes from this checkpoint or the one before (the logs only grow, and a resume cuts them
    back to its checkpoint's sizes). Periodic folders the node no longer keeps (``keep``) go."""
    folders, rest = split_folders(files)
    for folder, inside in folders.items():
        write_folder(checked_path(run_dir, folder), inside)
    latest = f"{CHECKPOINTS_DIR}/{LATEST_FILE}"
    for rel, data in rest.items():
        if rel != latest:
            run_files.write_bytes_atomic(checked_path(run_dir, rel), data)
    if latest in rest:
        run_files.write_bytes_atomic(checked_path(run_dir, latest), rest[latest])
    root = run_dir / CHECKPOINTS_DIR
    if root.is_dir():
        for old in root.iterdir():
            if old.is_dir() and STEP_NAME.fullmatch(old.name) and old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)


def write_final(run_dir: Path, files: Mapping[str, bytes]) -> None:
    """The finished run directory from a node, over the driver's copy: the logs and periodic
    checkpoints, then the final ``checkpoint/`` (whole), ``eval.json`` last (it marks the run done);
    then whatever the node's directory no longer holds goes (older periodic checkpoints, an old
    error.txt), so that the copy equals the node's directory."""
    folders, rest = split_folders(files)
    for folder, inside in folders.items():
        if folder != CHECKPOINT_DIR:
            write_folder(checked_path(run_dir, folder), inside)
    for rel, data in rest.items():
        if rel != EVAL_FILE:
            run_files.write_bytes_atomic(checked_path(run_dir, rel), data)
    if CHECKPOINT_DIR in folders:
        write_folder(run_dir / CHECKPOINT_DIR, folders[CHECKPOINT_DIR])
    if EVAL_FILE in rest:
        run_files.write_bytes_atomic(run_dir / EVAL_FILE, rest[EVAL_FILE])
    for path in sorted(run_dir.rglob("*"), reverse=True):  # deepest first: files before their folders
        here = path.relative_to(run_dir)
        if here.parts[0].startswith(".") or here.as_posix() in files:
            continue
        if path.is_dir():
            if not any(name.startswith(f"{here.as_posix()}/") for name in files):
                shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


# -- on a node: the task ---------------------------------------------------------------------------------------
def checkpoint_message(run_dir: Path) -> dict[str, Any] | None:
    """The newest periodic checkpoint of the run training in ``run_dir``, as a message (None if there
    is none yet, or it went while being read: the next look finds the newer one)."""
    root = run_dir / CHECKPOINTS_DIR
    try:
        name = (root / LATEST_FILE).read_text().strip()
        if not STEP_NAME.fullmatch(name):
            return None
        folder = root / name
        manifest = read_manifest(folder)
        logs = manifest["run_state"]["logs"]
        files = {f"{CHECKPOINTS_DIR}/{name}/{p.name}": p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        for log in LOG_FILES:  # cut where the checkpoint says: rows written since belong to the next one
            size = logs.get(log)
            if isinstance(size, int) and not isinstance(size, bool) and (run_dir / log).is_file():
                files[log] = (run_dir / log).read_bytes()[:size]
        files[CONFIG_FILE] = (run_dir / CONFIG_FILE).read_bytes()
        files[f"{CHECKPOINTS_DIR}/{LATEST_FILE}"] = f"{name}\n".encode()
        keep = sorted(p.name for p in root.iterdir() if p.is_dir() and STEP_NAME.fullmatch(p.name))
        step = int(manifest["counters"]["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"kind": "checkpoint", "name": name, "step": step, "files": files, "keep": keep}


_warmed = False


def run_on_node(task: RunTask, files: dict[str, bytes]) -> Iterator[dict[str, Any]]:
    """The Ray task: write ``files`` (the driver's copy of the run directory) into a scratch directory,
    run :func:`execute` there, and yield ``started``, each new periodic ``checkpoint``, then ``end``
    (the result and every file of the run directory). The scratch directory goes at the end (a task
    killed with its process leaves it, ``policygrad-run-*`` in the node's temporary directory)."""
    import ray

    global _warmed
    if not _warmed:  # Ray reuses a worker process for later tasks: its one-time costs are paid once
        warm_up()
        _warmed = True
    yield {"kind": "started", "node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
    scratch = Path(tempfile.mkdtemp(prefix="policygrad-run-"))
    try:
        run_dir = scratch / task.run_id  # the run's own name: its plot titles match a local study's
        for rel, data in files.items():
            path = checked_path(run_dir, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        box: list[TaskResult] = []

        def train() -> None:
            try:
                box.append(execute(dataclasses.replace(task, run_dir=str(run_dir))))
            except BaseException as exc:  # execute turns every Exception into a result; this is the rest
                box.append(TaskResult(task.run_id, FAILED, one_line(exc)))

        # Training runs in a thread because only the task's own thread can yield, and it must yield
        # checkpoints while the run trains.
        thread = threading.Thread(target=train, name=f"policygrad-run-{task.run_id}", daemon=True)
        thread.start()
        sent = None
        while thread.is_alive():
            thread.join(POLL_SECONDS)
            message = checkpoint_message(run_dir) if thread.is_alive() else None
            if message is not None and message["name"] != sent:
                sent = message["name"]
                yield message
        result = box[0] if box else TaskResult(task.run_id, FAILED, "the run's thread ended without a result")
        yield {"kind": "end", "status": result.status, "error": result.error, "files": read_tree(run_dir)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- on the driver ---------------------------------------------------------------------------------------------
def reason(exc: BaseException) -> str:
    """Why a task was lost, in a few words: Ray's error type and its first sentence (Ray's messages go
    on for lines about where to look; they are in Ray's logs)."""
    text = " ".join(str(exc).split())
    first = text.split(". ")[0].rstrip(".")
    first = first if len(first) <= 160 else first[:157] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@dataclasses.dataclass
class _Flight:
    task: RunTask
    step: int | None = None  # the newest checkpoint the driver has of this attempt's run


class RayBackend:
    """Runs a study's tasks as Ray tasks (see the module's docstring). ``address``: a running cluster's,
    or None for a Ray instance on this machine started by :meth:`start` and stopped by :meth:`close`.
    ``retries``: how often a run whose task was lost is submitted again (from its last checkpoint).
    ``running``: ``{run_id: (node_id, pid)}`` of the runs in flight, as their tasks reported."""

    def __init__(self, address: str | None = None, *, retries: int = 2,
                 echo: Callable[[str], None] | None = print) -> None:
        require_ray()
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"address={address!r} is invalid: expected a Ray cluster's address such as HOST:6379")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"retries={retries!r} is invalid: expected an integer >= 0")
        self.address, self.retries, self.echo = address, retries, echo
        self.running: dict[str, tuple[str, int]] = {}
        self._connected = False
        self._owned = False  # this backend called ray.init, so it calls ray.shutdown
        self._remote: Any = None  # run_on_node as a Ray remote function, made once

    # connecting ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect (or start a local Ray instance); a no-op once connected, and when this process is
        already connected to Ray (that connection is used, and left open)."""
        ray = require_ray()
        if self._connected:
            return
        if ray.is_initialized():
            self._connected = True
            return
        import logging

        try:
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            hint = (" (is `ray start --head` running there, and does this address match what it printed? A cluster "
                    "with token authentication also needs RAY_AUTH_MODE=token and its token here)") \
                if self.address else ""
            raise ValueError(f"cannot connect to {where}: {one_line(exc)}{hint}") from None
        self._connected = self._owned = True

    def close(self) -> None:
        """Disconnect; a Ray instance this backend started stops with it, a cluster stays up."""
        if self._owned:
            ray = require_ray()
            ray.shutdown()
        self._connected = self._owned = False

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _resources(self) -> dict[str, float]:
        self.start()
        return dict(require_ray().cluster_resources())

    def default_workers(self) -> int:
        """The cluster's CPUs (each run takes one)."""
        return max(1, int(self._resources().get("CPU", 1)))

    def describe(self, workers: int) -> str:
        ray = require_ray()
        resources = self._resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        return (f"{where} ({nodes} node{'s' * (nodes != 1)}, {int(resources.get('CPU', 0))} CPUs), {workers} "
                f"run{'s' * (workers != 1)} at a time")

    # running -------------------------------------------------------------------------------------------------
    def run_all(self, tasks: Sequence[RunTask], workers: int,
                on_result: Callable[[TaskResult], None] | None = None) -> list[TaskResult]:
        """See :class:`policygrad.studies.runner.Backend`."""
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers={workers!r} is invalid: expected an integer >= 1")
        ray = require_ray()
        gpus = self._resources().get("GPU", 0)
        if self._remote is None:
            self._remote = ray.remote(num_returns="streaming", max_retries=0, retry_exceptions=False)(run_on_node)
        remote = self._remote
        say = self.echo or (lambda text: None)
        pending: deque[RunTask] = deque(tasks)
        inflight: dict[Any, _Flight] = {}
        losses: dict[str, int] = {}
        results: dict[str, TaskResult] = {}

        def finish(result: TaskResult) -> None:
            self.running.pop(result.run_id, None)
            results[result.run_id] = result
            if on_result is not None:
                on_result(result)

        def lost(flight: _Flight, reason: str) -> None:
            run_id = flight.task.run_id
            self.running.pop(run_id, None)
            losses[run_id] = losses.get(run_id, 0) + 1
            if losses[run_id] > self.retries:
                finish(TaskResult(run_id, FAILED, f"its Ray task was lost {losses[run_id]} times (last: {reason})",
                                  losses[run_id]))
                return
            start = f"from its checkpoint at step {flight.step}" if flight.step is not None else \
                "from its last checkpoint, if any"
            say(f"  {run_id}: its Ray task was lost ({reason}); retrying it {start}")
            pending.appendleft(flight.task)

        try:
            while pending or inflight:
                while pending and len(inflight) < workers:
                    task = pending.popleft()
                    cuda = task.config is not None and getattr(task.config, "device", "cpu") == "cuda"
                    if cuda and gpus < 1:
                        finish(TaskResult(task.run_id, FAILED, "device=cuda, but the Ray cluster has no GPU: run on "
                                          "a cluster with GPU nodes, or with device=cpu"))
                        continue
                    files = read_tree(Path(task.run_dir))  # the driver's copy: resumes where it stands
                    generator = remote.options(num_cpus=1, num_gpus=1 if cuda else 0).remote(task, files)
                    inflight[generator] = _Flight(task)
                if not inflight:
                    continue
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
                for generator in ready:
                    flight = inflight[generator]
                    run_id, run_dir = flight.task.run_id, Path(flight.task.run_dir)
                    try:
                        message = ray.get(next(generator))
                    except StopIteration:
                        del inflight[generator]
                        lost(flight, "its task ended without sending the run")
                        continue
                    except ray.exceptions.RayTaskError as exc:  # policygrad's code raised on the node
                        del inflight[generator]
                        finish(TaskResult(run_id, FAILED, f"its Ray task raised {one_line(exc.cause or exc)}",
                                          losses.get(run_id, 0) + 1))
                        continue
                    except ray.exceptions.RayError as exc:  # the worker process or its node was lost
                        del inflight[generator]
                        lost(flight, reason(exc))
                        continue
                    try:
                        if message["kind"] == "started":
                            self.running[run_id] = (message["node"], message["pid"])
                        elif message["kind"] == "checkpoint":
                            write_checkpoint(run_dir, message["files"], message["keep"])
                            flight.step = message["step"]
                        else:
                            del inflight[generator]
                            write_final(run_dir, message["files"])
                            finish(TaskResult(run_id, message["status"], message["error"], losses.get(run_id, 0) + 1))
                    except (ValueError, OSError, KeyError, TypeError) as exc:  # a file the driver cannot (or must
                        # not) write, or a message it does not understand (another policygrad version on the node)
                        inflight.pop(generator, None)
                        with contextlib.suppress(Exception):
                            ray.cancel(generator, force=True)
                        finish(TaskResult(run_id, FAILED, f"its records could not be written here: {one_line(exc)}",
                                          losses.get(run_id, 0) + 1))
        finally:
            for generator in inflight:  # stopped early (Ctrl-C, an error): the runs stop, their copies stay
                with contextlib.suppress(Exception):
                    ray.cancel(generator, force=True)
            self.running.clear()
        return [results[t.run_id] for t in tasks if t.run_id in results]

