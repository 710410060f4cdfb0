"""Flat optimizers (policygrad.fast.flat_optim): the same steps as torch's per-tensor optimizers, the same
saved layout in both directions, and parameters that stay tied to the buffer the optimizer steps."""

import pytest
import torch

from policygrad.algos.base import gradient_step, make_optimizer
from policygrad.core.envs import env_spaces
from policygrad.core.networks import ActorCritic
from policygrad.fast.flat_optim import FlatAdam, FlatRMSprop
from policygrad.run.checkpoint import load_optimizer_state, save_checkpoint


def network(seed: int = 0) -> ActorCritic:
    torch.manual_seed(seed)
    return ActorCritic(*env_spaces("CartPole-v1"))


def loss_of(net: ActorCritic, step: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(step)
    obs = torch.randn(32, 4, generator=generator)
    actions = torch.randint(0, 2, (32,), generator=generator)
    dist, value = net.dist_and_value(obs)
    return -(dist.log_prob(actions) * torch.randn(32, generator=generator)).mean() + value.square().mean()


def train(net: ActorCritic, optimizer, steps: range, max_grad_norm: float = 0.5) -> list[float]:
    return [gradient_step(optimizer, loss_of(net, s), list(net.parameters()), max_grad_norm).norm for s in steps]


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_flat_steps_equal_the_per_tensor_optimizer(name):
    flat_net, plain_net = network(), network()
    flat = make_optimizer(flat_net.parameters(), 3e-3, name)
    plain = make_optimizer(plain_net.parameters(), 3e-3, name, flat=False)
    assert isinstance(flat, FlatAdam if name == "adam" else FlatRMSprop) and not hasattr(plain, "flat")
    norms_flat, norms_plain = train(flat_net, flat, range(20)), train(plain_net, plain, range(20))
    assert norms_flat == pytest.approx(norms_plain, rel=1e-5)
    assert any(n > 0.5 for n in norms_flat)  # the clip was active on some steps
    for (key, a), b in zip(flat_net.state_dict().items(), plain_net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=key)
    assert not torch.equal(flat_net.state_dict()["policy_head.out.weight"],
                           network().state_dict()["policy_head.out.weight"])  # it did train


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_saved_state_moves_between_flat_and_per_tensor_optimizers(name, tmp_path):
    # Train a plain one, save through a checkpoint, continue in a flat one (and the other way round):
    # both continuations match the plain optimizer continuing itself.
    reference_net = network()
    reference = make_optimizer(reference_net.parameters(), 1e-3, name, flat=False)
    train(reference_net, reference, range(5))
    save_checkpoint(tmp_path / "plain", reference_net, reference, {}, {"global_step": 5})
    flat_net = network()
    flat_net.load_state_dict(reference_net.state_dict())
    flat = make_optimizer(flat_net.parameters(), 1e-3, name)
    load_optimizer_state(tmp_path / "plain", flat)
    train(flat_net, flat, range(5, 10))
    save_checkpoint(tmp_path / "flat", flat_net, flat, {}, {"global_step": 10})
    train(reference_net, reference, range(5, 10))
    for a, b in zip(flat_net.state_dict().values(), reference_net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    plain_again = make_optimizer(network().parameters(), 1e-3, name, flat=False)
    load_optimizer_state(tmp_path / "flat", plain_again)
    saved, expected = plain_again.state_dict()["state"], reference.state_dict()["state"]
    assert saved.keys() == expected.keys() == set(range(len(list(reference_net.parameters()))))
    for index in expected:
        for key, value in expected[index].items():
            torch.testing.assert_close(saved[index][key], value, rtol=1e-5, atol=1e-7)


def test_parameters_stay_views_of_the_stepped_buffer_after_loading_weights():
    net = network()
    optimizer = make_optimizer(net.parameters(), 1e-2)
    net.load_state_dict(network(seed=1).state_dict())  # copies in place, as checkpoint loading does
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train(net, optimizer, range(1))
    assert all(not torch.equal(before[k], v) for k, v in net.state_dict().items() if k.endswith("weight"))
    flat = optimizer.flat.param
    for p in net.parameters():
        assert p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
        assert p.grad.untyped_storage().data_ptr() == flat.grad.untyped_storage().data_ptr()


def test_zero_grad_zeroes_in_place_and_unreached_parameters_get_zero_gradients():
    net = network()
    optimizer = make_optimizer(net.parameters(), 1e-2)
    dist, _ = net.dist_and_value(torch.randn(8, 4))
    dist.log_prob(torch.zeros(8, dtype=torch.long)).sum().backward()  # the value head is not reached
    value_head = net.value_head.weight
    assert value_head.grad is not None and not value_head.grad.any()
    assert net.policy_head.last_layer.weight.grad.any()
    optimizer.zero_grad(set_to_none=True)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())


def test_a_flat_optimizer_refuses_mixed_dtypes():
    with pytest.raises(ValueError, match="one device with one dtype"):
        FlatAdam([torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))])


def test_gradients_dropped_or_replaced_by_other_code_still_reach_the_step():
    # A hand-written loop with module.zero_grad() (which sets gradients to None) steps like torch's Adam.
    flat_net, plain_net = network(), network()
    flat = make_optimizer(flat_net.parameters(), 1e-2)
    plain = make_optimizer(plain_net.parameters(), 1e-2, flat=False)
    for step in range(3):
        for net, optimizer in ((flat_net, flat), (plain_net, plain)):
            net.zero_grad()
            loss_of(net, step).backward()
            optimizer.step()
    for a, b in zip(flat_net.parameters(), plain_net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(p.grad.untyped_storage().data_ptr() == flat.flat.param.grad.untyped_storage().data_ptr()
               for p in flat_net.parameters())


def test_one_flat_optimizer_per_network_and_no_moving_it_afterwards():
    net = network()
    optimizer = make_optimizer(net.parameters(), 1e-2)
    with pytest.raises(ValueError, match="already stepped by a flat optimizer"):
        make_optimizer(net.parameters(), 1e-2)
    net.policy_head.out.weight.data = net.policy_head.out.weight.data.clone()  # as .to(other device) does
    net.zero_grad()
    loss_of(net, 0).backward()
    with pytest.raises(RuntimeError, match="rebound after its flat optimizer was made"):
        optimizer.step()
