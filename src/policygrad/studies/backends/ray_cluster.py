"""Studies on a Ray cluster (``--backend ray [--address ADDR]``; ``pip install 'policygrad[ray]'``).

Each run is one Ray task needing one CPU (and one GPU when its config says ``device=cuda``), placed by
Ray on any node; at most ``workers`` are in flight. The driver (the process running the study) keeps
the study directory; no filesystem is shared with the nodes.

What travels, and why this way. The task is a Ray *streaming generator*: it trains the run in a
scratch directory on its node (:func:`policygrad.studies.backends.run_task.execute`, in a thread) and, while it
trains, yields each new periodic checkpoint (the ``checkpoints/step_N/`` folder, ``checkpoints/latest``,
``config.json`` and the CSV logs cut at the sizes that checkpoint recorded, so that they match it
exactly); it ends by yielding every file of the finished run directory. The driver writes each message
into ``runs/RUN_ID/`` as it arrives, so its copy is always a resumable run directory, and in the end
the same directory a local study has (but for the run's lock files, which stay on the node, and the
wall-clock columns). Values travel as Ray's own return values (bytes in dicts);
nothing reads a pickle file (:mod:`~policygrad.studies.backends.transfer`).

A lost task (its worker process killed, its node gone, out of memory...) is retried by the driver, not
by Ray: a Ray retry would re-run the task with its original arguments, i.e. from the run directory as
it was when first submitted, while the driver resubmits it with its current copy, so that the run
resumes from the last checkpoint it received rather than from zero. ``retries`` bounds the attempts
(then the run is ``failed``; :mod:`~policygrad.studies.backends.scheduler`, as for the local
backend); since a resumed run is bit-identical to an uninterrupted one on the CPU and seeds come from
the spec, results.csv equals a local study's but for ``wall_seconds``. A task that
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from policygrad.core.errors import UserInputError
from policygrad.studies.backends.run_task import FAILED, RunTask, TaskResult, execute, one_line, warm_up
from policygrad.studies.backends.scheduler import Scheduler
from policygrad.studies.backends.transfer import (
    checked_path,
    checkpoint_message,
    read_tree,
    write_checkpoint,
    write_final,
)

INSTALL_HINT = "pip install 'policygrad[ray]'"
POLL_SECONDS = 0.5  # how often a task looks for a new periodic checkpoint to send


def require_ray() -> ModuleType:
    """The ``ray`` module, or a one-line UserInputError saying how to install it (imported here, at each
    call, so that the message is right whatever was imported before)."""
    try:
        import ray
    except ImportError:
        raise UserInputError(f"the Ray backend needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


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
            raise UserInputError(f"address={address!r} is invalid: expected a Ray cluster's address such as "
                                 "HOST:6379")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise UserInputError(f"retries={retries!r} is invalid: expected an integer >= 0")
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
            raise UserInputError(f"cannot connect to {where}: {one_line(exc)}{hint}") from None
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
    def _largest_node(self) -> int:
        """The CPUs of the largest live node: a run cannot ask for more (Ray would wait for it forever)."""
        nodes = [node.get("Resources", {}).get("CPU", 0) for node in require_ray().nodes() if node.get("Alive")]
        return max(1, int(max(nodes, default=1)))

    def run_all(self, tasks: Sequence[RunTask], workers: int,
                on_result: Callable[[TaskResult], None] | None = None) -> list[TaskResult]:
        """See :class:`policygrad.studies.backends.Backend`. A run asks Ray for one CPU per process it
        trains in (an A3C run's ``num_workers``, up to the largest node's CPUs)."""
        schedule = Scheduler(tasks, workers, self.retries, on_result, self.echo)
        ray = require_ray()
        gpus = self._resources().get("GPU", 0)
        largest = self._largest_node()
        if self._remote is None:
            self._remote = ray.remote(num_returns="streaming", max_retries=0, retry_exceptions=False)(run_on_node)
        remote = self._remote
        inflight: dict[Any, _Flight] = {}

        def finish(result: TaskResult) -> None:
            self.running.pop(result.run_id, None)
            schedule.finish(result)

        def lost(flight: _Flight, reason: str) -> None:
            run_id = flight.task.run_id
            self.running.pop(run_id, None)
            start = f"from its checkpoint at step {flight.step}" if flight.step is not None else \
                "from its last checkpoint, if any"
            schedule.lost(flight.task, lambda count: f"its Ray task was lost {count} times (last: {reason})",
                          f"  {run_id}: its Ray task was lost ({reason}); retrying it {start}")

        try:
            while schedule.unfinished:
                while (task := schedule.next_task()) is not None:
                    cuda = task.config is not None and getattr(task.config, "device", "cpu") == "cuda"
                    if cuda and gpus < 1:
                        finish(TaskResult(task.run_id, FAILED, "device=cuda, but the Ray cluster has no GPU: run on "
                                          "a cluster with GPU nodes, or with device=cpu"))
                        continue
                    files = read_tree(Path(task.run_dir))  # the driver's copy: resumes where it stands
                    cpus = min(task.processes, largest)
                    generator = remote.options(num_cpus=cpus, num_gpus=1 if cuda else 0).remote(task, files)
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
                        finish(TaskResult(run_id, FAILED, f"its Ray task raised {one_line(exc.cause or exc)}"))
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
                            finish(TaskResult(run_id, message["status"], message["error"]))
                    except (ValueError, OSError, KeyError, TypeError) as exc:  # a file the driver cannot (or must
                        # not) write, or a message it does not understand (another policygrad version on the node)
                        inflight.pop(generator, None)
                        with contextlib.suppress(Exception):
                            ray.cancel(generator, force=True)
                        finish(TaskResult(run_id, FAILED, f"its records could not be written here: {one_line(exc)}"))
        finally:
            for generator in inflight:  # stopped early (Ctrl-C, an error): the runs stop, their copies stay
                with contextlib.suppress(Exception):
                    ray.cancel(generator, force=True)
            self.running.clear()
        return schedule.ordered_results()

