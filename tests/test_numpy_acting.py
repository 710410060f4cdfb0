"""Acting in NumPy (policygrad.fast.numpy_acting) computes what the torch networks compute, samples from
the policy's probabilities, is reproducible from a seed, and is used only where it is valid."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import policygrad as pg
from policygrad.algos.rollout import FixedHorizonCollector
from policygrad.core.envs import env_spaces, make_vec_env
from policygrad.core.networks import ActorCritic
from policygrad.fast.numpy_acting import (
    NumpyCategoricalActor,
    NumpyGaussianActor,
    numpy_acting_supported,
    numpy_actor_class,
    sampling_generator,
)
from policygrad.run.snapshot import decode, encode

OBS = gym.spaces.Box(-5.0, 5.0, (4,))


def sharpened(net: ActorCritic, factor: float = 4.0) -> ActorCritic:
    """Scale the policy's last layer so that the probabilities are far from uniform (a fresh
    network's are nearly uniform, which would hide a wrong sampler)."""
    with torch.no_grad():
        net.policy_head.last_layer.weight.mul_(factor * 100)
    return net


def act(net: ActorCritic, obs: torch.Tensor, seed: int = 0):
    rows = obs.shape[0]
    actor = NumpyCategoricalActor(net, rows, sampling_generator(seed))
    actions, log_probs, values = np.empty(rows, np.int64), np.empty(rows, np.float32), np.empty(rows, np.float32)
    actor.act(obs.numpy(), actions, log_probs, values)
    return actor, actions, log_probs, values


@pytest.mark.parametrize("n_actions", [2, 5])
@pytest.mark.parametrize("shared_trunk", [False, True], ids=["separate", "shared"])
@pytest.mark.parametrize("hidden_sizes,activation", [((64, 64), "tanh"), ((32,), "relu"), ((16, 48), "tanh")])
def test_numpy_acting_equals_dist_and_value(n_actions, shared_trunk, hidden_sizes, activation):
    torch.manual_seed(0)
    net = sharpened(ActorCritic(OBS, gym.spaces.Discrete(n_actions), hidden_sizes=hidden_sizes,
                                activation=activation, shared_trunk=shared_trunk))
    obs = torch.randn(16, 4) * 2
    assert numpy_acting_supported(net, 16)
    actor, actions, log_probs, values = act(net, obs)
    with torch.no_grad():
        dist, value = net.dist_and_value(obs)
        expected_log_probs = dist.log_prob(torch.from_numpy(actions))
    assert np.allclose(actor.logits.T, dist.logits.numpy(), atol=1e-4)
    assert np.allclose(values, value.numpy(), atol=1e-5)
    assert np.allclose(log_probs, expected_log_probs.numpy(), atol=1e-5)
    assert actions.min() >= 0 and actions.max() < n_actions


@pytest.mark.parametrize("shared_trunk", [False, True], ids=["separate", "shared"])
def test_numpy_gaussian_acting_equals_dist_and_value(shared_trunk):
    torch.manual_seed(0)
    net = ActorCritic(OBS, gym.spaces.Box(-0.5, 0.5, (3,)), shared_trunk=shared_trunk)
    with torch.no_grad():
        net.policy_head.log_std.copy_(torch.tensor([-1.0, 0.5, -9.0]))  # the last is clamped to LOG_STD_MIN
        net.policy_head.last_layer.weight.mul_(50)
    obs = torch.randn(16, 4) * 2
    actor = NumpyGaussianActor(net, 16, sampling_generator(0))
    actions, log_probs, values = np.empty((16, 3), np.float32), np.empty(16, np.float32), np.empty(16, np.float32)
    env_actions = actor.act(obs.numpy(), actions, log_probs, values)
    with torch.no_grad():
        dist, value = net.dist_and_value(obs)
        expected_log_probs = dist.log_prob(torch.from_numpy(actions))
        expected_env_actions = net.to_env(torch.from_numpy(actions))
    assert np.allclose(values, value.numpy(), atol=1e-5)
    assert np.allclose(log_probs, expected_log_probs.numpy(), atol=1e-4)
    assert np.array_equal(env_actions, expected_env_actions)  # clipped for the env
    assert (np.abs(actions) > 0.5).any()  # ... while the stored actions are not


