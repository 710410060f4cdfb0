"""Networks: init gains, init schemes, architecture options, shared trunk, observation encoding."""

import math

import gymnasium as gym
import pytest
import torch
from torch import nn

from policygrad.core.networks import ACTIVATION_LAYERS, ActorCritic, obs_size

OBS = gym.spaces.Box(-1.0, 1.0, (4,))
ACT = gym.spaces.Discrete(2)


def linears(body: nn.Sequential) -> list[nn.Linear]:
    return [m for m in body if isinstance(m, nn.Linear)]


def svals(layer: nn.Linear) -> torch.Tensor:
    return torch.linalg.svdvals(layer.weight.detach().double())


def assert_orthogonal_with_gain(layer: nn.Linear, gain: float) -> None:
    """W (out x in) is gain * (a matrix with orthonormal rows or columns, whichever are fewer)."""
    w = layer.weight.detach().double()
    out_f, in_f = w.shape
    s = svals(layer)
    assert s.shape == (min(out_f, in_f),)
    assert torch.allclose(s, torch.full_like(s, gain), rtol=1e-4), (tuple(w.shape), s)
    gram = w @ w.T if out_f <= in_f else w.T @ w  # square or wide: W W^T ; tall: W^T W
    assert torch.allclose(gram, gain**2 * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-4 * gain**2)


@pytest.mark.parametrize("hidden", [(64, 64), (16, 8), (8, 32)])
def test_orthogonal_hidden_layers_have_gain_sqrt2_and_zero_bias(hidden):
    net = ActorCritic(OBS, ACT, hidden_sizes=hidden)
    for body in (net.policy_body, net.value_body):
        for layer in linears(body):
            assert_orthogonal_with_gain(layer, math.sqrt(2))
            assert torch.all(layer.bias == 0)


def test_square_hidden_layer_satisfies_w_w_transpose_equals_two_identity():
    net = ActorCritic(OBS, ACT, hidden_sizes=(64, 64))
    w = net.policy_body[2].weight.detach().double()
    assert w.shape == (64, 64)
    assert torch.allclose(w @ w.T, 2.0 * torch.eye(64, dtype=torch.float64), atol=1e-4)


def test_orthogonal_policy_head_gain_is_0_01_and_value_head_gain_is_1():
    net = ActorCritic(OBS, gym.spaces.Discrete(5), hidden_sizes=(32, 32))
    policy_last = net.policy_head.last_layer
    assert policy_last.weight.shape == (5, 32)
    assert_orthogonal_with_gain(policy_last, 0.01)
    assert torch.all(policy_last.bias == 0)
    assert net.value_head.weight.shape == (1, 32)
    assert_orthogonal_with_gain(net.value_head, 1.0)
    assert torch.all(net.value_head.bias == 0)


def test_default_init_is_orthogonal():
    torch.manual_seed(0)
    default = ActorCritic(OBS, ACT)
    torch.manual_seed(0)
    explicit = ActorCritic(OBS, ACT, init="orthogonal")
    for (name, a), (_, b) in zip(default.state_dict().items(), explicit.state_dict().items()):
        assert torch.equal(a, b), name


def test_the_orthogonal_initial_policy_is_nearly_uniform():
    torch.manual_seed(0)
    probs = ActorCritic(OBS, ACT).dist(torch.randn(64, 4)).probs
    assert torch.all((probs - 0.5).abs() < 0.02)


