"""Continuous and multi-action heads: log-probs and entropies against closed forms and torch's own."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import AffineTransform, TanhTransform

from policygrad.core.distributions import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    BetaDistribution,
    GaussianDistribution,
    TanhGaussianDistribution,
    check_action_space,
    make_head,
)

torch.manual_seed(0)


def test_gaussian_log_prob_and_entropy_match_closed_forms():
    mean = torch.tensor([[0.5, -1.0]])
    log_std = torch.tensor([[0.0, math.log(2.0)]])
    dist = GaussianDistribution(mean, log_std)
    a = torch.tensor([[1.5, 1.0]])
    # log N(x; mu, s) = -(x - mu)^2 / (2 s^2) - log s - log(2 pi) / 2, summed over the 2 dimensions:
    # dim 0: -(1)^2/2 - 0 - 0.9189 = -1.4189;  dim 1: -(2)^2/8 - 0.6931 - 0.9189 = -2.1121
    assert dist.log_prob(a).item() == pytest.approx(-1.4189385 - 2.1120857, abs=1e-5)
    # H = sum (0.5 + 0.5 log(2 pi) + log s) = 1.4189 + 2.1121
    assert dist.entropy().item() == pytest.approx(1.4189385 + 2.1120857, abs=1e-5)
    assert torch.equal(dist.mode(), mean)


def test_gaussian_log_std_is_clamped_to_the_documented_range():
    dist = GaussianDistribution(torch.zeros(1, 2), torch.tensor([[-50.0, 50.0]]))
    assert torch.allclose(dist.dist.scale, torch.tensor([[math.exp(LOG_STD_MIN), math.exp(LOG_STD_MAX)]]))


def test_tanh_log_prob_equals_torch_transformed_distribution():
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])
    mean, log_std = torch.randn(64, 2), torch.randn(64, 2) * 0.5
    ours = TanhGaussianDistribution(mean, log_std, low, high)
    loc, scale = (high + low) / 2, (high - low) / 2
    reference = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform(), AffineTransform(loc, scale)])
    actions = ours.sample()
    assert torch.all(actions > low) and torch.all(actions < high)
    expected = reference.log_prob(actions).sum(-1)
    assert torch.allclose(ours.log_prob(actions), expected, atol=1e-3, rtol=1e-4)
    # mode: the mean squashed and rescaled
    assert torch.allclose(ours.mode(), loc + scale * torch.tanh(mean))


def test_tanh_entropy_is_an_unbiased_estimate():
    mean, log_std = torch.zeros(20000, 1), torch.full((20000, 1), -0.5)
    dist = TanhGaussianDistribution(mean, log_std, torch.tensor([-1.0]), torch.tensor([1.0]))
    samples = dist.sample()
    monte_carlo = -dist.log_prob(samples).mean()
    assert dist.entropy().mean().item() == pytest.approx(monte_carlo.item(), abs=0.03)


def test_beta_log_prob_and_entropy_match_closed_forms():
    alpha, beta = torch.tensor([[2.0]]), torch.tensor([[3.0]])
    low, high = torch.tensor([-1.0]), torch.tensor([3.0])  # width 4
    dist = BetaDistribution(alpha, beta, low, high)
    a = torch.tensor([[1.0]])  # x = (1 - (-1)) / 4 = 0.5
    # Beta(2, 3) density at 0.5: x (1-x)^2 / B(2,3) = 0.5 * 0.25 * 12 = 1.5; divided by the width 4
    assert dist.log_prob(a).item() == pytest.approx(math.log(1.5 / 4), abs=1e-5)
    # Entropy of Beta(2,3) = ln B(2,3) - (a-1) psi(a) - (b-1) psi(b) + (a+b-2) psi(a+b), plus ln(width)
    def digamma(x):
        return torch.digamma(torch.tensor(x)).item()
    h = math.log(1 / 12) - 1 * digamma(2.0) - 2 * digamma(3.0) + 3 * digamma(5.0)
    assert dist.entropy().item() == pytest.approx(h + math.log(4.0), abs=1e-5)
    assert dist.mode().item() == pytest.approx(-1 + 4 * 2 / 5)  # the mean, rescaled


@pytest.mark.parametrize("kind", ["gaussian", "gaussian_state_std", "tanh", "beta"])
def test_box_heads_shapes_and_clipping_only_on_the_way_to_the_env(kind):
    space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    head = make_head(space, 8, kind)
    dist = head(torch.randn(5, 8))
    actions = dist.sample()
    assert actions.shape == (5, 3) and dist.log_prob(actions).shape == (5,) and dist.entropy().shape == (5,)
    wild = torch.tensor([[5.0, -5.0, 0.5]])
    env_actions = head.to_env(wild)
    assert np.allclose(env_actions, [[1.0, -1.0, 0.5]])
    assert wild[0, 0] == 5.0  # the stored action is never clipped


def test_multidiscrete_and_multibinary_heads():
    md = make_head(gym.spaces.MultiDiscrete([3, 2]), 4)
    dist = md(torch.randn(6, 4))
    actions = dist.sample()
    assert actions.shape == (6, 2)
    lp0 = torch.log_softmax(dist.dists[0].logits, -1).gather(1, actions[:, :1]).squeeze(1)
    lp1 = torch.log_softmax(dist.dists[1].logits, -1).gather(1, actions[:, 1:]).squeeze(1)
    assert torch.allclose(dist.log_prob(actions), lp0 + lp1)
    mb = make_head(gym.spaces.MultiBinary(4), 4)
    bdist = mb(torch.randn(6, 4))
    b = bdist.sample()
    assert b.shape == (6, 4) and set(b.unique().tolist()) <= {0.0, 1.0}
    p = torch.sigmoid(bdist.dist.logits)
    assert torch.allclose(bdist.log_prob(b), (b * p.log() + (1 - b) * (1 - p).log()).sum(-1), atol=1e-5)
    assert mb.to_env(b).dtype == np.int8


def test_bounded_heads_refuse_unbounded_spaces():
    unbounded = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    check_action_space(unbounded, "gaussian")
    for kind in ("tanh", "beta"):
        with pytest.raises(ValueError, match="finite action bounds"):
            check_action_space(unbounded, kind)


@pytest.mark.parametrize("kind", ["gaussian", "gaussian_state_std", "tanh"])
def test_log_std_init_sets_the_starting_std_of_every_gaussian_head(kind):
    from policygrad.core.networks import ActorCritic

    space = gym.spaces.Box(-2.0, 2.0, (3,), np.float32)
    obs_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    net = ActorCritic(obs_space, space, hidden_sizes=(16,), distribution=kind, log_std_init=-1.5)
    dist = net.dist(torch.randn(5, 4))
    base = dist.base if kind == "tanh" else dist
    # The state-dependent heads' log-std outputs start near their bias: the last layer's gain is 0.01.
    assert torch.allclose(base.dist.scale.log(), torch.full((5, 3), -1.5), atol=0.05)
    default = ActorCritic(obs_space, space, hidden_sizes=(16,), distribution=kind).dist(torch.randn(5, 4))
    default_base = default.base if kind == "tanh" else default
    assert torch.allclose(default_base.dist.scale.log(), torch.zeros(5, 3), atol=0.05)


def test_log_std_init_is_refused_for_discrete_actions_and_out_of_range():
    import policygrad as pg

    with pytest.raises(ValueError, match="log_std_init"):
        pg.make_config("a2c", env_id="CartPole-v1", log_std_init=-1.0)
    # The beta head has no std: a preset's log_std_init must not stop --distribution beta.
    assert pg.make_config("a2c", env_id="Pendulum-v1", preset="auto", distribution="beta").log_std_init == -2.0
    with pytest.raises(ValueError, match=r"log_std_init.*\[-5.0, 2.0\]"):
        pg.make_config("a2c", env_id="Pendulum-v1", log_std_init=-7.0)
    assert pg.make_config("a2c", env_id="Pendulum-v1", log_std_init=-1).log_std_init == -1
