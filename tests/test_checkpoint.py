"""Checkpoints: exact round trips of weights and optimizer state, and clear refusals of corrupted,
truncated, newer or ill-fitting files. Never pickle: only safetensors and JSON on disk."""

import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from policygrad.checkpoint import (
    FORMAT_VERSION,
    load_model_state,
    load_optimizer_state,
    read_manifest,
    save_checkpoint,
)
from policygrad.networks import ActorCritic

OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACT = gym.spaces.Discrete(2)


def trained_net_and_optimizer(seed=0, hidden_sizes=(16, 16)):
    """A network and an Adam optimizer after two steps, so that exp_avg / exp_avg_sq are non-zero."""
    torch.manual_seed(seed)
    net = ActorCritic(OBS, ACT, hidden_sizes=hidden_sizes)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(2):
        obs = torch.randn(8, 4)
        loss = net.value(obs).pow(2).mean() - net.dist(obs).log_prob(torch.ones(8)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, opt


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Saved once per module (saving fsyncs every file); each test gets its own copy."""
    net, opt = trained_net_and_optimizer()
    return save_checkpoint(tmp_path_factory.mktemp("template") / "ckpt", net, opt,
                           {"algo": "reinforce", "seed": 3}, {"global_step": 123, "updates": 4})


@pytest.fixture
def saved(template, tmp_path):
    """A fresh copy of the checkpoint, and the network and optimizer it was saved from."""
    net, opt = trained_net_and_optimizer()  # deterministic: the same tensors as the saved ones
    return Path(shutil.copytree(template, tmp_path / "ckpt")), net, opt


def test_checkpoint_folder_holds_only_safetensors_and_json(saved):
    folder, _, _ = saved
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.json", "model.safetensors",
                                                         "optimizer.safetensors"]
    manifest = read_manifest(folder)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["config"] == {"algo": "reinforce", "seed": 3}
    assert manifest["counters"] == {"global_step": 123, "updates": 4}
    assert set(manifest["sha256"]) == {"model.safetensors", "optimizer.safetensors"}


def test_model_round_trip_gives_identical_tensors(saved):
    folder, net, _ = saved
    other, _ = trained_net_and_optimizer(seed=1)  # different weights to be overwritten
    assert not torch.equal(other.policy_body[0].weight, net.policy_body[0].weight)
    manifest = load_model_state(folder, other)
    assert manifest["counters"]["global_step"] == 123
    expected, loaded = net.state_dict(), other.state_dict()
    assert list(expected) == list(loaded)
    for key in expected:
        assert torch.equal(expected[key], loaded[key]), key


def test_optimizer_round_trip_restores_adam_state(saved):
    folder, net, opt = saved
    other_net, _ = trained_net_and_optimizer(seed=1)
    load_model_state(folder, other_net)
    other_opt = torch.optim.Adam(other_net.parameters(), lr=0.5)  # fresh: no state, another lr
    load_optimizer_state(folder, other_opt)
    saved_state, loaded_state = opt.state_dict(), other_opt.state_dict()
    assert loaded_state["param_groups"][0]["lr"] == 1e-2
    assert list(saved_state["state"]) == list(loaded_state["state"])
    for index, entries in saved_state["state"].items():
        assert entries["exp_avg"].abs().sum() > 0
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(entries[key], loaded_state["state"][index][key]), (index, key)
    # The restored optimizer takes exactly the same next step as the original.
    obs = torch.randn(8, 4)
    for n, o in ((net, opt), (other_net, other_opt)):
        o.zero_grad()
        n.value(obs).pow(2).mean().backward()
        o.step()
    for (key, a), (_, b) in zip(net.state_dict().items(), other_net.state_dict().items()):
        assert torch.equal(a, b), key


def test_checkpoint_without_optimizer_loads_the_model(tmp_path):
    net, _ = trained_net_and_optimizer()
    folder = save_checkpoint(tmp_path / "ckpt", net, None, {}, {})
    assert not (folder / "optimizer.safetensors").exists()
    other, opt = trained_net_and_optimizer(seed=1)
    load_model_state(folder, other)
    assert torch.equal(other.value_head.weight, net.value_head.weight)
    with pytest.raises(ValueError, match="missing"):
        load_optimizer_state(folder, opt)


def test_bit_flipped_model_file_fails_the_checksum(saved):
    folder, net, _ = saved
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01  # one bit inside the tensor data: still a readable safetensors file
    path.write_bytes(bytes(data))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match="checksum"):
        load_model_state(folder, net)
    for key, value in net.state_dict().items():  # nothing half-loaded
        assert torch.equal(value, before[key]), key


def test_truncated_model_file_fails_the_checksum(saved):
    folder, net, _ = saved
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="checksum"):
        load_model_state(folder, net)


def test_corrupted_optimizer_file_fails_the_checksum(saved):
    folder, _, opt = saved
    path = folder / "optimizer.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        load_optimizer_state(folder, opt)


def test_newer_format_version_is_refused(saved):
    folder, net, _ = saved
    manifest = json.loads((folder / "checkpoint.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (folder / "checkpoint.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError) as info:
        load_model_state(folder, net)
    assert "newer" in str(info.value) and str(FORMAT_VERSION + 1) in str(info.value)


def test_missing_or_unreadable_manifest_is_refused(saved, tmp_path):
    folder, net, _ = saved
    with pytest.raises(ValueError, match="no checkpoint here"):
        load_model_state(tmp_path / "empty", net)
    (folder / "checkpoint.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model_state(folder, net)


def test_wrong_shaped_network_is_refused_naming_the_key(saved):
    folder, _, _ = saved
    wider = ActorCritic(OBS, ACT, hidden_sizes=(32, 16))  # first layer 4 -> 32 instead of 4 -> 16
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    # whichever of the layer's tensors is checked first, the message names it and both shapes
    with pytest.raises(ValueError, match=r"policy_body\.0\.(weight|bias) has shape \(16(, 4)?,?\), "
                                         r"the network expects \(32(, 4)?,?\)"):
        load_model_state(folder, wider)
    for key, value in wider.state_dict().items():  # nothing half-loaded
        assert torch.equal(value, before[key]), key


def test_network_with_other_keys_is_refused_naming_them(saved):
    folder, _, _ = saved
    shared = ActorCritic(OBS, ACT, hidden_sizes=(16, 16), shared_trunk=True)  # no value_body
    with pytest.raises(ValueError) as info:
        load_model_state(folder, shared)
    assert "value_body.0.weight" in str(info.value) and "unexpected" in str(info.value)


def test_saving_again_replaces_the_files_atomically(saved):
    folder, net, opt = saved
    with torch.no_grad():
        net.value_head.bias.fill_(7.0)
    save_checkpoint(folder, net, opt, {}, {"global_step": 456})
    assert not list(folder.glob("*.tmp"))
    other, _ = trained_net_and_optimizer(seed=1)
    assert load_model_state(folder, other)["counters"] == {"global_step": 456}
    assert torch.all(other.value_head.bias == 7.0)
