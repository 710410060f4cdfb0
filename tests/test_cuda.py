"""The GPU path (``device="cuda"``): every synchronous algorithm trains, checkpoints and resumes exactly on
CUDA (recurrent cores, gSDE and image encoders in fp32 and bf16 included), and a checkpoint moves between
CUDA and the CPU with the same actions. Skipped where torch sees no CUDA device (CI); run on a GPU machine
with ``pytest tests/test_cuda.py``. ``POLICYGRAD_TEST_DEVICE=cpu pytest tests/test_cuda.py`` runs the same
file on the CPU: a dry run that keeps it from rotting between the sessions that have a GPU."""

import os
import shutil

import numpy as np
import pytest
import torch
from test_resume import CONFIGS as RESUME_CONFIGS

import policygrad as pg
from policygrad.core.envs import env_spaces
from policygrad.run.checkpoint import periodic_checkpoints, read_manifest

DEVICE = os.environ.get("POLICYGRAD_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA device")

FAST = dict(progress=False, tensorboard=False, device=DEVICE, eval_episodes=2, keep_checkpoints=10)

# test_resume's runs (normalization statistics, the reward scaler, episodes in flight, Gaussian
# sampling on the GPU's generator, recurrent states, gSDE), PPO with two copies and PopArt's value
# statistics as well, and the image encoder on uint8 frames (where a GPU pays), in fp32 and in bf16.
IMAGES = dict(env_id="image_envs:BrightPixelNature", total_steps=128, num_envs=2, num_steps=16, num_minibatches=2,
              update_epochs=1, checkpoint_every=64, eval_every=64)
CONFIGS = {**RESUME_CONFIGS, "ppo": {**RESUME_CONFIGS["ppo"], "num_envs": 2, "reward_norm": "popart"},
           "ppo:image": IMAGES, "ppo:image-bf16": {**IMAGES, "precision": "bf16"}}


def make(algo: str, **values):
    """``algo`` may carry a label after a colon (``ppo:lstm``): the algorithm is the part before it."""
    return pg.make_config(algo.split(":")[0], **values)


def observations(env_id: str, count: int = 64) -> np.ndarray:
    space = env_spaces(env_id)[0]
    space.seed(0)
    frames = np.stack([space.sample() for _ in range(count)])
    return frames if frames.dtype == np.uint8 else frames.astype(np.float32)  # images stay raw uint8


def act(agent, obs: np.ndarray) -> np.ndarray:
    """The actions for a batch of observations; a recurrent agent from its zero state."""
    if agent.recurrent:
        return agent.act(obs, agent.initial_state(len(obs)))[0]
    return agent.act(obs)


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    return {algo: pg.train(make(algo, **values, **FAST), run_dir=root / algo.replace(":", "_"))
            for algo, values in CONFIGS.items()}


@pytest.mark.parametrize("algo", list(CONFIGS))
def test_training_on_cuda_keeps_every_tensor_there_and_records_the_device(straight_runs, algo):
    result = straight_runs[algo]
    assert result.global_step >= CONFIGS[algo]["total_steps"]
    assert {p.device.type for p in result.agent.network.parameters()} == {DEVICE}
    assert {b.device.type for b in result.agent.network.buffers()} <= {DEVICE}
    assert {p.dtype for p in result.agent.network.parameters()} == {torch.float32}  # bf16 autocasts, keeps fp32
    record = read_manifest(result.run_dir / "checkpoint")
    assert record["config"]["device"] == DEVICE
    assert np.isfinite(result.evaluation.mean)


@pytest.mark.parametrize("algo", list(CONFIGS))
def test_a_cuda_checkpoint_acts_the_same_on_the_cpu(straight_runs, algo):
    run_dir = straight_runs[algo].run_dir
    on_gpu, on_cpu = pg.load(run_dir, device=DEVICE), pg.load(run_dir, device="cpu")
    assert {p.device.type for p in on_cpu.network.parameters()} == {"cpu"}
    obs = observations(CONFIGS[algo]["env_id"])
    gpu_actions, cpu_actions = act(on_gpu, obs), act(on_cpu, obs)
    if CONFIGS[algo].get("precision") == "bf16":  # bf16 rounds differently on each device: same shapes only
        assert gpu_actions.shape == cpu_actions.shape
    elif gpu_actions.dtype.kind == "f":
        np.testing.assert_allclose(gpu_actions, cpu_actions, rtol=1e-4, atol=1e-5)
    else:
        assert np.array_equal(gpu_actions, cpu_actions)


@pytest.mark.parametrize("algo", list(CONFIGS))
def test_a_resumed_cuda_run_ends_where_the_uninterrupted_one_does(straight_runs, algo, tmp_path):
    straight = straight_runs[algo]
    resumed_dir = shutil.copytree(straight.run_dir, tmp_path / "resumed")
    first = periodic_checkpoints(resumed_dir)[0]
    resumed = pg.train(None, resume_from=first)
    expected = straight.agent.network.state_dict()
    got = resumed.agent.network.state_dict()
    assert list(expected) == list(got)
    for key in expected:
        assert torch.equal(expected[key], got[key]), (key, (expected[key] - got[key]).abs().max().item())
    assert resumed.evaluation.returns == straight.evaluation.returns


def test_a_cpu_checkpoint_acts_the_same_on_cuda_and_resumes_there(tmp_path):
    cpu_run = pg.train(pg.make_config("ppo", env_id="CartPole-v1", total_steps=512, num_envs=2, num_steps=64,
                                      checkpoint_every=256, **{**FAST, "device": "cpu"}), run_dir=tmp_path / "run")
    obs = observations("CartPole-v1")
    assert np.array_equal(pg.load(cpu_run.run_dir, device=DEVICE).act(obs), cpu_run.agent.act(obs))
    first = periodic_checkpoints(cpu_run.run_dir)[0]
    config = pg.make_config("ppo", env_id="CartPole-v1", total_steps=768, num_envs=2, num_steps=64,
                            checkpoint_every=256, **FAST)  # device may change on resume (not bit-identical then)
    resumed = pg.train(config, resume_from=first)
    assert resumed.global_step >= 768
    assert {p.device.type for p in resumed.agent.network.parameters()} == {DEVICE}
    assert read_manifest(resumed.run_dir / "checkpoint")["config"]["device"] == DEVICE
