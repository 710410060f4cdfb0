"""Generalized state-dependent exploration (distribution='gsde'): the head's maths, when its noise is
drawn, and that it plugs into every path that acts (collectors, evaluation, checkpoints)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import policygrad as pg
from policygrad.core.distributions import GSDEHead
from policygrad.core.networks import ActorCritic

OBS = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)


def network(**kwargs) -> ActorCritic:
    return ActorCritic(OBS, ACT, hidden_sizes=(8,), distribution="gsde", **kwargs)


def test_the_action_is_gaussian_with_variance_features_squared_times_std_squared():
    torch.manual_seed(0)
    net = network(log_std_init=-1.0)
    with torch.no_grad():
        net.policy_head.log_std.uniform_(-2.0, 0.0)  # a full (features, D) matrix, not one value
    obs = torch.randn(5, 4)
    features = net.policy_body(net.preprocess(obs))
    std = net.policy_head.log_std.exp()
    expected = torch.distributions.Normal(net.policy_head.out(features),
                                          (features.pow(2) @ std.pow(2) + GSDEHead.VARIANCE_EPS).sqrt())
    dist = net.dist(obs)
    actions = torch.randn(5, 2)
    assert torch.allclose(dist.log_prob(actions), expected.log_prob(actions).sum(-1), atol=1e-5)
    assert torch.allclose(dist.entropy(), expected.entropy().sum(-1), atol=1e-5)
    assert torch.equal(dist.mode(), expected.mean)


def test_a_sample_is_the_mean_plus_the_features_times_that_rows_exploration_matrix():
    torch.manual_seed(1)
    net = network()
    net.reset_exploration(rows=3, step=0)
    noise = net.policy_head.noise
    assert noise is not None and noise.shape == (3, 8, 2)
    obs = torch.randn(3, 4)
    features = net.policy_body(net.preprocess(obs))
    sample = net.dist(obs).sample()
    mean = net.policy_head.out(features)
    for row in range(3):
        assert torch.allclose(sample[row], mean[row] + features[row] @ noise[row], atol=1e-6)
    # The same observation gives the same action until the noise is drawn again: exploration is a
    # function of the state, not fresh jitter every step.
    assert torch.equal(net.dist(obs).sample(), sample)


def test_over_many_exploration_matrices_the_samples_have_the_distributions_variance():
    torch.manual_seed(2)
    net = network(log_std_init=-0.5)
    obs = torch.randn(1, 4).expand(20_000, 4)
    net.reset_exploration(rows=20_000, step=0)  # one matrix per row: 20k independent draws
    dist = net.dist(obs)
    samples = dist.sample()
    assert torch.allclose(samples.mean(0), dist.mode()[0], atol=0.03)
    assert torch.allclose(samples.var(0), dist.dist.scale[0].pow(2), rtol=0.05)


@pytest.mark.parametrize("freq, draws_at", [(-1, [0]), (4, [0, 4, 8])])
def test_new_noise_is_drawn_at_the_start_of_a_rollout_and_every_sde_sample_freq_steps(freq, draws_at):
    net = network(sde_sample_freq=freq)
    drawn = []
    for step in range(10):
        before = net.policy_head.noise
        net.reset_exploration(rows=2, step=step)
        if net.policy_head.noise is not before:
            drawn.append(step)
    assert drawn == draws_at


def test_without_a_matrix_per_row_sampling_falls_back_to_independent_gaussian_noise():
    torch.manual_seed(3)
    net = network()
    net.reset_exploration(rows=2, step=0)
    obs = torch.randn(1, 4).expand(4000, 4)  # 4000 rows, 2 matrices: an evaluation, say
    dist = net.dist(obs)
    samples = dist.sample()
    assert samples.shape == (4000, 2)
    assert torch.allclose(samples.var(0), dist.dist.scale[0].pow(2), rtol=0.1)


def test_the_config_checks_sde_sample_freq_and_a_user_network_cannot_use_gsde():
    with pytest.raises(ValueError, match="sde_sample_freq=0 is invalid"):
        pg.make_config("ppo", env_id="Pendulum-v1", distribution="gsde", sde_sample_freq=0)
    from policygrad.core.user_network import UserNetwork

    with pytest.raises(ValueError, match="gsde.*built-in MLP"):
        UserNetwork(torch.nn.Linear(4, 2), OBS, ACT, distribution="gsde")


def test_a_gsde_run_trains_saves_and_reloads_acting_identically(tmp_path):
    cfg = pg.make_config("a2c", env_id="Pendulum-v1", total_steps=2000, num_envs=4, num_steps=8,
                         distribution="gsde", log_std_init=-2.0, progress=False, tensorboard=False,
                         eval_episodes=2)
    result = pg.train(cfg, run_dir=tmp_path / "run")
    loaded = pg.load(tmp_path / "run")
    obs = torch.randn(6, 3)
    trained = result.agent.network
    assert torch.equal(loaded.network.dist(obs).mode(), trained.dist(obs).mode())
    assert torch.equal(loaded.network.policy_head.log_std, trained.policy_head.log_std)
