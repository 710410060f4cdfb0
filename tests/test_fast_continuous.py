"""The speed paths of continuous control with one environment (RL Baselines3 Zoo's MuJoCo presets): the
running statistics merged in NumPy, reward scaling in NumPy, acting in NumPy on normalized
observations with 256-wide networks, the direct step of a one-copy SyncVectorEnv, and FlatAdam's
direct fused step. Each computes what the plain path computes: the same bits where the operations
are the same, float rounding where the matrix products differ."""

import copy
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import policygrad as pg
from policygrad.algos import ppo, rollout
from policygrad.algos.on_policy import FlatBatch
from policygrad.algos.rollout import FixedHorizonCollector
from policygrad.core import losses
from policygrad.core.envs import make_vec_env
from policygrad.core.networks import ActorCritic
from policygrad.core.normalization import PRIOR_COUNT, RewardScaler, RunningMeanStd
from policygrad.fast.flat_optim import FlatAdam
from policygrad.fast.fused_loss import fused_loss_supported
from policygrad.fast.numpy_acting import NumpyGaussianActor, numpy_actor_class, sampling_generator


class ActionBlindEnv(gym.Env):
    """Observations and rewards from the env's own seeded stream, whatever the actions (so that two
    collectors that sample different actions see the same experience); episodes of 1 to 9 steps, ended
    by termination or truncation, with observations and rewards on very different scales."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    SCALE = np.array([1.0, 100.0, 0.01, 5.0, 1e3], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(1, 10))
        return self._obs(), {}

    def _obs(self):
        return (self.np_random.standard_normal(5).astype(np.float32) * self.SCALE + 3.0).astype(np.float32)

    def step(self, action):
        self.t += 1
        end = self.t >= self.length
        truncated = end and self.length % 2 == 0
        return self._obs(), float(self.np_random.normal(2.0, 30.0)), end and not truncated, truncated, {}


def reference_update(stats: RunningMeanStd, batch: torch.Tensor) -> None:
    """RunningMeanStd.update's torch merge of a batch (Chan et al.), as it runs for several rows."""
    batch = batch.detach().to(torch.float64).reshape(-1, *stats.mean.shape)
    n = batch.shape[0]
    batch_mean, batch_var = batch.mean(0), batch.var(0, unbiased=False)
    total = stats.count + n
    delta = batch_mean - stats.mean
    m2 = stats.var * stats.count + batch_var * n + delta.pow(2) * stats.count * n / total
    stats.mean.add_(delta * n / total)
    stats.var.copy_(m2 / total)
    stats.count.copy_(total)


@pytest.mark.parametrize("shape", [(17,), (), (2, 3)])
def test_one_sample_merged_in_numpy_has_the_bits_of_the_torch_merge(shape):
    rng = np.random.default_rng(0)
    fast, reference = RunningMeanStd(shape), RunningMeanStd(shape)
    scale = rng.uniform(0.01, 1e3, shape)
    for i in range(600):
        sample = (rng.standard_normal((1, *shape)) * scale + 7.0).astype(np.float32)
        if i % 3:
            fast.update_numpy(sample)
        else:
            fast.update(torch.from_numpy(sample))  # a one-row tensor takes the NumPy merge too
        reference_update(reference, torch.from_numpy(sample))
        if i % 50 == 0:  # batches of several rows in between (torch's merge on both)
            rows = torch.randn(4, *shape, dtype=torch.float64)
            fast.update(rows)
            reference_update(reference, rows)
    for name in ("mean", "var", "count"):
        assert torch.equal(getattr(fast, name), getattr(reference, name)), name
    fast.update_numpy(np.zeros((0, *shape), np.float32))  # no rows: nothing changes
    assert torch.equal(fast.count, reference.count)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_reward_scaling_in_numpy_has_the_bits_of_the_torch_scaling(num_envs):
    rng = np.random.default_rng(1)
    fast, plain = RewardScaler(num_envs, gamma=0.98), RewardScaler(num_envs, gamma=0.98)
    out = np.empty(num_envs, np.float32)
    for _ in range(300):
        rewards = rng.normal(1.0, 50.0, num_envs)  # float64, as the environments give them
        done, valid = rng.random(num_envs) < 0.1, rng.random(num_envs) < 0.9
        expected = plain.scale(torch.from_numpy(rewards).float(), torch.from_numpy(done), torch.from_numpy(valid))
        fast.scale_numpy(rewards, done, valid, out)
        assert np.array_equal(out, expected.numpy())
        assert torch.equal(fast.running_return, plain.running_return)
    for name in ("mean", "var", "count"):
        assert torch.equal(getattr(fast.stats, name), getattr(plain.stats, name)), name


