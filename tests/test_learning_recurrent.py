"""Slow learning thresholds of recurrent PPO on the partially observed tasks (make test-slow), the issue's
targets: CartPoleNoVel-v1 >= 475 (deterministic evaluation) within 100k steps on 4 of 5 seeds, and
PendulumNoVel-v1 >= -250 within 150k steps on 3 of 5 seeds, each with its preset (run/presets/ppo.yaml).
The measured numbers are in benchmarks/results/recurrent.md."""

import pytest

import policygrad as pg

SEEDS = (1, 2, 3, 4, 5)
QUIET = dict(progress=False, tensorboard=False, checkpoint_every=0, eval_episodes=20)


def _scores(tmp_path, env_id, total_steps):
    scores = []
    for seed in SEEDS:
        config = pg.make_config("ppo", env_id=env_id, preset=env_id, total_steps=total_steps, seed=seed, **QUIET)
        scores.append(pg.train(config, run_dir=tmp_path / f"{env_id}_{seed}").evaluation.mean)
    print(env_id, scores)
    return scores


@pytest.mark.slow
def test_recurrent_ppo_balances_cartpole_without_velocities(tmp_path):
    scores = _scores(tmp_path, "CartPoleNoVel-v1", 100_000)
    assert sum(s >= 475 for s in scores) >= 4, scores


@pytest.mark.slow
def test_recurrent_ppo_swings_up_pendulum_without_velocity(tmp_path):
    scores = _scores(tmp_path, "PendulumNoVel-v1", 150_000)
    assert sum(s >= -250 for s in scores) >= 3, scores
