"""Exact resume: a run stopped at a checkpoint and continued in a fresh process ends bit for bit where the
uninterrupted run ends (parameters, optimizer state, episodes, metrics, evaluation) on the CPU, for
REINFORCE, one-step actor-critic, A2C and PPO; A3C continues from its checkpoint with its step count."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import policygrad as pg
from policygrad.cli import main
from policygrad.core.envs import env_spaces
from policygrad.core.networks import ActorCritic
from policygrad.run.checkpoint import (
    latest_checkpoint,
    periodic_checkpoints,
    read_manifest,
    save_checkpoint,
    save_periodic,
)

TESTS = Path(__file__).parent
FAST = dict(progress=False, tensorboard=False, device="cpu", eval_episodes=2, keep_checkpoints=10)

# Each carries state across the checkpoint that a careless resume would lose: normalization statistics,
# the reward scaler's running returns, the annealed learning rate, episodes in flight (CartPole's native
# vector env; Pendulum's sync vector env with TimeLimit wrappers and truncations), Gaussian sampling;
# and periodic evaluations (eval_every, evals.csv) on both sides of the checkpoint.
CONFIGS = {
    "reinforce": dict(env_id="CartPole-v1", total_steps=1000, num_envs=4, checkpoint_every=400, normalize_obs=True,
                      eval_every=300),
    "actor_critic": dict(env_id="CartPole-v1", total_steps=240, num_envs=4, checkpoint_every=120, eval_every=100),
    "a2c": dict(env_id="CartPole-v1", total_steps=800, num_envs=4, checkpoint_every=300, normalize_obs=True,
                reward_norm="scale", eval_every=250),
    "ppo": dict(env_id="Pendulum-v1", total_steps=512, num_envs=1, num_steps=64, update_epochs=2,
                checkpoint_every=256, normalize_obs=True, reward_norm="scale", eval_every=128),
    # gSDE's exploration matrices are not saved: the collector draws new ones when a rollout starts (and
    # every sde_sample_freq steps), from the torch generator the checkpoint restores.
    # Recurrent: the hidden state the next rollout goes on with (collector.next_state, next_start) is
    # saved; CartPoleNoVel's episodes run across the checkpoint with a non-zero state.
    "ppo:lstm": dict(env_id="CartPoleNoVel-v1", total_steps=384, num_envs=2, num_steps=32, num_minibatches=2,
                     update_epochs=2, checkpoint_every=128, recurrent="lstm", recurrent_size=16, eval_every=128),
    "a2c:gru": dict(env_id="CartPoleNoVel-v1", total_steps=300, num_envs=2, checkpoint_every=100, recurrent="gru",
                    recurrent_size=16, eval_every=100),
    "ppo:gsde": dict(env_id="Pendulum-v1", total_steps=512, num_envs=1, num_steps=32, num_minibatches=4,
                     update_epochs=2, checkpoint_every=256, distribution="gsde", sde_sample_freq=12, eval_every=128),
}

RESUME_SCRIPT = """
import sys
from policygrad.cli import main
for run_dir, name in zip(sys.argv[1::2], sys.argv[2::2]):
    code = main(["resume", run_dir, "--checkpoint", name])
    if code:
        sys.exit(code)