@pytest.mark.parametrize("hidden_sizes,activation,rows", [((256, 256), "relu", 1), ((64, 64), "tanh", 8)])
def test_numpy_acting_on_normalized_observations_equals_dist_and_value(hidden_sizes, activation, rows):
    torch.manual_seed(0)
    net = ActorCritic(ActionBlindEnv.observation_space, gym.spaces.Box(-1.0, 1.0, (6,)), hidden_sizes=hidden_sizes,
                      activation=activation, init="torch-default", log_std_init=-2.0, normalize_obs=True)
    stats = net.obs_normalizer.stats
    obs = torch.randn(rows, 5) * torch.from_numpy(ActionBlindEnv.SCALE) + 3.0
    obs[0, 0] = 1e6  # clipped to 10 once normalized
    for _ in range(20):
        stats.update(torch.randn(3, 5) * torch.from_numpy(ActionBlindEnv.SCALE))
    assert numpy_actor_class(net, rows) is NumpyGaussianActor
    actor = NumpyGaussianActor(net, rows, sampling_generator(0))
    assert np.array_equal(actor.normalize(obs.numpy()), net.obs_normalizer(obs).numpy())  # the same bits
    actions, log_probs, values = np.empty((rows, 6), np.float32), np.empty(rows, np.float32), np.empty(rows, np.float32)
    actor.act(obs.numpy(), actions, log_probs, values)
    with torch.no_grad():
        dist, value = net.dist_and_value(obs)
        expected = dist.log_prob(torch.from_numpy(actions))
    assert np.allclose(values, value.numpy(), rtol=1e-5, atol=1e-5)
    assert np.allclose(log_probs, expected.numpy(), rtol=1e-5, atol=1e-4)
    # the statistics move between steps: the actor reads them as they are at each call
    stats.update(torch.randn(5) * 50)
    actor.act(obs.numpy(), actions, log_probs, values)
    with torch.no_grad():
        assert np.allclose(values, net.value(obs).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_collector_in_numpy_learns_the_statistics_and_rewards_of_the_torch_collector(num_envs, monkeypatch):
    """With an environment blind to the actions, the NumPy collector (one env: the direct env step,
    the NumPy merges) and the torch one see the same experience: the same observations, scaled
    rewards and statistics, bit for bit, and values up to float rounding."""
    def build():
        torch.manual_seed(0)
        envs = make_vec_env("test_fast_continuous:ActionBlindEnv", num_envs)
        net = ActorCritic(envs.single_observation_space, envs.single_action_space, hidden_sizes=(256, 256),
                          activation="relu", init="torch-default", normalize_obs=True,
                          reward_scaler=RewardScaler(num_envs, gamma=0.99))
        return envs, net, FixedHorizonCollector(envs, net, num_steps=25, seed=3)

    envs, net, collector = build()
    assert collector._numpy_actor() is not None
    batches = [copy.deepcopy(collector.collect()) for _ in range(3)]
    monkeypatch.setattr(rollout, "numpy_actor_class", lambda agent, rows: None)
    plain_envs, plain_net, plain_collector = build()
    assert plain_collector._numpy_actor() is None
    for batch in batches:
        plain = plain_collector.collect()
        for name in ("obs", "rewards", "terminated", "truncated", "valid", "next_obs"):
            assert torch.equal(getattr(batch, name), getattr(plain, name)), name
        assert torch.allclose(batch.values, plain.values, rtol=1e-5, atol=1e-5)
    for a, b in ((net.obs_normalizer.stats, plain_net.obs_normalizer.stats), (net.reward_scaler.stats,
                                                                              plain_net.reward_scaler.stats)):
        for name in ("mean", "var", "count"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(net.reward_scaler.running_return, plain_net.reward_scaler.running_return)
    assert net.obs_normalizer.stats.count.item() == 75 * num_envs + PRIOR_COUNT
    assert envs.pop_episodes() == plain_envs.pop_episodes() != []


@pytest.mark.parametrize("env_id,steps", [("probe_envs:TruncatingEnv", 30), ("probe_envs:CountingEnv", 30),
                                          ("test_fast_continuous:ActionBlindEnv", 200), ("Pendulum-v1", 450),
                                          ("Acrobot-v1", 1050)])
def test_one_copy_stepped_directly_steps_as_the_sync_vector_env(env_id, steps):
    """Autoreset steps, termination, truncation, episodes, dtypes and the vector env's own state."""
    fast, plain = make_vec_env(env_id, 1), make_vec_env(env_id, 1)
    assert fast._single
    plain._single = False  # through SyncVectorEnv.step
    assert torch.equal(fast.reset(seed=4), plain.reset(seed=4))
    plain.env.action_space.seed(0)
    for _ in range(steps):
        action = plain.env.action_space.sample()
        for got, expected in zip(fast.step_arrays(action), plain.step_arrays(action)):
            assert got.dtype == expected.dtype and got.shape == expected.shape and np.array_equal(got, expected)
    assert fast.pop_episodes() == plain.pop_episodes() != []
    for name in ("_autoreset_envs", "_observations", "_rewards", "_terminations", "_truncations"):
        assert np.array_equal(getattr(fast.env, name), getattr(plain.env, name)), name
    assert fast.step_count == plain.step_count == steps
    for a, b in zip(fast.bookkeeping()[:3], plain.bookkeeping()[:3]):
        assert np.array_equal(a, b)


def test_only_a_plain_sync_vector_env_of_one_copy_is_stepped_directly():
    assert not make_vec_env("probe_envs:TruncatingEnv", 2)._single
    assert not make_vec_env("CartPole-v1", 1)._single  # its own vectorised env


def test_flat_adams_direct_step_has_the_bits_of_fused_adam():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    reference = copy.deepcopy(net)
    flat = FlatAdam(net.parameters(), lr=1e-3, eps=1e-5, fused=True)
    plain = torch.optim.Adam(reference.parameters(), lr=1e-3, eps=1e-5, fused=True)
    for i in range(30):
        x = torch.randn(16, 5)
        for model, optimizer in ((net, flat), (reference, plain)):
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
        if i == 10:
            for optimizer in (flat, plain):
                optimizer.param_groups[0]["lr"] = 3e-4
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), reference.parameters()))
    saved, expected = flat.state_dict()["state"], plain.state_dict()["state"]
    assert all(torch.equal(saved[i][k], expected[i][k]) for i in expected for k in expected[i])
    calls = []
    hook = flat.register_step_post_hook(lambda *args: calls.append(1))
    flat.step()  # with a hook: torch.optim's step, which calls it once
    hook.remove()
    flat.step()
    assert calls == [1]


