"""What keeping the local backend's worker processes between ``run_all`` calls saves.

A tuning calls ``run_all`` once per generation of trials (``workers`` trials at a time) and once more
for the re-evaluation; a study calls it once. Each call used to spawn its workers afresh, and a spawned
worker pays its imports (torch, gymnasium, policygrad) before its first task. This times the same
sequence of calls, each with 2 trivial tasks on 2 workers, two ways, alternated so that both see the
same load: one backend for every call (as now), and a new backend per call (as before). The tasks do
nothing, so the times are the overhead alone.

Run: ``python benchmarks/local_backend_reuse.py``; writes ``benchmarks/results/local_backend_reuse.md``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from policygrad.studies.backends.local import LocalBackend
from policygrad.studies.backends.run_task import DONE, RunTask, TaskResult

CALLS = 8  # generations of a tuning of 16 trials on 2 workers
ROUNDS = 3
OUT = Path(__file__).parent / "results" / Path(__file__).with_suffix(".md").name


def nothing(task: RunTask) -> TaskResult:
    return TaskResult(task.run_id, DONE)


def importable_nothing():
    """:func:`nothing` under this module's name: the workers never run ``__main__``, so they import it."""
    import local_backend_reuse  # this file: its folder is on the path the workers inherit

    return local_backend_reuse.nothing


def calls(reuse: bool) -> float:
    """Seconds for CALLS run_all calls of 2 tasks on 2 workers."""
    tasks = [RunTask(f"t{i}", "", None) for i in range(2)]
    fn = importable_nothing()
    start = time.perf_counter()
    backend = LocalBackend(fn=fn, echo=None)
    for _ in range(CALLS):
        if not reuse:
            backend.close()
            backend = LocalBackend(fn=fn, echo=None)
        results = backend.run_all(tasks, 2)
        assert all(r.status == DONE for r in results), results
    backend.close()
    return time.perf_counter() - start


def main() -> None:
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(ROUNDS):
        for reuse in (False, True):
            times[reuse].append(calls(reuse))
    kept, fresh = statistics.median(times[True]), statistics.median(times[False])
    text = (f"# Local backend: workers kept between run_all calls\n\n"
            f"{CALLS} `run_all` calls of 2 no-op tasks on 2 workers (a tuning's generations), median of {ROUNDS} "
            f"alternated rounds, `python {Path(sys.argv[0]).name}`, {time.strftime('%Y-%m-%d', time.gmtime())}:\n\n"
            f"| workers | seconds for {CALLS} calls | per call |\n|---|---|---|\n"
            f"| spawned per call (before) | {fresh:.2f} ({', '.join(f'{t:.2f}' for t in times[False])}) | "
            f"{fresh / CALLS:.2f} |\n"
            f"| kept between calls (now) | {kept:.2f} ({', '.join(f'{t:.2f}' for t in times[True])}) | "
            f"{kept / CALLS:.2f} |\n\n"
            f"Saved: {fresh - kept:.2f} s over {CALLS} calls ({fresh / kept:.1f}x less overhead).\n")
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