def test_gaussian_samples_have_the_policys_mean_and_std():
    torch.manual_seed(0)
    net = ActorCritic(OBS, gym.spaces.Box(-1.0, 1.0, (2,)))
    with torch.no_grad():
        net.policy_head.log_std.copy_(torch.tensor([-1.0, 0.3]))
    obs = torch.randn(8, 4)
    with torch.no_grad():
        mean, std = net.dist(obs).dist.mean.numpy(), net.dist(obs).dist.stddev.numpy()
    actor = NumpyGaussianActor(net, 8, sampling_generator(1))
    log_probs, values = np.empty(8, np.float32), np.empty(8, np.float32)
    draws = np.empty((4000, 8, 2), np.float32)
    for draw in draws:
        actor.act(obs.numpy(), draw, log_probs, values)
    z = (draws.mean(0) - mean) / (std / np.sqrt(4000))
    assert (np.abs(z) < 5).all()
    assert np.allclose(draws.std(0), std, rtol=0.05)


def test_sampled_actions_follow_the_softmax_probabilities():
    """Chi-square of the action counts against the summed probabilities of every row drawn."""
    torch.manual_seed(1)
    net = sharpened(ActorCritic(OBS, gym.spaces.Discrete(4)), factor=1.0)
    obs = torch.randn(50, 4)
    with torch.no_grad():
        probs = net.dist(obs).probs.numpy().astype(np.float64)
    assert probs.max() > 0.5  # far from uniform
    actor = NumpyCategoricalActor(net, 50, sampling_generator(3))
    actions, log_probs, values = np.empty(50, np.int64), np.empty(50, np.float32), np.empty(50, np.float32)
    draws = 2000
    counts = np.zeros((50, 4))
    for _ in range(draws):
        actor.act(obs.numpy(), actions, log_probs, values)
        counts[np.arange(50), actions] += 1
    expected = probs * draws
    chi2 = ((counts.sum(0) - expected.sum(0)) ** 2 / expected.sum(0)).sum()
    assert chi2 < 16.3  # the 0.999 quantile of chi-square with 3 degrees of freedom
    # per row too: every row's frequencies within 5 standard deviations of its probabilities
    std = np.sqrt(draws * probs * (1 - probs)) + 1e-9
    assert (np.abs(counts - expected) <= 5 * std + 1).all()


def test_an_action_of_probability_zero_is_never_drawn():
    torch.manual_seed(0)
    net = ActorCritic(OBS, gym.spaces.Discrete(3))
    with torch.no_grad():
        net.policy_head.last_layer.bias.copy_(torch.tensor([0.0, -200.0, 0.0]))  # exp underflows to 0
    actor = NumpyCategoricalActor(net, 8, sampling_generator(0))
    actions, log_probs, values = np.empty(8, np.int64), np.empty(8, np.float32), np.empty(8, np.float32)
    seen = set()
    for _ in range(500):
        actor.act(np.random.default_rng(0).standard_normal((8, 4), dtype=np.float32), actions, log_probs, values)
        seen.update(actions.tolist())
        assert np.isfinite(log_probs).all()
    assert seen == {0, 2}


def test_same_seed_same_actions_other_seed_other_actions():
    torch.manual_seed(0)
    net = sharpened(ActorCritic(OBS, gym.spaces.Discrete(3)), factor=0.5)
    obs = torch.randn(64, 4)
    first, second, other = act(net, obs, 7)[1], act(net, obs, 7)[1], act(net, obs, 8)[1]
    assert np.array_equal(first, second) and not np.array_equal(first, other)


