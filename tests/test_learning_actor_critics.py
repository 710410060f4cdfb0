"""Slow learning thresholds of the actor-critic family (make test-slow). Each budget is an upper
bound on environment steps: total_steps is set so the last rollout cannot overshoot it."""

import pytest

import policygrad as pg


def solve_rate(algo, budget, rollout, threshold, tmp_path, env_id="CartPole-v1", seeds=range(1, 6), **fields):
    means = []
    for seed in seeds:
        cfg = pg.make_config(algo, env_id=env_id, total_steps=budget - rollout, seed=seed, progress=False,
                             tensorboard=False, **fields)
        result = pg.train(cfg, run_dir=tmp_path / f"{algo}-{seed}")
        assert result.global_step <= budget
        means.append(result.evaluation.mean)
        print(f"{algo} {env_id} seed {seed}: eval {result.evaluation.mean:.1f} after {result.global_step} steps "
              f"in {result.seconds:.1f} s")
    return sum(m > threshold for m in means), means


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k(tmp_path):
    passed, means = solve_rate("ppo", 100_000, 8 * 128, 474.999, tmp_path)
    assert passed >= 4, means


@pytest.mark.slow
def test_a2c_solves_cartpole_within_500k(tmp_path):
    passed, means = solve_rate("a2c", 500_000, 8 * 5, 474.999, tmp_path)
    assert passed >= 4, means


@pytest.mark.slow
def test_one_step_actor_critic_above_200_within_300k(tmp_path):
    passed, means = solve_rate("actor_critic", 300_000, 16, 200, tmp_path)
    assert passed >= 4, means


@pytest.mark.slow
def test_ppo_acrobot_above_minus_100_within_300k(tmp_path):
    passed, means = solve_rate("ppo", 300_000, 16 * 256, -100, tmp_path, env_id="Acrobot-v1")
    assert passed >= 4, means


# Continuous control (issue 16): the published budgets. PPO on Pendulum within 100k steps on 4 of 5
# seeds (measured at 100k: -151 and -143 on seeds 1, 2); A2C with gSDE on Pendulum within 1M on each of
# 2 seeds (-142 on seed 1; without gSDE -414 and -936); PPO on LunarLanderContinuous solved (200) at 1M
# on each of 2 seeds (the zoo's values: 274.9 on seed 1; the old preset stopped at 191 and 198).
@pytest.mark.slow
def test_ppo_pendulum_above_minus_200_within_100k(tmp_path):
    passed, means = solve_rate("ppo", 100_000, 4 * 1024, -200, tmp_path, env_id="Pendulum-v1")
    assert passed >= 4, means


@pytest.mark.slow
def test_a2c_with_gsde_pendulum_above_minus_250_within_1m(tmp_path):
    passed, means = solve_rate("a2c", 1_000_000, 8 * 8, -250, tmp_path, env_id="Pendulum-v1", seeds=(1, 2))
    assert passed == 2, means


@pytest.mark.slow
def test_ppo_lunarlander_continuous_solved_within_1m(tmp_path):
    passed, means = solve_rate("ppo", 1_000_000, 16 * 1024, 200, tmp_path, env_id="LunarLanderContinuous-v3",
                               seeds=(1, 2))
    assert passed == 2, means


# Hopper-v5 (issue 32): the preset (CleanRL's plain defaults, chosen over the zoo's values at 1M steps:
# benchmarks/results/hopper_candidates.md) hops by 300k steps: this test measured 2,792.0 and 3,184.3 on
# seeds 1 and 2 (20 deterministic episodes on evaluation seed 12345; 436 and 541 s on a busy machine); the
# same runs from the command line with --total-steps 300000, whose learning rate anneals over 300,000 steps
# rather than 301,056, scored 2,090 and 2,020 (benchmarks/mujoco_episodes.py: 2.4 m/s, forward reward
# ~1,530). The zoo's values it replaced stood still: 815 to 1,265 at 1M, about what the healthy reward of 1
# a step pays over the 1,000-step limit. 1,500 separates the two.
@pytest.mark.slow
def test_ppo_hopper_hops_within_300k(tmp_path):
    passed, means = solve_rate("ppo", 303_104, 2048, 1500, tmp_path, env_id="Hopper-v5", seeds=(1, 2),
                               eval_episodes=20, eval_seed=12345)
    assert passed == 2, means
