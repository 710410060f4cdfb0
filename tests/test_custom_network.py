"""A user's own torch.nn.Module as the network (core/user_network.py, the guide's Q7): every algorithm
trains it, checkpoints hold its weights, loading it needs trust like a module:Class env does, the CLI
takes --network, the speed paths leave it alone, and a wrong output is a clear error."""

from __future__ import annotations

import copy
import json
import shutil
import sys

import custom_networks
import numpy as np
import pytest
import torch
from torch import nn

import policygrad as pg
from policygrad.algos.rollout import FixedHorizonCollector
from policygrad.cli import main
from policygrad.core.envs import env_spaces, make_vec_env
from policygrad.core.user_network import UserNetwork, build_network
from policygrad.fast import fused_acting, numpy_acting

QUICK = dict(progress=False, tensorboard=False, eval_episodes=2, checkpoint_every=0)
TWO_HEADED = "custom_networks:TwoHeaded"
OBS = torch.tensor([[0.01, -0.02, 0.03, 0.04], [0.1, 0.5, -0.1, -0.5], [-0.05, 0.2, 0.08, 0.3]])


def quick_config(algo: str, **values):
    return pg.make_config(algo, **{"env_id": "CartPole-v1", "total_steps": 600, "num_envs": 2, **QUICK, **values})


def weights(agent) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in agent.network.state_dict().items()}


@pytest.mark.parametrize("algo, values", [
    ("reinforce", {"network": "custom_networks:PolicyOnly", "baseline": "mean"}),
    ("reinforce", {"network": "custom_networks:WithValueMethod", "baseline": "value"}),
    ("actor_critic", {"network": TWO_HEADED}),
    ("a2c", {"network": TWO_HEADED, "normalize_obs": True, "reward_norm": "popart"}),
    ("a2c", {"network": "custom_networks:WithValueMethod", "reward_norm": "scale"}),
    ("ppo", {"network": TWO_HEADED, "num_steps": 64, "num_minibatches": 2, "update_epochs": 2}),
])
def test_every_synchronous_algorithm_trains_a_user_module(algo, values, tmp_path):
    net = getattr(custom_networks, values["network"].partition(":")[2])(*env_spaces("CartPole-v1"))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = pg.train(quick_config(algo, **values), run_dir=tmp_path / "run", network=net)
    assert isinstance(result.agent.network, UserNetwork) and result.agent.network.module is net
    assert result.global_step >= 600 and result.evaluation is not None
    after = net.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before), "a weight of the user's module never moved"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["network"] == values["network"]


def test_a3c_trains_a_user_module(tmp_path):
    config = pg.make_config("a3c", env_id="CartPole-v1", network="custom_networks:WithValueMethod", total_steps=400,
                            num_workers=1, log_every=200, **QUICK)
    result = pg.train(config, run_dir=tmp_path / "run")
    assert isinstance(result.agent.network, UserNetwork) and result.global_step >= 400


def test_a3c_refuses_a_class_its_workers_cannot_import(tmp_path):
    class Local(custom_networks.TwoHeaded):  # defined in a function: no worker can import it by name
        pass

    config = pg.make_config("a3c", env_id="CartPole-v1", total_steps=400, num_workers=1, **QUICK)
    with pytest.raises(ValueError, match=r"network=.*Local.*importable by name"):
        pg.train(config, run_dir=tmp_path / "run", network=Local(*env_spaces("CartPole-v1")))


def test_python_module_instance_trains_and_is_recorded(tmp_path):
    torch.manual_seed(0)
    net = custom_networks.NeedsWidth(*env_spaces("CartPole-v1"), hidden=8)
    result = pg.train(quick_config("a2c"), run_dir=tmp_path / "run", network=net)
    assert result.agent.network.module is net
    assert result.agent.config.network == "custom_networks:NeedsWidth"
    # a config naming another class than the module given is refused
    with pytest.raises(ValueError, match=r"network='custom_networks:TwoHeaded' names another class"):
        pg.train(quick_config("a2c", network=TWO_HEADED), run_dir=tmp_path / "other", network=net)
    # Loading: the class needs a width, so pass a module to load into (no trust needed: nothing is imported)
    with pytest.raises(ValueError, match=r"NeedsWidth\(observation_space, action_space\) failed"):
        pg.load(tmp_path / "run")
    agent = pg.load(tmp_path / "run", network=custom_networks.NeedsWidth(*env_spaces("CartPole-v1"), hidden=8))
    assert np.array_equal(agent.act(OBS.numpy()), result.agent.act(OBS.numpy()))


