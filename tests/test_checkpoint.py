"""Checkpoints: exact round trips of weights and optimizer state, and clear refusals of corrupted,
truncated, newer or ill-fitting files. Never pickle: only safetensors and JSON on disk."""

import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from policygrad.core.networks import ActorCritic
from policygrad.run.checkpoint import (
    FORMAT_VERSION,
    load_model_state,
    load_optimizer_state,
    read_manifest,
    save_checkpoint,
)

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


# -- safe loading: crafted files run nothing --------------------------------------------------------------
class Payload:
    """Unpickling this creates ``marker``: the stand-in for arbitrary code in a malicious checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def reseal(folder: Path) -> None:
    """What an attacker who edits files would do: recompute every checksum, so only parsing stands guard."""
    import hashlib

    from policygrad.run.checkpoint import _manifest_digest

    manifest = json.loads((folder / "checkpoint.json").read_text())
    for name in manifest["sha256"]:
        manifest["sha256"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / "checkpoint.json").write_text(json.dumps(manifest))


@pytest.fixture
def resumable(tmp_path):
    """A checkpoint with every member: weights, optimizer, run state (JSON and tensors)."""
    net, opt = trained_net_and_optimizer()
    return save_checkpoint(tmp_path / "ckpt", net, opt, {"algo": "reinforce"}, {"global_step": 5},
                           run_state={"rng": {"python": None}}, state_tensors={"rng.torch": torch.get_rng_state()})


def load_everything(folder: Path) -> None:
    from policygrad.run.checkpoint import load_run_state, verify_checkpoint

    net, opt = trained_net_and_optimizer(seed=1)
    verify_checkpoint(folder)
    load_model_state(folder, net)
    load_optimizer_state(folder, opt)
    load_run_state(folder)


@pytest.mark.parametrize("member", ["model.safetensors", "optimizer.safetensors", "state.safetensors",
                                    "checkpoint.json"])
@pytest.mark.parametrize("fmt", ["pickle", "torch.save"])
def test_a_pickle_payload_in_any_member_is_refused_and_runs_nothing(resumable, tmp_path, member, fmt):
    import io
    import pickle

    armed = tmp_path / "armed"
    pickle.loads(pickle.dumps(Payload(armed)))
    assert armed.exists()  # the payload is live: unpickling it does run code
    marker = tmp_path / "pwned"
    if fmt == "pickle":
        data = pickle.dumps({"weights": Payload(marker)})
    else:
        buffer = io.BytesIO()
        torch.save({"weights": Payload(marker)}, buffer)
        data = buffer.getvalue()
    (resumable / member).write_bytes(data)
    if member != "checkpoint.json":
        reseal(resumable)
    with pytest.raises(ValueError, match=r"not a safetensors file|not valid JSON") as info:
        load_everything(resumable)
    assert member in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("member", ["model.safetensors", "optimizer.safetensors", "state.safetensors",
                                    "checkpoint.json"])
def test_a_truncated_member_is_refused_naming_it(resumable, member):
    path = resumable / member
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match=r"checksum mismatch|not valid JSON") as info:
        load_everything(resumable)
    assert member in str(info.value)


def test_any_bit_flip_in_the_manifest_is_refused(resumable):
    import random

    original = (resumable / "checkpoint.json").read_bytes()
    rng = random.Random(0)
    for _ in range(300):
        data = bytearray(original)
        position = rng.randrange(len(data))
        data[position] ^= 1 << rng.randrange(8)
        (resumable / "checkpoint.json").write_bytes(bytes(data))
        with pytest.raises(ValueError, match="checkpoint.json"):
            read_manifest(resumable)


def test_a_missing_member_is_named(resumable):
    (resumable / "state.safetensors").unlink()
    with pytest.raises(ValueError, match=r"state.safetensors: missing from the checkpoint"):
        load_everything(resumable)


def test_an_unknown_format_version_is_refused(saved):
    folder, net, _ = saved
    for version in (0, "2", True, None):
        manifest = json.loads((folder / "checkpoint.json").read_text())
        manifest["format_version"] = version
        (folder / "checkpoint.json").write_text(json.dumps(manifest))
        with pytest.raises(ValueError, match=r"unknown checkpoint format version"):
            load_model_state(folder, net)


def test_wrong_dtype_and_misshapen_optimizer_state_are_named(resumable):
    from safetensors.torch import load_file, save_file

    state = load_file(str(resumable / "model.safetensors"))
    key = "value_head.bias"
    save_file({**state, key: state[key].double()}, str(resumable / "model.safetensors"))
    reseal(resumable)
    net, opt = trained_net_and_optimizer(seed=1)
    with pytest.raises(ValueError, match=r"value_head.bias has dtype torch.float64, the network expects torch.float32"):
        load_model_state(resumable, net)
    tensors = load_file(str(resumable / "optimizer.safetensors"))
    name = next(k for k in tensors if k.endswith("exp_avg"))
    save_file({**tensors, name: torch.zeros(3, 3)}, str(resumable / "optimizer.safetensors"))
    reseal(resumable)
    with pytest.raises(ValueError, match=rf"optimizer tensor '{name}' has shape \(3, 3\)"):
        load_optimizer_state(resumable, opt)


CODE = "__import__('os').system('touch {marker}')"


@pytest.mark.parametrize("field,value", [
    ("activation", CODE), ("learning_rate", CODE), ("hidden_sizes", CODE), ("optimizer", CODE), ("preset", CODE),
    ("algo", CODE), ("env_id", CODE), ("env_id", "os:system"), ("env_id", "subprocess:getoutput"),
    ("seed", True), ("hidden_sizes", [64, "64"]), ("normalize_obs", "yes"),
])
def test_a_crafted_config_is_refused_and_runs_nothing(a2c_run, tmp_path, field, value):
    import policygrad as pg

    marker = tmp_path / "pwned"
    value = value.format(marker=marker) if isinstance(value, str) else value
    run = Path(shutil.copytree(a2c_run, tmp_path / "run"))
    manifest = json.loads((run / "checkpoint" / "checkpoint.json").read_text())
    manifest["config"][field] = value
    (run / "checkpoint" / "checkpoint.json").write_text(json.dumps(manifest))
    reseal(run / "checkpoint")
    with pytest.raises(ValueError, match=field if field != "algo" else "algo="):
        pg.load(run)
    assert not marker.exists()


@pytest.fixture(scope="module")
def a2c_run(tmp_path_factory):
    """A run directory whose checkpoint loads with pg.load (then each test edits a copy)."""
    import policygrad as pg

    run = tmp_path_factory.mktemp("a2c") / "run"
    save_checkpoint(run / "checkpoint", build_a2c_net(), None, pg.A2CConfig(device="cpu").to_dict(), {"global_step": 1})
    assert pg.load(run).env_id == "CartPole-v1"
    return run


def test_an_env_module_named_by_a_file_is_imported_only_when_trusted(tmp_path, monkeypatch):
    import sys

    import policygrad as pg

    marker = tmp_path / "imported"
    (tmp_path / "shared_env_module.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "from gymnasium.envs.classic_control import CartPoleEnv as Env\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = pg.A2CConfig(device="cpu").to_dict()
    net = build_a2c_net()
    save_checkpoint(tmp_path / "run" / "checkpoint", net, None, {**config, "env_id": "shared_env_module:Env"},
                    {"global_step": 1})
    with pytest.raises(ValueError, match=r"names Python code .*trust_env=True"):
        pg.load(tmp_path / "run")
    assert not marker.exists() and "shared_env_module" not in sys.modules
    agent = pg.load(tmp_path / "run", trust_env=True)  # the user vouches for it: imported and used
    assert marker.exists() and agent.env_id == "shared_env_module:Env"
    sys.modules.pop("shared_env_module", None)


def build_a2c_net():
    import policygrad as pg
    from policygrad.core.envs import env_spaces
    from policygrad.core.networks import build_agent

    cfg = pg.A2CConfig(device="cpu")
    return build_agent(cfg, *env_spaces(cfg.env_id), with_value=True)


@pytest.mark.parametrize("data,needle", [
    ({"__generator__": "os.system", "state": {}}, "bit generator"),
    ({"__ndarray__": "O", "shape": [1], "data": [0]}, "not a numeric dtype"),
    ({"__ndarray__": "<f4", "shape": [3], "data": [1.0]}, "do not fit"),
    ({"__object__": "os.system"}, "unexpected object"),
    ({"__tuple__": [1], "__dict__": []}, "unexpected object"),
    ({"__ndarray__": "|u1", "shape": [3], "base64": "AAE"}, "does not decode"),  # no padding
    ({"__ndarray__": "|u1", "shape": [3], "base64": "AAEC!A=="}, "does not decode"),
    ({"__ndarray__": "<f4", "shape": [3], "base64": "AAECAw=="}, "do not fit"),  # 4 bytes for 12
    ({"__ndarray__": "|u1", "shape": [4], "base64": "AAECAw==", "data": [0, 1, 2, 3]}, "do not fit"),
    ({"__ndarray__": "|b1", "shape": [4], "base64": "AAECAw=="}, "other than 0 and 1"),
    ({"__ndarray__": "|S1", "shape": [1], "base64": "YQ=="}, "do not fit"),
])
def test_snapshot_decoding_accepts_data_only(data, needle):
    from policygrad.run.snapshot import decode

    with pytest.raises(ValueError, match=needle):
        decode(data)


def test_a_large_array_is_stored_as_base64_and_comes_back_bit_for_bit():
    """An Atari run's frame stacks (8 x 4 x 84 x 84 pixels) made a 59 MB manifest as lists of numbers;
    as base64 of their bytes they take ~1.33 bytes a byte, and every value (NaN, -0.0, inf) comes back."""
    import json

    from policygrad.run.snapshot import LIST_LIMIT, decode, encode

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(8, 4, 84, 84), dtype=np.uint8)
    floats = rng.standard_normal(1000)
    floats[:4] = [np.nan, -0.0, np.inf, -np.inf]
    arrays = [frames, floats, floats.astype(">f4"), rng.integers(-2**40, 2**40, size=(30, 30)),
              rng.random(500) < 0.5, np.zeros((0, 300), dtype=np.float32)]
    for array in arrays:
        text = json.dumps(encode(array))
        back = decode(json.loads(text))
        assert back.dtype == array.dtype and back.shape == array.shape and back.flags.writeable
        assert back.tobytes() == array.tobytes()  # bit for bit, NaN and -0.0 included
        if array.size > LIST_LIMIT:
            assert "base64" in json.loads(text) and len(text) < 1.34 * array.nbytes + 100
    small = encode(np.arange(LIST_LIMIT))  # a person reading the manifest still reads small arrays
    assert small["data"] == list(range(LIST_LIMIT)) and "base64" not in small


def test_environment_state_of_another_environment_is_refused():
    from policygrad.core.envs import make_gym_vector_env
    from policygrad.run.snapshot import restore_env, snapshot_env

    cartpole, acrobot = make_gym_vector_env("CartPole-v1", 2), make_gym_vector_env("Acrobot-v1", 2)
    tree, _ = snapshot_env(acrobot)
    with pytest.raises(ValueError, match="does not fit CartPoleVectorEnv"):
        restore_env(cartpole, tree)
    tree, _ = snapshot_env(cartpole)
    tree["attrs"]["step"] = 1  # would shadow the method
    with pytest.raises(ValueError, match="would overwrite CartPoleVectorEnv.step"):
        restore_env(cartpole, tree)
