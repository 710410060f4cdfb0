"""REINFORCE's step accounting (issue 28): copies that finished their share of an update's episodes keep
stepping until the slowest copy is done; those steps are discarded, and not counted against
total_steps either, so a budget is the same amount of used experience as for the fixed-horizon
algorithms."""

from __future__ import annotations

import csv

from test_envs import probe_agent

import policygrad as pg
from policygrad.algos.reinforce import counted_steps
from policygrad.algos.rollout import collect_episodes
from policygrad.core.envs import make_vec_env


def test_counted_steps_stop_at_each_copys_last_episode():
    envs = make_vec_env("probe_envs:CountingEnv", 3, length=3)
    batch, episodes, steps = collect_episodes(envs, probe_agent(), 7, seed=0)
    # quotas [3, 2, 2], episodes of 3 steps and an autoreset step between: copy 0 ends at row 10 (11 rows),
    # copies 1 and 2 at row 6 (7 rows each); the collection stepped 11 rows x 3 copies = 33
    assert steps == 33
    assert counted_steps(batch.terminated, batch.truncated, batch.valid) == 11 + 7 + 7


def test_a_runs_steps_are_its_episodes_steps(tmp_path):
    # one episode per copy per update: the counted steps are exactly the episodes' lengths
    cfg = pg.make_config("reinforce", env_id="CartPole-v1", total_steps=1500, episodes_per_update=4, progress=False,
                         tensorboard=False, eval_episodes=1, seed=1)
    result = pg.train(cfg, run_dir=tmp_path / "run")
    with open(result.run_dir / "episodes.csv", newline="") as f:
        lengths = [int(r["length"]) for r in csv.DictReader(f)]
    with open(result.run_dir / "metrics.csv", newline="") as f:
        metrics = list(csv.DictReader(f))
    assert int(metrics[-1]["global_step"]) == sum(lengths)
    assert sum(float(m["perf/discarded_steps"]) for m in metrics) > 0  # stepped, discarded, not counted


def test_a_comparison_with_reinforce_says_how_its_steps_are_counted(tmp_path, capsys):
    from policygrad.cli import main

    assert main(["compare", "--env", "CartPole-v1", "--methods", "reinforce,random", "--seeds", "1",
                 "--total-steps", "2000", "--out-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "reinforce's steps are the steps of its batches' episodes" in out and "not counted" in out