"""


def rows(path: Path, drop=("wall_time", "perf/sps")) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """For each algorithm: the uninterrupted run, and a copy resumed from its first checkpoint by
    ``policygrad resume`` in one fresh process."""
    root = tmp_path_factory.mktemp("resume")
    out = {}
    for algo, values in CONFIGS.items():
        straight = pg.train(pg.make_config(algo.split(":")[0], **values, **FAST), run_dir=root / f"{algo}_straight")
        resumed = root / f"{algo}_resumed"
        shutil.copytree(straight.run_dir, resumed)
        first = periodic_checkpoints(resumed)[0]
        out[algo] = (straight, resumed, first)
    argv = [str(x) for _, resumed, first in out.values() for x in (resumed, first.name)]
    proc = subprocess.run([sys.executable, "-c", RESUME_SCRIPT, *argv], capture_output=True, text=True,
                          timeout=300, cwd=TESTS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("algo", list(CONFIGS))
def test_resumed_run_has_identical_parameters_and_optimizer_state(runs, algo):
    straight, resumed, first = runs[algo]
    assert json.loads((resumed / "config.json").read_text())["resumes"][0]["from"] == f"checkpoints/{first.name}"
    assert read_manifest(first)["counters"]["global_step"] < straight.global_step
    expected = straight.agent.network.state_dict()
    loaded = pg.load(resumed).network.state_dict()
    assert list(expected) == list(loaded)
    for key in expected:
        assert torch.equal(expected[key], loaded[key]), key
    a = load_file(str(straight.run_dir / "checkpoint" / "optimizer.safetensors"))
    b = load_file(str(resumed / "checkpoint" / "optimizer.safetensors"))
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ma, mb = read_manifest(straight.run_dir / "checkpoint"), read_manifest(resumed / "checkpoint")
    assert ma["optimizer"] == mb["optimizer"]  # hyperparameters, annealed learning rate included
    assert ma["counters"] == mb["counters"] and mb["counters"]["completed"] is True


@pytest.mark.parametrize("algo", list(CONFIGS))
def test_resumed_run_has_identical_episodes_metrics_and_evaluation(runs, algo):
    straight, resumed, first = runs[algo]
    episodes = rows(straight.run_dir / "episodes.csv")
    before = [e for e in episodes if int(e["global_step"]) <= read_manifest(first)["counters"]["global_step"]]
    assert len(episodes) > len(before) > 0  # episodes on both sides of the checkpoint
    assert rows(resumed / "episodes.csv") == episodes
    assert rows(resumed / "metrics.csv") == rows(straight.run_dir / "metrics.csv")
    evals = rows(straight.run_dir / "evals.csv", drop=("wall_seconds",))
    assert len(evals) >= 3 and rows(resumed / "evals.csv", drop=("wall_seconds",)) == evals
    assert json.loads((resumed / "eval.json").read_text()) == json.loads((straight.run_dir / "eval.json").read_text())


def test_resume_refuses_a_config_that_changes_what_a_step_computes(runs, tmp_path):
    straight, _, _ = runs["a2c"]
    run = Path(shutil.copytree(straight.run_dir, tmp_path / "run"))
    first = periodic_checkpoints(run)[0]
    changed = pg.make_config("a2c", **{**CONFIGS["a2c"], "learning_rate": 0.01}, **FAST)
    with pytest.raises(ValueError, match=r"learning_rate=0.01 \(checkpoint: 0.0007\)"):
        pg.train(changed, resume_from=first)
    with pytest.raises(ValueError, match="the run is complete"):
        pg.train(None, resume_from=run)
    with pytest.raises(ValueError, match="continues in its own directory"):
        pg.train(None, resume_from=first, run_dir=tmp_path / "elsewhere")


def test_a_run_without_a_resumable_checkpoint_says_so(tmp_path):
    run = tmp_path / "run"
    net = ActorCritic(*env_spaces("CartPole-v1"))
    save_checkpoint(run / "checkpoint", net, None, pg.A2CConfig(device="cpu").to_dict(),
                    {"global_step": 10, "completed": False})  # weights only, as after a crash mid-update
    with pytest.raises(ValueError, match="no resumable checkpoint"):
        pg.train(None, resume_from=run)
    assert main(["resume", str(run)]) == 2


def test_periodic_checkpoints_keep_the_last_k_and_latest_names_the_newest(tmp_path):
    net = ActorCritic(*env_spaces("CartPole-v1"))
    for step in (100, 200, 300, 400):
        save_periodic(tmp_path, step, keep=2, model=net, optimizer=None, config={}, counters={"global_step": step},
                      run_state={}, state_tensors={})
    assert [p.name for p in periodic_checkpoints(tmp_path)] == ["step_000000300", "step_000000400"]
    assert latest_checkpoint(tmp_path).name == "step_000000400"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step_000000300",
                                                                            "step_000000400"]


def test_latest_pointer_cannot_lead_outside_the_run(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest").write_text("../../etc\n")
    with pytest.raises(ValueError, match="not a checkpoint folder name"):
        latest_checkpoint(tmp_path)
    assert main(["resume", str(tmp_path), "--checkpoint", "../x"]) == 2


@pytest.mark.slow  # two A3C runs: each spawns a worker process that imports torch (10-40 s on a loaded machine)
def test_a3c_resumes_from_its_latest_checkpoint_with_the_step_count(tmp_path):
    cfg = pg.make_config("a3c", total_steps=1200, checkpoint_every=400, log_every=200, num_workers=1,
                         progress=False, tensorboard=False, eval_episodes=1)
    first = pg.train(cfg, run_dir=tmp_path / "run")
    latest = latest_checkpoint(first.run_dir)
    step = read_manifest(latest)["counters"]["global_step"]
    assert 400 <= step < 1200
    shutil.rmtree(first.run_dir / "checkpoint")  # as if the run had been killed after its last checkpoint
    resumed = pg.train(None, resume_from=first.run_dir)
    assert resumed.global_step >= 1200
    steps = [int(r["global_step"]) for r in rows(first.run_dir / "metrics.csv")]
    assert steps == sorted(steps) and steps[-1] >= 1200 and any(s > step for s in steps)
    counters = read_manifest(first.run_dir / "checkpoint")["counters"]
    assert counters["completed"] is True and counters["updates"] > read_manifest(latest)["counters"]["updates"]