def test_checkpoint_round_trip_acts_the_same(tmp_path):
    config = quick_config("a2c", network=TWO_HEADED, normalize_obs=True, reward_norm="popart", total_steps=800)
    result = pg.train(config, run_dir=tmp_path / "run")
    loaded = pg.load(tmp_path / "run")
    assert isinstance(loaded.network, UserNetwork)
    saved, back = weights(result.agent), weights(loaded)
    assert saved.keys() == back.keys() and all(torch.equal(saved[k], back[k]) for k in saved)
    assert any(k.startswith("obs_normalizer.") for k in saved) and "value_affine.weight" in saved
    assert np.array_equal(loaded.act(OBS.numpy()), result.agent.act(OBS.numpy()))
    # The trained network's parameters are views into its flat optimizer's buffer, at offsets that are not
    # 64-byte aligned: the same matrix product there can differ in the last bit (measured: 2.4e-7). A copy
    # with storage of its own computes as the loaded network does, bit for bit.
    trained = copy.deepcopy(result.agent.network).eval()
    with torch.no_grad():
        assert torch.equal(loaded.network.value(OBS), trained.value(OBS))


def test_continuous_actions_use_the_librarys_log_std(tmp_path):
    config = pg.make_config("ppo", env_id="Pendulum-v1", network=TWO_HEADED, total_steps=256, num_envs=2,
                            num_steps=64, num_minibatches=2, update_epochs=1, log_std_init=-0.5, **QUICK)
    result = pg.train(config, run_dir=tmp_path / "run")
    log_std = result.agent.network.state_dict()["head.log_std"]
    assert log_std.shape == (1,) and not torch.equal(log_std, torch.full((1,), -0.5))  # it learned
    action = pg.load(tmp_path / "run").act(np.zeros(3, dtype=np.float32))
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0


def test_resume_of_a_user_network_run_is_exact(tmp_path):
    config = quick_config("a2c", network=TWO_HEADED, total_steps=800, checkpoint_every=400)
    straight = pg.train(config, run_dir=tmp_path / "straight")
    copy = shutil.copytree(straight.run_dir, tmp_path / "copy")
    resumed = pg.train(None, resume_from=copy / "checkpoints" / "step_000000400")
    a, b = weights(straight.agent), weights(resumed.agent)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_loading_needs_trust_unless_the_module_is_imported(tmp_path, monkeypatch, capsys):
    pg.train(quick_config("ppo", network=TWO_HEADED, num_steps=64, num_minibatches=2, update_epochs=1),
             run_dir=tmp_path / "run")
    monkeypatch.delitem(sys.modules, "custom_networks")  # as in a fresh process that never imported it
    with pytest.raises(ValueError, match=r"network='custom_networks:TwoHeaded' names Python code.*trust_env=True"):
        pg.load(tmp_path / "run")
    assert "custom_networks" not in sys.modules  # refused before anything was imported
    assert main(["eval", str(tmp_path / "run"), "--episodes", "1"]) == 2
    assert "names Python code" in capsys.readouterr().err
    with pytest.raises(ValueError, match="names Python code"):
        pg.train(None, resume_from=tmp_path / "run")
    agent = pg.load(tmp_path / "run", trust_env=True)  # the user vouches for it: imported and built
    assert isinstance(agent.network, UserNetwork) and "custom_networks" in sys.modules
    assert main(["eval", str(tmp_path / "run"), "--episodes", "1", "--trust-env"]) == 0


