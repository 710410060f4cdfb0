"""REINFORCE learns: a fast check that it improves, and the slow threshold run of issue 2."""

import csv

import numpy as np
import pytest

import policygrad as pg


def episode_returns(run_dir):
    with open(run_dir / "episodes.csv", newline="") as f:
        return np.array([float(row["return"]) for row in csv.DictReader(f)])


def quick_config(**changes):
    return pg.ReinforceConfig(progress=False, tensorboard=False, eval_episodes=10, **changes)


@pytest.mark.parametrize("return_type,baseline", [("reward_to_go", "value"), ("total", "none"),
                                                   ("reward_to_go", "mean")])
def test_reinforce_improves_on_cartpole(tmp_path, return_type, baseline):
    result = pg.train(quick_config(total_steps=25_000, return_type=return_type, baseline=baseline),
                      run_dir=tmp_path / "run")
    returns = episode_returns(result.run_dir)
    first, last = returns[:40].mean(), returns[-40:].mean()
    # A uniformly random CartPole policy averages about 22.
    assert last > 2 * first, (first, last)
    assert last > 60, last


@pytest.mark.slow
def test_reinforce_rtg_value_baseline_solves_cartpole_within_300k(tmp_path):
    """Deterministic evaluation >= 475 over 20 episodes within 300k steps on at least 4 of 5 seeds."""
    budget = 300_000
    results = []
    for seed in range(1, 6):
        # Whole episodes can't stop mid-way: leave room for the last batch (8 episodes of at most 500).
        cfg = pg.ReinforceConfig(total_steps=budget - 8 * 500, seed=seed, return_type="reward_to_go",
                                 baseline="value", progress=False, tensorboard=False)
        result = pg.train(cfg, run_dir=tmp_path / f"seed{seed}")
        assert result.global_step <= budget
        results.append(result.evaluation.mean)
        print(f"seed {seed}: eval mean {result.evaluation.mean:.1f} after {result.global_step} steps "
              f"in {result.seconds:.1f} s")
    assert sum(mean >= 475 for mean in results) >= 4, results
