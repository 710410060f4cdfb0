"""The shortcuts taken for speed (issue 5) compute what the plain code computes: the fused acting
forward pass, the compacted flat batch, PPO's minibatch split, diagnostics kept as tensors."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from policygrad.algos.base import make_optimizer
from policygrad.algos.on_policy import FlatBatch
from policygrad.algos.ppo import minibatch_bounds
from policygrad.algos.rollout import Batch, FixedHorizonCollector
from policygrad.core import losses, returns
from policygrad.core.envs import make_vec_env
from policygrad.core.networks import ActorCritic
from policygrad.fast.fused_acting import FUSE_MAX_WIDTH, acting_forward

OBS = gym.spaces.Box(-1.0, 1.0, (4,))


@pytest.mark.parametrize("action_space,distribution", [
    (gym.spaces.Discrete(3), "auto"),
    (gym.spaces.Box(-2.0, 2.0, (2,)), "gaussian"),
    (gym.spaces.Box(-2.0, 2.0, (2,)), "beta"),
], ids=["categorical", "gaussian", "beta"])
@pytest.mark.parametrize("shared_trunk", [False, True], ids=["separate", "shared"])
@pytest.mark.parametrize("hidden_sizes", [(64, 64), (32,), (FUSE_MAX_WIDTH + 1,)], ids=["64x64", "32", "wide"])
def test_acting_forward_equals_dist_and_value(action_space, distribution, shared_trunk, hidden_sizes):
    torch.manual_seed(0)
    net = ActorCritic(OBS, action_space, hidden_sizes=hidden_sizes, shared_trunk=shared_trunk,
                      distribution=distribution, activation="relu" if hidden_sizes == (32,) else "tanh")
    obs = torch.randn(10, 4)
    with torch.no_grad():
        dist, value = net.dist_and_value(obs)
        actions = dist.sample()
        for rows in (0, 10**6):  # small snapshots keep tanh, large ones run it as 2 sigmoid(2z) - 1
            fused_dist, fused_value = acting_forward(net, expected_rows=rows)(obs)
            assert torch.allclose(fused_dist.log_prob(actions), dist.log_prob(actions), atol=1e-5)
            assert torch.allclose(fused_dist.mode(), dist.mode(), atol=1e-5)
            assert torch.allclose(fused_value, value, atol=1e-5)
        policy_only, none = acting_forward(net, with_value=False)(obs)
        assert none is None
        assert torch.allclose(policy_only.log_prob(actions), dist.log_prob(actions), atol=1e-5)


def test_acting_forward_keeps_the_weights_of_its_moment():
    torch.manual_seed(0)
    net = ActorCritic(OBS, gym.spaces.Discrete(2))
    obs = torch.randn(5, 4)
    forward = acting_forward(net)
    before = forward(obs)[1].clone()
    with torch.no_grad():
        net.value_head.bias.add_(1.0)
    assert torch.equal(forward(obs)[1], before)  # the snapshot did not move
    assert torch.allclose(acting_forward(net)(obs)[1], before + 1.0)  # a new one sees the change


def test_acting_forward_without_a_value_head():
    net = ActorCritic(OBS, gym.spaces.Discrete(2), with_value=False)
    dist, value = acting_forward(net)(torch.randn(3, 4))
    assert value is None and dist.sample().shape == (3,)


def test_acting_forward_applies_observation_normalization_of_the_moment_of_the_call():
    torch.manual_seed(0)
    net = ActorCritic(OBS, gym.spaces.Discrete(2), normalize_obs=True)
    forward = acting_forward(net)
    net.observe(torch.randn(100, 4) * 3 + 1)  # statistics move after the snapshot was taken
    obs = torch.randn(6, 4)
    with torch.no_grad():
        assert torch.allclose(forward(obs)[1], net.value(obs), atol=1e-5)


def small_batch() -> tuple[Batch, torch.Tensor, torch.Tensor]:
    T, N = 3, 2
    valid = torch.tensor([[True, True], [False, True], [True, False]])
    batch = Batch(obs=torch.arange(T * N * 4, dtype=torch.float32).reshape(T, N, 4),
                  actions=torch.arange(T * N).reshape(T, N), rewards=torch.ones(T, N),
                  terminated=torch.zeros(T, N, dtype=torch.bool), truncated=torch.zeros(T, N, dtype=torch.bool),
                  valid=valid, next_obs=torch.zeros(N, 4), log_probs=-torch.arange(T * N).float().reshape(T, N),
                  values=torch.arange(T * N).float().reshape(T, N))
    return batch, torch.arange(T * N).float().reshape(T, N) * 10, torch.arange(T * N).float().reshape(T, N) * 100


def test_flat_batch_keeps_only_real_transitions_in_time_major_order():
    batch, advantages, targets = small_batch()
    data = FlatBatch.from_batch(batch, advantages, targets)
    rows = [0, 1, 3, 4]  # flat index t * N + i of the valid entries
    assert len(data) == 4
    assert data.actions.tolist() == rows
    assert data.advantages.tolist() == [10.0 * r for r in rows]
    assert data.targets.tolist() == [100.0 * r for r in rows]
    assert data.log_probs.tolist() == [-float(r) for r in rows]
    assert torch.equal(data.obs, batch.obs.reshape(-1, 4)[rows])
    minibatch = data.rows(slice(1, 3))
    assert minibatch.actions.tolist() == [1, 3] and minibatch.obs.data_ptr() == data.obs[1].data_ptr()  # a view


def test_flat_batch_of_an_all_real_batch_is_views():
    batch, advantages, targets = small_batch()
    batch.valid[:] = True
    data = FlatBatch.from_batch(batch, advantages, targets)
    assert len(data) == 6 and data.obs.data_ptr() == batch.obs.data_ptr()
    assert data.actions.tolist() == list(range(6))


@pytest.mark.parametrize("rows,m,expected", [
    (8, 4, [(0, 2), (2, 4), (4, 6), (6, 8)]),
    (10, 4, [(0, 2), (2, 5), (5, 7), (7, 10)]),
    (256, 1, [(0, 256)]),
    (2, 4, [(0, 1), (1, 2)]),  # fewer rows than minibatches: no empty minibatch
    (0, 3, []),
])
def test_minibatch_bounds_cover_every_row_once_in_near_equal_parts(rows, m, expected):
    assert minibatch_bounds(rows, m) == expected


def test_ratio_diagnostics_equal_approx_kl_and_clip_fraction():
    ratios = torch.tensor([1.0, 1.1, 1.3, 0.7, 0.81])
    log_probs, old = ratios.log(), torch.zeros(5)
    weights = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0])
    for w in (None, weights):
        kl, clipfrac = losses.ratio_diagnostics(log_probs, old, 0.2, w)
        assert kl.item() == pytest.approx(losses.approx_kl(log_probs, old, w), rel=1e-6)
        assert clipfrac.item() == pytest.approx(losses.clip_fraction(log_probs, old, 0.2, w))


def test_explained_variance_tensor_matches_the_float_and_is_nan_for_constant_targets():
    predictions, targets = torch.tensor([1.0, 2.0, 2.5]), torch.tensor([1.0, 2.0, 3.0])
    assert losses.explained_variance_tensor(predictions, targets).item() == pytest.approx(
        losses.explained_variance(predictions, targets))
    assert torch.isnan(losses.explained_variance_tensor(predictions, torch.ones(3)))


def test_mean_of_no_rows_is_zero_with_a_gradient():
    x = torch.zeros(0, requires_grad=True)
    mean = losses.masked_mean(x)
    assert mean.item() == 0.0 and mean.requires_grad


def test_optimizers_update_all_parameters_at_once():
    def params():
        return [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
    for flat in (True, False):
        adam, rmsprop = make_optimizer(params(), 1e-3, "adam", flat), make_optimizer(params(), 1e-3, "rmsprop", flat)
        assert adam.defaults["fused"] and rmsprop.defaults["foreach"]
        assert len(adam.param_groups[0]["params"]) == (1 if flat else 2)  # flat: one tensor holds both


@pytest.mark.parametrize("env_id", ["CartPole-v1", "probe_envs:TruncatingEnv"])
def test_step_arrays_is_step_without_tensors(env_id):
    a, b = make_vec_env(env_id, 3), make_vec_env(env_id, 3)
    a.reset(seed=5), b.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(40):
        actions = rng.integers(0, 2, 3)
        step = a.step(actions)
        obs, reward, terminated, truncated, valid = b.step_arrays(actions)
        assert reward.dtype == np.float64 and valid.dtype == bool
        for tensor, array in ((step.obs, obs), (step.reward, reward), (step.terminated, terminated),
                              (step.truncated, truncated), (step.valid, valid)):
            assert np.array_equal(tensor.numpy(), np.asarray(array, dtype=tensor.numpy().dtype))
    assert a.pop_episodes() == b.pop_episodes() != []


def test_fixed_horizon_collector_records_what_the_env_and_the_policy_did():
    """Two collections (episodes run on across them) replayed step by step through VecEnv.step, and
    the stored log-probs and values against the network's own plain forward pass."""
    torch.manual_seed(0)
    envs, replay = make_vec_env("probe_envs:TruncatingEnv", 2), make_vec_env("probe_envs:TruncatingEnv", 2)
    net = ActorCritic(envs.single_observation_space, envs.single_action_space)
    collector = FixedHorizonCollector(envs, net, num_steps=3, seed=0)
    obs = replay.reset(seed=0)
    for _ in range(2):
        batch = collector.collect()
        for t in range(3):
            assert torch.equal(batch.obs[t], obs)
            step = replay.step(batch.actions[t].numpy())
            assert torch.equal(batch.rewards[t], step.reward)
            assert torch.equal(batch.terminated[t], step.terminated)
            assert torch.equal(batch.truncated[t], step.truncated)
            assert torch.equal(batch.valid[t], step.valid)
            obs = step.obs
        assert torch.equal(batch.next_obs, obs)
        with torch.no_grad():
            dist, values = net.dist_and_value(batch.flat(batch.obs))
            assert torch.allclose(batch.flat(batch.log_probs), dist.log_prob(batch.flat(batch.actions)), atol=1e-5)
            assert torch.allclose(batch.flat(batch.values), values, atol=1e-5)
    assert envs.pop_episodes() == replay.pop_episodes() != []