def test_a_flat_adam_does_not_import_torch_dynamo():
    """torch.optim imports torch._dynamo (~2 s) on its first step or add_param_group; FlatAdam needs neither."""
    code = ("import sys, torch\nfrom policygrad.fast.flat_optim import FlatAdam\n"
            "net = torch.nn.Linear(3, 2)\nopt = FlatAdam(net.parameters(), lr=1e-3, fused=True)\n"
            "for _ in range(2):\n    opt.zero_grad(); net(torch.randn(4, 3)).sum().backward(); opt.step()\n"
            "opt.load_state_dict(opt.state_dict())\nprint('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def minibatch(net: ActorCritic, rows: int = 64) -> FlatBatch:
    obs = torch.randn(rows, 5) * torch.from_numpy(ActionBlindEnv.SCALE)
    with torch.no_grad():
        dist = net.dist(obs)
        actions = dist.sample()
        old = dist.log_prob(actions) + torch.randn(rows) * 0.3  # ratios inside and outside the clip range
    return FlatBatch(obs, actions, old, torch.randn(rows), torch.randn(rows) * 3, torch.randn(rows) * 2)


@pytest.mark.parametrize("shared_trunk,activation,ent_coef", [(False, "relu", 0.01), (True, "tanh", 0.0),
                                                              (False, "tanh", 0.0)])
def test_fused_ppo_loss_equals_the_plain_loss_and_its_gradient(shared_trunk, activation, ent_coef):
    torch.manual_seed(0)
    net = ActorCritic(ActionBlindEnv.observation_space, gym.spaces.Box(-1.0, 1.0, (6,)), hidden_sizes=(64, 64),
                      activation=activation, shared_trunk=shared_trunk, normalize_obs=True)
    with torch.no_grad():  # two log stds clamped (no gradient through the clamp), one at its bound
        net.policy_head.log_std.copy_(torch.tensor([-2.0, -5.5, 0.3, 2.5, -1.0, -5.0]))
    net.obs_normalizer.update(torch.randn(50, 5) * torch.from_numpy(ActionBlindEnv.SCALE))
    cfg = pg.make_config("ppo", env_id="Pendulum-v1", preset="none", ent_coef=ent_coef, vf_coef=0.7)
    mb = minibatch(net)
    advantages = losses.normalize(mb.advantages)
    params = list(net.parameters())
    assert fused_loss_supported(net, cfg.clip_vloss)
    loss, terms = ppo.ppo_minibatch_loss(cfg, net, mb, advantages, 0.1, fused=True)
    grads = torch.autograd.grad(loss, params)
    plain_loss, plain_terms = ppo.ppo_minibatch_loss(cfg, net, mb, advantages, 0.1, fused=False)
    plain_grads = torch.autograd.grad(plain_loss, params)
    assert torch.allclose(loss, plain_loss, rtol=1e-5, atol=1e-6)
    for key in plain_terms:
        assert torch.allclose(terms[key], plain_terms[key], rtol=1e-5, atol=1e-5), key
        assert not terms[key].requires_grad
    ratio = (plain_terms["log_probs"] - mb.log_probs).exp()
    assert ((ratio - 1).abs() > 0.1).any() and ((ratio - 1).abs() < 0.1).any()  # both sides of the clip
    for (name, _), grad, expected in zip(net.named_parameters(), grads, plain_grads):
        # (relative to the tensor's scale: terms that nearly cancel differ in their last bits)
        assert (grad - expected).abs().max() <= 1e-5 * expected.abs().max() + 1e-7, name
    log_std_grad = next(g for p, g in zip(params, grads) if p is net.policy_head.log_std)
    assert log_std_grad[1] == 0 and log_std_grad[0] != 0  # clamped: no gradient, as on the plain path


def test_the_fused_loss_is_used_only_where_it_is_the_plain_one():
    box, obs = gym.spaces.Box(-1.0, 1.0, (2,)), ActionBlindEnv.observation_space
    assert fused_loss_supported(ActorCritic(obs, box), clip_vloss=False)
    assert not fused_loss_supported(ActorCritic(obs, box), clip_vloss=True)
    assert not fused_loss_supported(ActorCritic(obs, box, popart=True), clip_vloss=False)
    assert not fused_loss_supported(ActorCritic(obs, gym.spaces.Discrete(3)), clip_vloss=False)
    for kind in ("gaussian_state_std", "tanh", "beta", "gsde"):
        assert not fused_loss_supported(ActorCritic(obs, box, distribution=kind), clip_vloss=False)


def test_a_run_resumed_from_a_checkpoint_without_the_speed_paths_goes_on_as_it_began():
    """A checkpoint of an earlier policygrad (no ``speed_paths``): normalized observations go on acting
    through torch and PPO's loss stays the plain one, so that the resumed run ends as it would have."""
    import json

    from policygrad.algos import algorithm
    from policygrad.core.envs import env_spaces
    from policygrad.run.trainer import SynchronousRun

    cfg = pg.make_config("ppo", env_id="Pendulum-v1", preset="none", num_envs=1, num_steps=8, num_minibatches=2,
                         update_epochs=1, normalize_obs=True, device="cpu")
    net = ActorCritic(*env_spaces("Pendulum-v1"), normalize_obs=True)
    run = SynchronousRun(cfg, algorithm("ppo"), net, torch.device("cpu"))
    assert run.algo.fused_loss  # decided once, at construction: no minibatch asks again
    asked = []
    supported = ppo.fused_loss_supported
    ppo.fused_loss_supported = lambda *args: asked.append(1) or supported(*args)
    try:
        run.algo.iterate()
    finally:
        ppo.fused_loss_supported = supported
    assert asked == []
    data, tensors = run.state()
    data = json.loads(json.dumps(data))
    assert run.algo.loop.collector._numpy_actor() is not None
    old = {k: v for k, v in data.items() if k != "speed_paths"}
    run.load_state(old, tensors, fresh_seed=0)
    assert run.algo.loop.speed_paths == 1 and run.algo.loop.collector._numpy_actor() is None
    assert not run.algo.loop.fast_paths and not run.algo.fused_loss
    calls = []
    original = ppo.fused_ppo_loss
    ppo.fused_ppo_loss = lambda *args: calls.append(1) or original(*args)
    try:
        run.algo.iterate()
        assert calls == []
        run.load_state(data, tensors, fresh_seed=0)
        assert run.algo.loop.speed_paths == 2 and run.algo.loop.collector._numpy_actor() is not None
        assert run.algo.loop.fast_paths and run.algo.fused_loss
        run.algo.iterate()
        assert calls
    finally:
        ppo.fused_ppo_loss = original
        run.close()


def test_a_fixed_horizon_collector_refuses_a_network_without_a_value_head():
    from policygrad.algos.rollout import FixedHorizonCollector
    from policygrad.core.envs import env_spaces, make_vec_env
    from policygrad.core.networks import ActorCritic

    envs = make_vec_env("CartPole-v1", 2)
    try:
        network = ActorCritic(*env_spaces("CartPole-v1"), with_value=False)
        with pytest.raises(ValueError, match="value head"):
            FixedHorizonCollector(envs, network, num_steps=4, seed=0)
    finally:
        envs.close()