def test_collector_acts_in_numpy_where_supported_and_in_torch_otherwise():
    envs = make_vec_env("CartPole-v1", 4)
    plain = ActorCritic(envs.single_observation_space, envs.single_action_space)
    assert FixedHorizonCollector(envs, plain, 4, seed=0)._numpy_actor() is not None
    normalized = ActorCritic(envs.single_observation_space, envs.single_action_space, normalize_obs=True)
    assert FixedHorizonCollector(envs, normalized, 4, seed=0)._numpy_actor() is not None  # normalized in NumPy
    for net in (ActorCritic(envs.single_observation_space, envs.single_action_space, popart=True),
                ActorCritic(envs.single_observation_space, envs.single_action_space, activation="elu"),
                ActorCritic(envs.single_observation_space, envs.single_action_space, hidden_sizes=(512,))):
        assert FixedHorizonCollector(envs, net, 4, seed=0)._numpy_actor() is None
    box = gym.spaces.Box(-1.0, 1.0, (2,))
    assert numpy_actor_class(ActorCritic(OBS, box), 4) is NumpyGaussianActor
    for kind in ("gaussian_state_std", "tanh", "beta"):
        assert numpy_actor_class(ActorCritic(OBS, box, distribution=kind), 4) is None
    assert not numpy_acting_supported(plain, 10_000)  # big products go to torch (BLAS threads)


def test_collections_are_reproducible_from_the_seed():
    def batches(seed: int):
        torch.manual_seed(0)
        envs = make_vec_env("CartPole-v1", 8)
        net = ActorCritic(envs.single_observation_space, envs.single_action_space)
        collector = FixedHorizonCollector(envs, net, 16, seed=seed)
        return [collector.collect().actions.clone() for _ in range(3)]

    first, second, other = batches(1), batches(1), batches(2)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_the_sampling_generator_round_trips_through_a_checkpoints_json():
    generator = sampling_generator(5)
    generator.random(10)
    data = json.loads(json.dumps(encode(generator)))
    restored = decode(data)
    assert np.array_equal(restored.random(5), generator.random(5))


def test_a_synchronous_run_saves_and_restores_its_sampling_generator():
    from policygrad.algos import algorithm
    from policygrad.run.trainer import SynchronousRun

    cfg = pg.make_config("a2c", env_id="CartPole-v1", preset="none", num_envs=2, num_steps=4, device="cpu")
    net = ActorCritic(*env_spaces("CartPole-v1"))
    run = SynchronousRun(cfg, algorithm("a2c"), net, torch.device("cpu"))
    run.algo.iterate()
    data, tensors = run.state()
    data = json.loads(json.dumps(data))
    expected = run.algo.loop.collector.sampling_rng.random(3)
    run.algo.loop.collector.sampling_rng = sampling_generator(99)
    run.load_state(data, tensors, fresh_seed=0)
    assert np.array_equal(run.algo.loop.collector.sampling_rng.random(3), expected)
    run.close()


@pytest.mark.parametrize("action_space", [gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (2,))],
                         ids=["categorical", "gaussian"])
def test_collector_keeps_its_actor_and_sees_every_update(action_space):
    """The actor lives across collections; each collection must act with the weights of its moment."""
    torch.manual_seed(0)
    envs = make_vec_env("probe_envs:TruncatingEnv", 4)
    net = ActorCritic(envs.single_observation_space, action_space)
    envs.single_action_space = action_space  # the probe env ignores its actions' values
    collector = FixedHorizonCollector(envs, net, num_steps=3, seed=0)
    for _ in range(3):
        batch = collector.collect()
        with torch.no_grad():
            dist, values = net.dist_and_value(batch.flat(batch.obs))
            assert torch.allclose(batch.flat(batch.log_probs), dist.log_prob(batch.flat(batch.actions)), atol=1e-4)
            assert torch.allclose(batch.flat(batch.values), values, atol=1e-5)
            for p in net.parameters():  # an "update" between collections
                p.add_(torch.randn_like(p) * 0.1)
    actor = collector._actor
    collector.sampling_rng = sampling_generator(42)  # as a resumed run restores it
    collector.collect()
    assert collector._actor is actor and actor.generator is collector.sampling_rng