def test_losses_of_an_empty_batch_are_zero_not_nan():
    """A one-step batch can hold no real transition (every copy autoreset at once: fixed-length
    episodes do that); its losses must be 0 with a gradient, not NaN (which would skip the step)."""
    empty = torch.zeros(0, requires_grad=True)
    for term in (losses.value_loss(empty, torch.zeros(0)), losses.policy_gradient_loss(empty, torch.zeros(0)),
                 losses.entropy_term(empty), losses.ppo_clip_loss(empty, torch.zeros(0), torch.zeros(0), 0.2)):
        assert term.item() == 0.0 and term.requires_grad


def test_plain_value_loss_is_half_the_mean_squared_error():
    values, targets = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.0, 2.0, 1.0])
    assert losses.value_loss(values, targets).item() == pytest.approx(0.5 * (1 + 0 + 9) / 3)


def test_acting_forward_sees_loaded_weights():
    torch.manual_seed(0)
    net, other = ActorCritic(OBS, gym.spaces.Discrete(2)), ActorCritic(OBS, gym.spaces.Discrete(2))
    obs = torch.randn(3, 4)
    acting_forward(net)(obs)  # lays out its buffers
    net.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert torch.allclose(acting_forward(net)(obs)[1], other.value(obs), atol=1e-6)


