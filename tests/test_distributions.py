"""The categorical head and distribution: shapes, log-probs, entropy, mode, and the space checks."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from policygrad.core.distributions import (
    ActionDistribution,
    CategoricalDistribution,
    CategoricalHead,
    action_dtype,
    action_shape,
    make_head,
)

B, N_ACTIONS = 5, 3


def logits_batch():
    # Row argmaxes: 0, 2, 1, 1, 2 (every row has a unique maximum)
    return torch.tensor([
        [2.0, 0.0, -1.0],
        [0.1, 0.2, 0.3],
        [-5.0, 5.0, 0.0],
        [0.0, 1.0, 0.5],
        [math.log(0.2), math.log(0.3), math.log(0.5)],
    ])


def test_head_from_discrete_space_is_categorical_with_one_logit_per_action():
    head = make_head(gym.spaces.Discrete(N_ACTIONS), in_features=7)
    assert isinstance(head, CategoricalHead)
    assert (head.out.in_features, head.out.out_features) == (7, N_ACTIONS)
    dist = head(torch.randn(B, 7))
    assert isinstance(dist, CategoricalDistribution) and isinstance(dist, ActionDistribution)


def test_sample_mode_log_prob_and_entropy_have_one_value_per_batch_row():
    dist = CategoricalDistribution(logits_batch())
    actions = dist.sample()
    assert actions.shape == (B,) and actions.dtype == torch.long
    assert torch.all((actions >= 0) & (actions < N_ACTIONS))
    assert dist.mode().shape == (B,)
    assert dist.log_prob(actions).shape == (B,)
    assert dist.entropy().shape == (B,)
    assert dist.probs.shape == (B, N_ACTIONS)


def test_log_prob_is_the_log_softmax_of_the_logits_at_the_action():
    logits = logits_batch()
    actions = torch.tensor([0, 1, 2, 1, 2])
    expected = torch.log_softmax(logits, dim=-1)[torch.arange(B), actions]
    assert torch.allclose(CategoricalDistribution(logits).log_prob(actions), expected, atol=1e-6)
    # Row 4 by hand: its logits are log-probabilities already, so log_prob(2) = log 0.5
    assert CategoricalDistribution(logits).log_prob(actions)[4].item() == pytest.approx(math.log(0.5), abs=1e-6)


def test_log_prob_accepts_float_actions_as_stored_in_float_buffers():
    logits = logits_batch()
    actions = torch.tensor([0, 1, 2, 1, 2])
    dist = CategoricalDistribution(logits)
    assert torch.equal(dist.log_prob(actions.float()), dist.log_prob(actions))


def test_log_prob_carries_gradient_to_the_logits():
    logits = logits_batch().requires_grad_()
    CategoricalDistribution(logits).log_prob(torch.zeros(B, dtype=torch.long)).sum().backward()
    # d log softmax(z)_0 / dz = onehot(0) - softmax(z)
    expected = torch.nn.functional.one_hot(torch.zeros(B, dtype=torch.long), N_ACTIONS) - torch.softmax(
        logits.detach(), -1)
    assert torch.allclose(logits.grad, expected, atol=1e-6)


def test_entropy_is_minus_sum_p_log_p():
    logits = logits_batch()
    p = torch.softmax(logits, dim=-1)
    expected = -(p * p.log()).sum(-1)
    assert torch.allclose(CategoricalDistribution(logits).entropy(), expected, atol=1e-6)
    # By hand: uniform over 3 actions -> log 3 ; probabilities (0.2, 0.3, 0.5) -> 1.0297
    uniform = CategoricalDistribution(torch.zeros(1, 3)).entropy().item()
    assert uniform == pytest.approx(math.log(3), abs=1e-6)
    by_hand = -(0.2 * math.log(0.2) + 0.3 * math.log(0.3) + 0.5 * math.log(0.5))
    assert CategoricalDistribution(logits).entropy()[4].item() == pytest.approx(by_hand, abs=1e-6)


def test_mode_is_the_argmax_of_the_logits():
    assert CategoricalDistribution(logits_batch()).mode().tolist() == [0, 2, 1, 1, 2]


def test_sample_frequencies_follow_the_probabilities():
    torch.manual_seed(0)
    probs = torch.tensor([0.7, 0.2, 0.1])
    dist = CategoricalDistribution(probs.log().expand(20_000, 3))
    freq = torch.bincount(dist.sample(), minlength=3).float() / 20_000
    assert torch.allclose(freq, probs, atol=0.02), freq


def test_sampling_follows_the_torch_seed():
    dist = CategoricalDistribution(torch.zeros(50, 4))
    torch.manual_seed(3)
    a = dist.sample()
    torch.manual_seed(3)
    assert torch.equal(a, dist.sample())


def test_discrete_space_with_nonzero_start_maps_actions_to_the_environment():
    space = gym.spaces.Discrete(3, start=-1)  # environment actions -1, 0, 1
    head = make_head(space, in_features=4)
    env_actions = head.to_env(torch.tensor([0, 1, 2]))
    assert isinstance(env_actions, np.ndarray)
    assert env_actions.tolist() == [-1, 0, 1]
    assert all(space.contains(a) for a in env_actions)
    assert make_head(gym.spaces.Discrete(3), 4).to_env(torch.tensor([0, 2])).tolist() == [0, 2]


def test_stored_action_shape_and_dtype_for_discrete():
    space = gym.spaces.Discrete(4)
    assert action_shape(space) == ()
    assert action_dtype(space) == torch.long


@pytest.mark.parametrize("space", [
    gym.spaces.Text(5),
    gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(3))),
    gym.spaces.Dict({"a": gym.spaces.Discrete(2)}),
    gym.spaces.Box(-1.0, 1.0, ()),  # a scalar Box: no dimension to act in (any other shape is flattened)
], ids=["text", "tuple", "dict", "box-scalar"])
def test_make_head_refuses_unsupported_action_spaces(space):
    with pytest.raises(ValueError, match="not supported|at least one dimension"):
        make_head(space, 4)


@pytest.mark.parametrize("space,kind,needle", [
    (gym.spaces.Discrete(2), "gaussian", "distribution='gaussian'"),
    (gym.spaces.Discrete(2), "beta", "distribution='beta'"),
    (gym.spaces.Discrete(2), "softmax", "softmax"),
    (gym.spaces.Box(-1.0, 1.0, (2,)), "categorical", "distribution='categorical'"),
    (gym.spaces.Box(-np.inf, np.inf, (2,)), "tanh", "finite action bounds"),
])
def test_make_head_refuses_kinds_that_do_not_fit_the_space(space, kind, needle):
    with pytest.raises(ValueError) as info:
        make_head(space, 4, kind)
    assert needle in str(info.value)
