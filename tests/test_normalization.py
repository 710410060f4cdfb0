"""Running statistics and how observation normalization is saved, reloaded and frozen."""

import numpy as np
import torch

import policygrad as pg
from policygrad.core.normalization import RewardScaler, RunningMeanStd


def test_running_statistics_equal_numpy_over_the_same_stream():
    rng = np.random.default_rng(0)
    stream = [rng.normal(3.0, 2.0, size=(n, 3)) for n in (1, 7, 50, 2, 300)]
    stats = RunningMeanStd((3,))
    for chunk in stream:
        stats.update(torch.as_tensor(chunk))
    everything = np.concatenate(stream)
    assert np.allclose(stats.mean.numpy(), everything.mean(0), atol=1e-12)
    assert np.allclose(stats.var.numpy(), everything.var(0), atol=1e-12)
    assert stats.count.item() == len(everything)


def test_reward_scaler_divides_by_the_std_of_the_discounted_return():
    scaler = RewardScaler(num_envs=1, gamma=0.5)
    ones, no = torch.ones(1), torch.zeros(1, dtype=torch.bool)
    for _ in range(3):  # discounted returns 1, 1.5, 1.75
        scaled = scaler.scale(ones, no, torch.ones(1, dtype=torch.bool))
    std = np.sqrt(np.var([1.0, 1.5, 1.75]) + 1e-8)
    assert scaled.item() == np.float32(1.0 / std)


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
    assert net.popart.stats.mean.item() == 110.0
    # The loss sees normalized targets: (110 - mean) / std = 0.
    assert net.normalize_values(torch.tensor([110.0])).abs().item() < 1e-6