def test_backward_recursions_on_numpy_and_torch_agree():
    """reward_to_go and gae run their time loop in NumPy for CPU tensors without gradient and in torch
    otherwise: the numbers must be the same."""
    torch.manual_seed(0)
    T, N = 7, 3
    r, v, nv = torch.randn(T, N), torch.randn(T, N), torch.randn(T, N)
    term, trunc = torch.rand(T, N) < 0.2, torch.rand(T, N) < 0.2
    for fn in (lambda r_: returns.reward_to_go(rewards=r_, terminated=term, truncated=trunc, gamma=0.9, next_values=nv),
               lambda r_: returns.gae(rewards=r_, values=v, next_values=nv, terminated=term, truncated=trunc,
                                      gamma=0.9, gae_lambda=0.8)):
        fast = fn(r)
        slow = fn(r.clone().requires_grad_())  # autograd forces the torch loop
        assert torch.allclose(fast, slow.detach(), atol=1e-6)


@pytest.mark.parametrize("anneal", [True, False])
def test_ppo_clip_coef_anneals_like_the_learning_rate(anneal):
    import policygrad as pg
    from policygrad.algos.ppo import PPO

    cfg = pg.make_config("ppo", preset="none", num_envs=2, num_steps=8, num_minibatches=1, update_epochs=1,
                         total_steps=64, clip_coef=0.2, anneal_clip=anneal, device="cpu")
    envs = make_vec_env("CartPole-v1", 2)
    ppo = PPO(cfg, envs, ActorCritic(envs.single_observation_space, envs.single_action_space))
    clips = [ppo.iterate().metrics["charts/clip_coef"] for _ in range(3)]
    expected = [0.2 * (1 - done / 64) for done in (0, 16, 32)] if anneal else [0.2] * 3
    assert clips == pytest.approx(expected)