def first_weights(scheme: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = ActorCritic(OBS, ACT, hidden_sizes=(64, 64), init=scheme)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_init_schemes_all_run_and_give_different_weights():
    schemes = ("orthogonal", "xavier", "kaiming", "torch-default")
    weights = {s: first_weights(s) for s in schemes}
    for i, a in enumerate(schemes):
        for b in schemes[i + 1:]:
            # (Not the square 64x64 layer: there xavier's and kaiming's uniform bounds coincide,
            # sqrt(2) * sqrt(6 / 128) = sqrt(2) * sqrt(3 / 64), so the same seed gives the same draw.)
            for key in ("policy_body.0.weight", "value_body.0.weight", "policy_head.out.weight"):
                assert not torch.allclose(weights[a][key], weights[b][key]), (a, b, key)


def test_xavier_and_kaiming_respect_their_bounds_and_zero_biases():
    for scheme in ("xavier", "kaiming"):
        w = first_weights(scheme)
        for key in ("policy_body.2.bias", "value_body.0.bias", "policy_head.out.bias", "value_head.bias"):
            assert torch.all(w[key] == 0), (scheme, key)
    # xavier_uniform with gain sqrt 2 on a 64x64 layer: U(-b, b), b = sqrt(2) * sqrt(6 / 128) = 0.3062
    x = first_weights("xavier")["policy_body.2.weight"]
    bound = math.sqrt(2) * math.sqrt(6 / 128)
    assert x.abs().max() <= bound and x.abs().max() > 0.9 * bound
    # kaiming_uniform (relu) on fan_in 64: b = sqrt(2) * sqrt(3 / 64) = 0.3062 for hidden layers;
    # the policy head is scaled by 0.01 / sqrt 2: b = 0.01 * sqrt(3 / 64) = 0.00217
    k = first_weights("kaiming")
    hidden_bound = math.sqrt(2) * math.sqrt(3 / 64)
    assert k["policy_body.2.weight"].abs().max() <= hidden_bound
    assert k["policy_body.2.weight"].abs().max() > 0.9 * hidden_bound
    head_bound = 0.01 * math.sqrt(3 / 64)
    assert k["policy_head.out.weight"].abs().max() <= head_bound * (1 + 1e-5)


def test_torch_default_init_leaves_pytorch_initialisation_alone():
    torch.manual_seed(0)
    net = ActorCritic(OBS, ACT, hidden_sizes=(64, 64), init="torch-default")
    torch.manual_seed(0)
    reference = nn.Linear(4, 64)  # the first layer PyTorch builds from the same seed
    assert torch.equal(net.policy_body[0].weight, reference.weight)
    assert torch.equal(net.policy_body[0].bias, reference.bias)
    assert not torch.all(net.policy_body[0].bias == 0)


def test_unknown_init_scheme_raises():
    with pytest.raises(ValueError, match="init='lecun'"):
        ActorCritic(OBS, ACT, init="lecun")


def test_hidden_sizes_give_the_layer_widths_of_both_bodies_and_heads():
    net = ActorCritic(OBS, gym.spaces.Discrete(3), hidden_sizes=(32, 16, 8))
    widths = [(m.in_features, m.out_features) for m in linears(net.policy_body)]
    assert widths == [(4, 32), (32, 16), (16, 8)]
    assert [(m.in_features, m.out_features) for m in linears(net.value_body)] == widths
    assert (net.policy_head.last_layer.in_features, net.policy_head.last_layer.out_features) == (8, 3)
    assert (net.value_head.in_features, net.value_head.out_features) == (8, 1)
    dist, value = net(torch.randn(6, 4))
    assert dist.probs.shape == (6, 3) and value.shape == (6,)


@pytest.mark.parametrize("name", sorted(ACTIVATION_LAYERS))
def test_activation_is_used_after_every_hidden_layer(name):
    net = ActorCritic(OBS, ACT, hidden_sizes=(8, 8), activation=name)
    for body in (net.policy_body, net.value_body):
        kinds = [type(m) for m in body]
        assert kinds == [nn.Linear, ACTIVATION_LAYERS[name], nn.Linear, ACTIVATION_LAYERS[name]]


def test_default_activation_is_tanh():
    net = ActorCritic(OBS, ACT)
    assert isinstance(net.policy_body[1], nn.Tanh) and isinstance(net.value_body[3], nn.Tanh)


def test_shared_trunk_uses_the_policy_body_for_the_value():
    torch.manual_seed(0)
    net = ActorCritic(OBS, ACT, hidden_sizes=(16, 16), shared_trunk=True)
    assert net.value_body is None
    assert not any(name.startswith("value_body") for name, _ in net.named_parameters())
    obs = torch.randn(5, 4)
    expected = net.value_head(net.policy_body(obs)).squeeze(-1)
    assert torch.allclose(net.value(obs), expected)
    # Both heads' gradients reach the shared body
    net.value(obs).sum().backward()
    assert net.policy_body[0].weight.grad is not None and net.policy_body[0].weight.grad.abs().sum() > 0


def test_separate_bodies_are_the_default_and_share_no_parameters():
    net = ActorCritic(OBS, ACT, hidden_sizes=(16, 16))
    assert net.value_body is not None and net.value_body is not net.policy_body
    policy_ptrs = {p.data_ptr() for p in net.policy_body.parameters()}
    assert policy_ptrs.isdisjoint({p.data_ptr() for p in net.value_body.parameters()})
    # A value loss leaves the policy body's gradient empty
    net.value(torch.randn(5, 4)).sum().backward()
    assert all(p.grad is None for p in net.policy_body.parameters())
    assert all(p.grad is not None for p in net.value_body.parameters())


def test_without_value_there_is_no_value_head():
    net = ActorCritic(OBS, ACT, with_value=False)
    assert not net.has_value and net.value_head is None and net.value_body is None
    with pytest.raises(RuntimeError, match="no value head"):
        net.value(torch.zeros(1, 4))


def test_discrete_observations_are_one_hot_encoded():
    net = ActorCritic(gym.spaces.Discrete(5), ACT, hidden_sizes=(8,))
    assert net.policy_body[0].in_features == 5
    expected = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(net.preprocess(torch.tensor([3, 0])), expected)
    assert net.value(torch.tensor([3, 0])).shape == (2,)


def test_discrete_observations_with_nonzero_start_are_one_hot_from_start():
    net = ActorCritic(gym.spaces.Discrete(4, start=2), ACT, hidden_sizes=(8,))
    # observations 2..5 -> positions 0..3
    assert torch.equal(net.preprocess(torch.tensor([3, 5])),
                       torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))


def test_box_observations_are_flattened():
    net = ActorCritic(gym.spaces.Box(-1.0, 1.0, (2, 3)), ACT, hidden_sizes=(8,))
    assert net.policy_body[0].in_features == 6
    obs = torch.arange(12.0).reshape(2, 2, 3)
    assert torch.equal(net.preprocess(obs), obs.reshape(2, 6))


def test_obs_size():
    assert obs_size(gym.spaces.Discrete(7)) == 7
    assert obs_size(gym.spaces.Box(-1.0, 1.0, (3, 4))) == 12


@pytest.mark.parametrize("space", [
    gym.spaces.Text(5),
    gym.spaces.Tuple((gym.spaces.Discrete(2),)),
    gym.spaces.Dict({"x": gym.spaces.Box(-1.0, 1.0, (2,))}),
])
def test_obs_size_refuses_unsupported_spaces(space):
    with pytest.raises(ValueError, match="not supported"):
        obs_size(space)
