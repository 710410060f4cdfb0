"""Running statistics and how observation normalization is saved, reloaded and frozen."""

import numpy as np
import pytest
import torch

import policygrad as pg
from policygrad.core.normalization import PRIOR_COUNT, RewardScaler, RunningMeanStd


def with_prior(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy's mean and variance of ``samples`` merged with the prior: mean 0 and variance 1 weighing
    PRIOR_COUNT samples (the starting point of Gymnasium's wrappers and SB3's VecNormalize)."""
    n, total = len(samples), len(samples) + PRIOR_COUNT
    mean, var = samples.mean(0), samples.var(0)
    return mean * n / total, (PRIOR_COUNT + var * n + mean**2 * PRIOR_COUNT * n / total) / total


def test_running_statistics_equal_numpy_over_the_same_stream_with_the_prior():
    rng = np.random.default_rng(0)
    stream = [rng.normal(3.0, 2.0, size=(n, 3)) for n in (1, 7, 50, 2, 300)]
    stats = RunningMeanStd((3,))
    for chunk in stream:
        stats.update(torch.as_tensor(chunk))
    everything = np.concatenate(stream)
    mean, var = with_prior(everything)
    assert np.allclose(stats.mean.numpy(), mean, atol=1e-12)
    assert np.allclose(stats.var.numpy(), var, atol=1e-12)
    assert stats.count.item() == len(everything) + PRIOR_COUNT
    assert not np.allclose(var, everything.var(0), atol=1e-8, rtol=0)  # the prior is still measurable here


def test_a_first_sample_is_scaled_by_the_prior_not_clipped():
    """From nothing, one sample's variance is 0 and a first reward of 0.02 became 0.02 / 1e-4, clipped
    to 10; with the prior its variance is ~1e-4, as in SB3 (whose first HalfCheetah reward is ~1.9)."""
    scaler = RewardScaler(num_envs=1, gamma=0.99)
    first = scaler.scale(torch.tensor([0.02]), torch.zeros(1, dtype=torch.bool), torch.ones(1, dtype=torch.bool))
    _, var = with_prior(np.array([0.02]))
    assert first.item() == pytest.approx(0.02 / np.sqrt(var + 1e-8), rel=1e-6)
    assert 1.0 < first.item() < 3.0


def test_reward_scaler_divides_by_the_std_of_the_discounted_return():
    scaler = RewardScaler(num_envs=1, gamma=0.5)
    ones, no = torch.ones(1), torch.zeros(1, dtype=torch.bool)
    for _ in range(3):  # discounted returns 1, 1.5, 1.75
        scaled = scaler.scale(ones, no, torch.ones(1, dtype=torch.bool))
    std = np.sqrt(with_prior(np.array([1.0, 1.5, 1.75]))[1] + 1e-8)
    assert scaled.item() == pytest.approx(1.0 / std, rel=1e-6)


def test_obs_stats_saved_reloaded_identical_and_frozen_in_evaluation(tmp_path):
    cfg = pg.make_config("reinforce", env_id="Pendulum-v1", total_steps=2000, normalize_obs=True,
                         episodes_per_update=2, num_envs=2, progress=False, tensorboard=False, eval_episodes=2)
    result = pg.train(cfg, run_dir=tmp_path / "run")
    trained = result.agent.network.obs_normalizer.stats
    assert trained.count.item() >= 2000  # every training observation went in
    loaded = pg.load(result.run_dir)
    stats = loaded.network.obs_normalizer.stats
    for name in ("mean", "var", "count"):
        assert torch.equal(getattr(stats, name), getattr(trained, name))
    obs = torch.randn(5, 3)
    assert torch.equal(loaded.network.preprocess(obs), result.agent.network.preprocess(obs))
    before = stats.mean.clone(), stats.count.clone()
    pg.evaluate(loaded, episodes=3)
    assert torch.equal(stats.mean, before[0]) and torch.equal(stats.count, before[1])


def test_popart_preserves_outputs_when_its_statistics_change():
    from policygrad.core.envs import env_spaces
    from policygrad.core.networks import ActorCritic

    obs_space, act_space = env_spaces("CartPole-v1")
    net = ActorCritic(obs_space, act_space, popart=True)
    obs = torch.randn(16, 4)
    before = net.value(obs).detach().clone()
    net.update_value_stats(torch.tensor([100.0, 120.0, 80.0, 140.0]))
    after = net.value(obs).detach()
    assert torch.allclose(before, after, atol=1e-4)
    mean = with_prior(np.array([100.0, 120.0, 80.0, 140.0]))[0]
    assert net.popart.stats.mean.item() == pytest.approx(mean, rel=1e-12)  # 110, less the prior's 1e-4 / 4 of it
    # The loss sees normalized targets: (mean - mean) / std = 0.
    assert net.normalize_values(torch.tensor([mean], dtype=torch.float32)).abs().item() < 1e-6