def test_schedule_steps_stops_a_longer_schedule_part_way():
    """schedule_steps 256 on a 64-step run: the learning rate and the clip decay as they would over 256
    steps (the zoo's 10M-step Atari schedule stopped at 2M is the use), not to 0 at step 64."""
    import policygrad as pg
    from policygrad.algos.ppo import PPO

    cfg = pg.make_config("ppo", preset="none", num_envs=2, num_steps=8, num_minibatches=1, update_epochs=1,
                         total_steps=64, schedule_steps=256, learning_rate=1e-3, clip_coef=0.2, anneal_clip=True,
                         device="cpu")
    envs = make_vec_env("CartPole-v1", 2)
    ppo = PPO(cfg, envs, ActorCritic(envs.single_observation_space, envs.single_action_space))
    metrics = [ppo.iterate().metrics for _ in range(4)]
    left = [1 - done / 256 for done in (0, 16, 32, 48)]
    assert [m["charts/clip_coef"] for m in metrics] == pytest.approx([0.2 * f for f in left])
    assert [m["charts/learning_rate"] for m in metrics] == pytest.approx([1e-3 * f for f in left])


@pytest.mark.parametrize("steps", [-1, 63])
def test_schedule_steps_shorter_than_the_run_is_refused(steps):
    import policygrad as pg
    from policygrad.core.errors import UserInputError

    with pytest.raises(UserInputError, match="schedule_steps"):
        pg.make_config("ppo", preset="none", total_steps=64, schedule_steps=steps)


def test_sample_with_log_prob_is_a_sample_and_its_log_prob():
    from policygrad.core.distributions import CategoricalDistribution

    logits = torch.randn(50, 3)
    torch.manual_seed(4)
    actions, log_probs = CategoricalDistribution(logits).sample_with_log_prob()
    torch.manual_seed(4)
    assert torch.equal(actions, CategoricalDistribution(logits).sample())  # the same draw
    assert torch.allclose(log_probs, torch.log_softmax(logits, -1)[torch.arange(50), actions])
