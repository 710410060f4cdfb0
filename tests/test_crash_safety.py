"""Crash safety: a training process killed with SIGKILL at random moments, many of them in the middle of
writing a checkpoint, always leaves a latest checkpoint that loads in full, never a partial folder that
passes for a complete one; and resuming after every kill still ends exactly where an uninterrupted run
ends.

To kill often without paying for a Python + torch start-up per kill, one helper process imports
policygrad once and forks a child per trial: the child trains (or resumes) and the helper kills it,
either the moment a checkpoint's temporary folder appears (mid-write) or after a random delay.
"""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import policygrad as pg
from policygrad.run.checkpoint import periodic_checkpoints, verify_checkpoint

TESTS = Path(__file__).parent
pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="needs fork and SIGKILL")
CONFIG = dict(env_id="CartPole-v1", total_steps=800, num_envs=4, num_steps=5, checkpoint_every=40, keep_checkpoints=2,
              progress=False, tensorboard=False, device="cpu", eval_episodes=2)

KILLER = r"""
import json, os, random, signal, sys, time
import torch
torch.set_num_threads(1)  # no thread pool in this process: forking it stays safe
import policygrad as pg
import matplotlib.pyplot, policygrad.env_check, torch._dynamo  # children start warm (torch.optim imports dynamo)
from policygrad.run.checkpoint import CHECKPOINTS_DIR, latest_checkpoint, periodic_checkpoints, verify_checkpoint
from policygrad.run.resume import find_resume_point
from policygrad.core.networks import build_agent
from policygrad.core.envs import env_spaces
from policygrad.algos.base import make_optimizer
from policygrad.run.checkpoint import load_model_state, load_optimizer_state, load_run_state

run_dir, trials, seed, config = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
rng = random.Random(seed)
cfg = pg.make_config("a2c", **config)

def child():
    try:
        if latest_checkpoint(run_dir) is None:
            pg.train(cfg, run_dir=run_dir, overwrite=True)
        elif find_resume_point(run_dir).global_step < cfg.total_steps:  # else killed after it finished
            pg.train(None, resume_from=run_dir)
        os._exit(0)
    except BaseException as exc:
        sys.stderr.write(f"child failed: {type(exc).__name__}: {exc}\n")
        os._exit(3)

def temporary_folders():
    # checkpoints being written: temporary folders, or step folders newer than the one latest names
    root = os.path.join(run_dir, CHECKPOINTS_DIR)
    if not os.path.isdir(root):
        return []
    names, latest = os.listdir(root), latest_name() or ""
    return [n for n in names if ".tmp-" in n or (n.startswith("step_") and n > latest)]

def check():
    # the pointer names a complete checkpoint that resumes, and loads into a network and an optimizer
    point = find_resume_point(run_dir)
    net = build_agent(cfg, *env_spaces(cfg.env_id), with_value=True)
    load_model_state(point.folder, net)
    load_optimizer_state(point.folder, make_optimizer(net.parameters(), cfg.learning_rate, cfg.optimizer))
    load_run_state(point.folder)
    for folder in periodic_checkpoints(run_dir):  # nothing incomplete under a complete-looking name
        verify_checkpoint(folder)
    return point.folder.name, point.global_step

def latest_name():
    try:
        with open(os.path.join(run_dir, CHECKPOINTS_DIR, "latest")) as f:
            return f.read().strip()
    except OSError:
        return None

report = []
for trial in range(trials):
    mid_write = trial % 2 == 0
    before = latest_name()
    pid = os.fork()
    if pid == 0:
        child()
    # Let the child make progress (a new checkpoint), then kill it: the moment the next checkpoint's
    # temporary folder appears (mid-write), or after a random delay.
    killed_writing, deadline = False, time.monotonic() + 60
    while latest_name() == before and time.monotonic() < deadline:
        time.sleep(0.001)
    if mid_write:
        soon = time.monotonic() + 2
        while not temporary_folders() and time.monotonic() < soon:
            time.sleep(0.0002)
        time.sleep(rng.uniform(0, 0.004))
        killed_writing = True
    else:
        time.sleep(rng.uniform(0, 0.05))
    leftovers = temporary_folders()
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        report.append({"trial": trial, "exited": os.WEXITSTATUS(status)})
        break
    name, step = check() if latest_checkpoint(run_dir) is not None else (None, 0)
    report.append({"trial": trial, "latest": name, "step": step, "mid_write": bool(killed_writing and leftovers)})
if "exited" not in report[-1]:  # the last child was killed: resume once more, to the end
    pid = os.fork()
    if pid == 0:
        child()
    _, status = os.waitpid(pid, 0)
    report.append({"final_exit": os.WEXITSTATUS(status)})
else:
    report.append({"final_exit": report[-1]["exited"]})
print(json.dumps(report))
"""


def kill_repeatedly(run_dir: Path, trials: int, seed: int, config: dict) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", KILLER, str(run_dir), str(trials), str(seed), json.dumps(config)],
                          capture_output=True, text=True, timeout=600, cwd=TESTS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "child failed" not in proc.stderr, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def episodes(run_dir: Path) -> list[list[str]]:
    with open(run_dir / "episodes.csv", newline="") as f:
        return [[row["global_step"], row["return"], row["length"]] for row in csv.DictReader(f)]


def check_killed_run(tmp_path: Path, trials: int, seed: int, total_steps: int = 800) -> list[dict]:
    config = {**CONFIG, "total_steps": total_steps}
    run_dir = tmp_path / "killed"
    report = kill_repeatedly(run_dir, trials, seed, config)
    kills = [r for r in report if "latest" in r]
    assert report[-1] == {"final_exit": 0}, report
    assert len(kills) >= trials - 1, report  # a child may finish the run before its kill (then the loop stops)
    steps = [r["step"] for r in kills]
    assert steps == sorted(steps) and steps[-1] > 0, report  # every kill lost at most the last few updates
    # After the kills, and the resumes between them, the run ends exactly as one that was never killed.
    straight = pg.train(pg.make_config("a2c", **{**config, "checkpoint_every": 0}), run_dir=tmp_path / "straight")
    resumed = pg.load(run_dir)
    for key, value in straight.agent.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key]), key
    assert episodes(run_dir) == episodes(straight.run_dir)
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]  # leftovers cleaned
    assert len(periodic_checkpoints(run_dir)) <= CONFIG["keep_checkpoints"]
    for folder in periodic_checkpoints(run_dir):
        verify_checkpoint(folder)
    json.loads((run_dir / "config.json").read_text())["resumes"]  # every resume was recorded
    return kills


def test_sigkill_during_checkpoint_writes_never_breaks_the_latest_checkpoint(tmp_path):
    kills = check_killed_run(tmp_path, trials=4, seed=1)
    print(f"{len(kills)} kills, {sum(k['mid_write'] for k in kills)} while a checkpoint was being written")


@pytest.mark.slow
def test_sigkill_forty_times(tmp_path):
    kills = check_killed_run(tmp_path, trials=40, seed=2, total_steps=4000)
    mid_write = sum(k["mid_write"] for k in kills)
    print(f"{len(kills)} kills, {mid_write} while a checkpoint was being written")
    assert mid_write >= 5
