"""Unit tests of the core: config validation, networks and their init, environments, checkpoints,
and same-seed determinism."""

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import policygrad as pg
from policygrad.checkpoint import load_model_state, load_optimizer_state, save_checkpoint
from policygrad.envs import env_spaces, make_vec_env
from policygrad.networks import HIDDEN_GAIN, POLICY_GAIN, VALUE_GAIN, ActorCritic, obs_size
from policygrad.rollout import collect_episodes, split_quota


# -- config ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes,needles", [
    ({"learning_rate": -1.0}, ["learning_rate", "-1.0", "> 0"]),
    ({"gamma": 1.5}, ["gamma", "1.5", "[0, 1]"]),
    ({"episodes_per_update": 0}, ["episodes_per_update", "0"]),
    ({"num_envs": 9, "episodes_per_update": 8}, ["num_envs", "9", "episodes_per_update=8"]),
    ({"hidden_sizes": ()}, ["hidden_sizes"]),
    ({"activation": "swish"}, ["activation", "swish", "tanh"]),
    ({"env_id": "CartPol-v1"}, ["CartPol-v1", "CartPole-v1"]),
    ({"env_id": "no_such_module:Env"}, ["no_such_module"]),
    ({"return_type": "future"}, ["return_type", "reward_to_go"]),
    ({"reward_norm": "max"}, ["reward_norm", "popart"]),
])
def test_bad_values_raise_a_value_error_naming_field_value_and_allowed(changes, needles):
    with pytest.raises(ValueError) as info:
        pg.ReinforceConfig(**changes)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_unknown_field_and_algorithm_suggest_close_matches():
    with pytest.raises(ValueError, match="learnin_rate.*learning_rate"):
        pg.make_config("reinforce", learnin_rate=0.1)
    with pytest.raises(ValueError, match="Did you mean reinforce"):
        pg.make_config("reinforc")


def test_config_round_trips_through_json_and_is_frozen():
    cfg = pg.make_config("ppo", hidden_sizes=(32, 16), seed=4)
    values = json.loads(json.dumps(cfg.to_dict()))
    algo = values.pop("algo")
    assert pg.make_config(algo, **values) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 5
    assert cfg.batch_size == cfg.num_envs * cfg.num_steps  # derived, not stored


# -- networks ---------------------------------------------------------------------------------------
def singular_values(layer: nn.Linear) -> torch.Tensor:
    return torch.linalg.svdvals(layer.weight.detach())


def test_orthogonal_init_gains():
    obs_space, act_space = env_spaces("CartPole-v1")
    net = ActorCritic(obs_space, act_space, hidden_sizes=(64, 64))
    for layer in (net.policy_body[0], net.policy_body[2], net.value_body[2]):
        assert torch.allclose(singular_values(layer), torch.full((4 if layer.in_features == 4 else 64,),
                                                                 HIDDEN_GAIN), atol=1e-4)
        assert torch.all(layer.bias == 0)
    assert torch.allclose(singular_values(net.policy_head.last_layer), torch.full((2,), POLICY_GAIN), atol=1e-6)
    assert torch.allclose(singular_values(net.value_head), torch.full((1,), VALUE_GAIN), atol=1e-6)


def test_init_schemes_differ_and_the_first_policy_is_near_uniform():
    obs_space, act_space = env_spaces("CartPole-v1")
    weights = {}
    for scheme in ("orthogonal", "xavier", "kaiming", "torch-default"):
        torch.manual_seed(0)
        net = ActorCritic(obs_space, act_space, init=scheme)
        weights[scheme] = net.policy_body[0].weight.detach().clone()
        if scheme != "torch-default":
            probs = net.dist(torch.randn(32, 4)).probs
            assert torch.all((probs - 0.5).abs() < 0.05), scheme
    schemes = list(weights)
    for i, a in enumerate(schemes):
        for b in schemes[i + 1:]:
            assert not torch.allclose(weights[a], weights[b]), (a, b)


def test_architecture_follows_the_config():
    obs_space, act_space = env_spaces("CartPole-v1")
    net = ActorCritic(obs_space, act_space, hidden_sizes=(32, 16, 8), activation="relu")
    linears = [m for m in net.policy_body if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 32), (32, 16), (16, 8)]
    assert all(isinstance(m, nn.ReLU) for m in net.policy_body if not isinstance(m, nn.Linear))
    shared = ActorCritic(obs_space, act_space, shared_trunk=True)
    assert shared.value_body is None and net.value_body is not net.policy_body
    no_value = ActorCritic(obs_space, act_space, with_value=False)
    assert not no_value.has_value


def test_discrete_observations_are_one_hot_and_odd_spaces_refused():
    net = ActorCritic(gym.spaces.Discrete(5), gym.spaces.Discrete(2))
    assert torch.equal(net.preprocess(torch.tensor([3])), torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="not supported"):
        obs_size(gym.spaces.Text(5))