def test_cli_network_flag(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ppo", "--env", "CartPole-v1", "--network", TWO_HEADED, "--total-steps", "256",
                 "--num-envs", "2", "--num-steps", "64", "--num-minibatches", "2", "--update-epochs", "1",
                 "--run-dir", str(run), "--progress", "false", "--tensorboard", "false", "--eval-episodes", "1"]) == 0
    assert json.loads((run / "config.json").read_text())["config"]["network"] == TWO_HEADED
    assert main(["eval", str(run), "--episodes", "1"]) == 0  # custom_networks is imported in this process
    assert main(["train", "ppo", "--network", "custom_networks:NoSuchNet", "--run-dir", str(tmp_path / "x")]) == 2
    assert "has no torch.nn.Module class 'NoSuchNet'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before a run directory was made


def test_speed_paths_fall_back_to_dist_and_value(monkeypatch):
    net = build_network(quick_config("a2c", network=TWO_HEADED), *env_spaces("CartPole-v1"), with_value=True)
    assert numpy_acting.numpy_actor_class(net, rows=2) is None
    assert fused_acting.acting_forward(net) == net.dist_and_value
    dist, value = fused_acting.acting_forward(net, with_value=False)(OBS)
    assert value is None and torch.equal(dist.logits, net.dist(OBS).logits)

    def no_fusing(*args, **kwargs):
        raise AssertionError("a fused snapshot was taken of a user network")

    monkeypatch.setattr(fused_acting, "fused_snapshot", no_fusing)
    monkeypatch.setattr(numpy_acting, "fused_acting_weights", no_fusing)
    calls = []
    net.module.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    envs = make_vec_env("CartPole-v1", 2)
    collector = FixedHorizonCollector(envs, net, num_steps=5, seed=0)
    batch = collector.collect()
    assert calls == [2] * 5 and collector._actor is None  # one plain forward per step, no NumPy actor
    dist, values = net.dist_and_value(batch.obs[0])
    assert torch.allclose(dist.log_prob(batch.actions[0]), batch.log_probs[0])
    assert torch.allclose(values, batch.values[0])
    envs.close()


@pytest.mark.parametrize("network, values, message", [
    ("custom_networks:OneTooMany", {}, r"returned shape \(2, 3\); Discrete\(2\) actions need logits of shape \(B, 2\)"),
    (TWO_HEADED, {"env_id": "Pendulum-v1", "distribution": "tanh"},
     r"returned shape \(2, 1\); Box.* actions with distribution='tanh' need mean and log std side by side of shape "
     r"\(B, 2\)"),
    ("custom_networks:PolicyOnly", {}, r"returns no value V\(s\), which a2c needs"),
    ("custom_networks:NeedsWidth", {}, r"NeedsWidth\(observation_space, action_space\) failed"),
])
def test_a_wrong_network_is_a_clear_error(network, values, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        pg.train(quick_config("a2c", network=network, **values), run_dir=tmp_path / "run")


def test_the_value_shape_and_the_config_field_are_checked():
    class BadValue(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(4, 2)

        def forward(self, obs):
            return self.out(obs), torch.zeros(obs.shape[0], 3)

    with pytest.raises(ValueError, match=r"forward\(obs\)\[1\] \(the value V\(s\)\) is \(2, 3\); expected "
                                         r"shape \(B,\)"):
        UserNetwork(BadValue(), *env_spaces("CartPole-v1"))
    with pytest.raises(ValueError, match=r"network='no_colon' is invalid: expected '' \(the built-in MLP\) or "
                                         r"'module:Class'"):
        pg.A2CConfig(network="no_colon")


def test_value_comes_from_forward_or_else_from_a_value_method():
    class ValueHeadNamedValue(nn.Module):  # a submodule called value is not a value(obs) method
        def __init__(self):
            super().__init__()
            self.trunk, self.logits, self.value = nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(8, 1)

        def forward(self, obs):
            features = torch.tanh(self.trunk(obs))
            return self.logits(features), self.value(features)

    spaces = env_spaces("CartPole-v1")
    for module in (ValueHeadNamedValue(), custom_networks.WithValueMethod(*spaces)):
        net = UserNetwork(module, *spaces)
        assert net.has_value and torch.equal(net.value(OBS), net.dist_and_value(OBS)[1])
    assert not UserNetwork(custom_networks.PolicyOnly(*spaces), *spaces, with_value=False).has_value
