"""A3C: it learns, it overlaps work, and it never leaves a process behind."""

import csv
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import policygrad as pg
from policygrad.algos.a3c import WorkerFailed

TESTS = Path(__file__).parent


def a3c(**changes):
    return pg.make_config("a3c", progress=False, tensorboard=False, eval_episodes=5, **changes)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


def test_a3c_improves_on_cartpole_and_counts_steps_exactly(tmp_path):
    cfg = a3c(total_steps=40_000, num_workers=2)
    result = pg.train(cfg, run_dir=tmp_path / "run")
    with open(result.run_dir / "episodes.csv", newline="") as f:
        returns = np.array([float(r["return"]) for r in csv.DictReader(f)])
    assert returns[-40:].mean() > 2 * returns[:40].mean() and returns[-40:].mean() > 100
    # Every worker rollout is num_envs * num_steps = 20 steps; the count overshoots by at most one per worker.
    assert 40_000 <= result.global_step <= 40_000 + 2 * 20
    assert result.global_step % 20 == 0
    assert multiprocessing.active_children() == []


def test_a3c_with_device_auto_trains_on_the_cpu_where_cuda_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # `auto` would pick CUDA here
    result = pg.train(a3c(device="auto", total_steps=400, num_workers=1), run_dir=tmp_path / "run")
    assert json.loads((result.run_dir / "config.json").read_text())["device_used"] == "cpu"
    assert result.global_step >= 400


def test_exception_in_a_worker_stops_the_run_with_its_traceback(tmp_path):
    cfg = a3c(env_id="faulty_envs:RaisesAfterSteps", total_steps=100_000, num_workers=2)
    with pytest.raises(WorkerFailed, match="boom: the environment failed on purpose"):
        pg.train(cfg, run_dir=tmp_path / "run")
    pids = json.loads((tmp_path / "run" / "workers.json").read_text())["pids"]
    assert not any(alive(pid) for pid in pids)
    assert multiprocessing.active_children() == []


def run_in_subprocess(tmp_path: Path, total_steps: int) -> tuple[subprocess.Popen, list[int]]:
    run = tmp_path / "run"
    code = ("import sys; from policygrad.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "train", "a3c", "--run-dir", str(run), "--total-steps", str(total_steps),
         "--progress", "false", "--tensorboard", "false", "--num-workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (run / "workers.json").exists() and (run / "episodes.csv").exists() \
                and len((run / "episodes.csv").read_text().splitlines()) > 5:
            return proc, json.loads((run / "workers.json").read_text())["pids"]
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the A3C run did not start within 60 s")


def test_killing_one_worker_stops_the_run_cleanly(tmp_path):
    proc, pids = run_in_subprocess(tmp_path, total_steps=10_000_000)
    os.kill(pids[1], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "A3C worker 1" in stderr and "died with exit code -9" in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert not any(alive(pid) for pid in pids)


def test_ctrl_c_stops_every_worker(tmp_path):
    proc, pids = run_in_subprocess(tmp_path, total_steps=10_000_000)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert not any(alive(pid) for pid in pids)
    # The weights trained so far were saved, marked incomplete.
    manifest = json.loads((tmp_path / "run" / "checkpoint" / "checkpoint.json").read_text())
    assert manifest["counters"]["completed"] is False and manifest["counters"]["global_step"] > 0


def test_a3c_from_a_script_without_main_guard(tmp_path):
    """Spawned workers must not re-run the user's script (which would start training again)."""
    script = tmp_path / "train_a3c.py"
    script.write_text(
        "import policygrad as pg\n"
        "cfg = pg.make_config('a3c', total_steps=2000, progress=False, tensorboard=False, eval_episodes=2)\n"
        f"result = pg.train(cfg, run_dir={str(tmp_path / 'run')!r})\n"
        "print('trained', result.global_step)\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("trained") == 1


@pytest.mark.slow
def test_a3c_solves_cartpole_within_500k(tmp_path):
    """Deterministic evaluation >= 475 over 20 episodes within 500k steps on at least 4 of 5 seeds."""
    means = []
    for seed in range(1, 6):
        cfg = pg.make_config("a3c", total_steps=500_000 - 2 * 20, seed=seed, progress=False, tensorboard=False)
        result = pg.train(cfg, run_dir=tmp_path / f"seed{seed}")
        assert result.global_step <= 500_000
        means.append(result.evaluation.mean)
        print(f"a3c seed {seed}: eval {result.evaluation.mean:.1f} after {result.global_step} steps "
              f"in {result.seconds:.1f} s")
    assert sum(m >= 475 for m in means) >= 4, means