# -- environments and collection --------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1"])  # native vector env, then SyncVectorEnv
def test_vec_env_records_each_episode_once_and_masks_autoreset_steps(env_id):
    envs = make_vec_env(env_id, 3)
    envs.reset(seed=0)
    rewards, valids, ends = [], [], []
    for _ in range(600):
        step = envs.step(envs.env.action_space.sample())
        rewards.append(step.reward)
        valids.append(step.valid)
        ends.append(step.terminated | step.truncated)
    episodes = envs.pop_episodes()
    rewards, valids, ends = torch.stack(rewards), torch.stack(valids), torch.stack(ends)
    # Every finished episode is reported once, and the step after each end is an invalid autoreset step.
    assert len(episodes) == int(ends.sum())
    assert torch.all(~valids[1:][ends[:-1]]) and torch.all(rewards[1:][ends[:-1]] == 0)
    first = [e for e in episodes if e.env_index == 0][0]
    env0_end = int(torch.nonzero(ends[:, 0])[0])
    assert first.length == env0_end + 1
    assert first.ret == pytest.approx(float(rewards[: env0_end + 1, 0].sum()))


def test_terminated_and_truncated_stay_apart():
    envs = make_vec_env("CartPole-v1", 1)
    envs.reset(seed=0)
    saw_truncation = False
    for _ in range(600):  # a constant action fails fast: terminated, never truncated
        step = envs.step(np.zeros(1, dtype=np.int64))
        assert not (step.terminated & step.truncated).any()
        saw_truncation |= bool(step.truncated.any())
    assert not saw_truncation


def test_same_seed_same_observations():
    a, b = make_vec_env("Acrobot-v1", 2), make_vec_env("Acrobot-v1", 2)
    assert torch.equal(a.reset(seed=3), b.reset(seed=3))
    assert not torch.equal(a.reset(seed=3), make_vec_env("Acrobot-v1", 2).reset(seed=4))


def test_collect_episodes_spreads_quotas_and_masks_steps_past_them():
    assert split_quota(7, 3) == [3, 2, 2]
    obs_space, act_space = env_spaces("CartPole-v1")
    net = ActorCritic(obs_space, act_space)
    envs = make_vec_env("CartPole-v1", 3)
    batch, episodes, steps = collect_episodes(envs, net, 7, seed=0)
    assert len(episodes) == 7
    assert sorted(sum(1 for e in episodes if e.env_index == i) for i in range(3)) == [2, 2, 3]
    assert int(batch.valid.sum()) == sum(e.length for e in episodes)  # exactly the counted episodes' steps
    assert steps == batch.num_steps * 3


# -- checkpoints --------------------------------------------------------------------------------------
def make_net_and_optimizer():
    obs_space, act_space = env_spaces("CartPole-v1")
    torch.manual_seed(0)
    net = ActorCritic(obs_space, act_space)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss = net.value(torch.randn(8, 4)).pow(2).mean() - net.dist(torch.randn(8, 4)).entropy().mean()
    loss.backward()
    opt.step()
    return net, opt


def test_checkpoint_round_trip_is_exact(tmp_path):
    net, opt = make_net_and_optimizer()
    save_checkpoint(tmp_path / "ckpt", net, opt, {"a": 1}, {"global_step": 5})
    other, other_opt = make_net_and_optimizer()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    load_model_state(tmp_path / "ckpt", other)
    for (k, v), (_, w) in zip(net.state_dict().items(), other.state_dict().items()):
        assert torch.equal(v, w), k
    load_optimizer_state(tmp_path / "ckpt", other_opt)
    saved, loaded = opt.state_dict()["state"], other_opt.state_dict()["state"]
    assert list(saved) == list(loaded)
    for index in saved:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(saved[index][key], loaded[index][key]), (index, key)


def test_corrupted_wrong_shape_and_newer_checkpoints_are_refused(tmp_path):
    net, opt = make_net_and_optimizer()
    folder = save_checkpoint(tmp_path / "ckpt", net, opt, {}, {})
    model = folder / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        load_model_state(folder, net)
    folder = save_checkpoint(tmp_path / "ckpt2", net, opt, {}, {})
    obs_space, act_space = env_spaces("CartPole-v1")
    with pytest.raises(ValueError, match=r"policy_body\.0\.(weight|bias) has shape"):
        load_model_state(folder, ActorCritic(obs_space, act_space, hidden_sizes=(32, 64)))
    manifest = json.loads((folder / "checkpoint.json").read_text())
    manifest["format_version"] = 99
    (folder / "checkpoint.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="newer"):
        load_model_state(folder, net)


# -- determinism -----------------------------------------------------------------------------------
def test_same_seed_twice_gives_identical_parameters(tmp_path):
    def run(name, seed):
        cfg = pg.make_config("reinforce", total_steps=3000, seed=seed, progress=False, tensorboard=False,
                             eval_episodes=2)
        return pg.train(cfg, run_dir=tmp_path / name)

    a, b, c = run("a", 1), run("b", 1), run("c", 2)
    for (name, x), (_, y) in zip(a.agent.network.state_dict().items(), b.agent.network.state_dict().items()):
        assert torch.equal(x, y), name
    assert (a.run_dir / "episodes.csv").read_text().split("\n")[1:3] != []
    returns = [[line.split(",")[2] for line in (r.run_dir / "episodes.csv").read_text().splitlines()[1:]]
               for r in (a, b, c)]
    assert returns[0] == returns[1] and returns[0] != returns[2]
    assert not torch.equal(a.agent.network.policy_body[0].weight, c.agent.network.policy_body[0].weight)
    agent = pg.load(a.run_dir)
    assert agent.act(np.zeros(4, np.float32)) in (0, 1)
    assert agent.act(np.zeros((3, 4), np.float32)).shape == (3,)
