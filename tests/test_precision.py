"""precision=bf16 (core/precision.py): bfloat16 autocast around the image encoders, on small synthetic image
environments (tests/image_envs.py): the convolutions compute in bf16 while heads, log-probabilities and
parameters stay float32; a bf16 run trains, saves float32 checkpoints, evaluates, loads and resumes
exactly; PPO's first-minibatch ratio stays at 1; and the settings it cannot apply to are refused in one line."""

import shutil
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import policygrad as pg
from policygrad.algos.a2c import A2C
from policygrad.algos.on_policy import batch_rows, estimate_advantages
from policygrad.algos.ppo import PPO, ppo_minibatch_loss
from policygrad.cli import main
from policygrad.core import precision
from policygrad.core.envs import make_vec_env
from policygrad.core.errors import UserInputError
from policygrad.core.networks import ActorCritic
from policygrad.core.user_network import build_network
from policygrad.run.checkpoint import periodic_checkpoints

FAST = dict(progress=False, tensorboard=False, device="cpu", eval_episodes=2)
TINY = dict(env_id="image_envs:BrightPixelNature", total_steps=128, num_envs=2, num_steps=16)  # 36x36x4 uint8 HWC
PPO_TINY = dict(TINY, num_minibatches=2, update_epochs=2)


def test_a_bf16_run_trains_saves_fp32_checkpoints_evaluates_and_resumes_exactly(tmp_path):
    cfg = pg.make_config("ppo", precision="bf16", checkpoint_every=64, keep_checkpoints=5, **PPO_TINY, **FAST)
    straight = pg.train(cfg, run_dir=tmp_path / "straight")
    assert straight.agent.network.autocast_dtype == torch.bfloat16
    assert len(straight.evaluation.returns) == 2
    final = straight.run_dir / "checkpoint"
    for name in ("model.safetensors", "optimizer.safetensors"):
        tensors = load_file(final / name)
        floats = {key: t.dtype for key, t in tensors.items() if t.is_floating_point()}
        assert floats and set(floats.values()) == {torch.float32}, (name, floats)
    agent = pg.load(straight.run_dir, trust_env=True)
    assert agent.config.precision == "bf16" and agent.network.autocast_dtype == torch.bfloat16
    assert len(pg.evaluate(agent, episodes=2).returns) == 2
    resumed = tmp_path / "resumed"
    shutil.copytree(straight.run_dir, resumed)
    first = periodic_checkpoints(resumed)[0]
    assert main(["resume", str(resumed), "--checkpoint", first.name, "--trust-env"]) == 0
    expected, loaded = straight.agent.network.state_dict(), pg.load(resumed, trust_env=True).network.state_dict()
    for key in expected:
        assert torch.equal(expected[key], loaded[key]), key


def recorded_dtypes(network: ActorCritic) -> tuple[dict[str, set], dict[str, set]]:
    """The dtypes each encoder layer (convolutions and linear layers: forward hooks) output and the heads
    (the features they read, the logits and values they give) computed in, while acting (no gradient)
    and while updating (with gradient)."""
    acting: dict[str, set] = {}
    updating: dict[str, set] = {}

    def record(name, dtype):
        (updating if torch.is_grad_enabled() else acting).setdefault(name, set()).add(dtype)

    for name, module in network.policy_body.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(lambda m, i, out, name=name: record(name, out.dtype))
    policy_distribution, dist_and_value = network.policy_distribution, network.dist_and_value

    def heads(features, mask=None):
        dist = policy_distribution(features, mask)
        record("features", features.dtype)
        record("logits", dist.logits.dtype)
        return dist

    def both(obs):
        dist, value = dist_and_value(obs)
        record("value", value.dtype)
        return dist, value

    network.policy_distribution, network.dist_and_value = heads, both
    return acting, updating


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
@pytest.mark.parametrize("setting", ["bf16", "fp32"])
def test_the_convolutions_compute_in_bf16_and_the_heads_in_fp32(algo, setting):
    cfg = pg.make_config(algo, precision=setting, **(PPO_TINY if algo == "ppo" else TINY), **FAST)
    envs = make_vec_env(cfg.env_id, cfg.num_envs, training=True)
    torch.manual_seed(cfg.seed)
    network = build_network(cfg, envs.single_observation_space, envs.single_action_space, with_value=True)
    acting, updating = recorded_dtypes(network)
    learner = (PPO if algo == "ppo" else A2C)(cfg, envs, network)
    iteration = learner.iterate()
    envs.close()
    expected = torch.bfloat16 if setting == "bf16" else torch.float32
    for name in ("0", "2", "4", "7"):  # the Nature CNN's 3 convolutions and its 512 units
        assert updating[name] == acting[name] == {expected}, (name, updating, acting)
    for name in ("features", "logits", "value"):
        assert updating[name] == acting[name] == {torch.float32}, (name, updating, acting)
    assert all(p.dtype == torch.float32 for p in network.parameters())
    assert iteration.skipped_steps == 0 and np.isfinite(iteration.metrics["losses/policy"])


def test_ppo_first_minibatch_ratio_stays_at_one_in_bf16():
    """Acting and the update compute the same bf16 forward pass, so before any step the probability ratio
    of the collected actions is 1 up to rounding, far inside the clip (benchmarks/results/bf16.md measures it
    on Pong frames, and with fp32 acting)."""
    cfg = pg.make_config("ppo", precision="bf16", **PPO_TINY, **FAST)
    envs = make_vec_env(cfg.env_id, cfg.num_envs, training=True)
    torch.manual_seed(cfg.seed)
    network = build_network(cfg, envs.single_observation_space, envs.single_action_space, with_value=True)
    learner = PPO(cfg, envs, network)
    batch = learner.loop.collector.collect()
    envs.close()
    estimate = estimate_advantages(batch, network, cfg)
    data = batch_rows(batch, estimate.advantages, estimate.targets, cfg)
    mb = data.rows(torch.randperm(len(data))[: cfg.minibatch_size])
    _, terms = ppo_minibatch_loss(cfg, network, mb)
    assert terms["log_probs"].dtype == torch.float32 and terms["losses/policy"].dtype == torch.float32
    ratio = (terms["log_probs"] - mb.log_probs).exp()
    assert (ratio - 1).abs().max().item() < 1e-3, ratio


BAD = {
    "unknown value": (["--env-id", "image_envs:BrightPixelNature", "--precision", "fp16"], "fp32 | bf16"),
    "an MLP": (["--env-id", "CartPole-v1", "--precision", "bf16"], "convolutional encoder"),
    "your own network": (["--env-id", "image_envs:BrightPixelCHW", "--network", "image_envs:UserCNN",
                          "--precision", "bf16"], "network of your own"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_precision_it_cannot_apply_is_exit_2_in_one_line_and_writes_nothing(case, tmp_path, capsys):
    flags, words = BAD[case]
    run_dir = tmp_path / "run"
    code = main(["train", "a2c", "--total-steps", "64", "--run-dir", str(run_dir), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "precision" in err and words in err and len(err.splitlines()) == 1, err
    assert not run_dir.exists()


def test_a_module_passed_in_refuses_bf16():
    from image_envs import UserCNN

    space = gym.spaces.Box(0, 255, (1, 10, 10), np.uint8)
    cfg = pg.A2CConfig(env_id="image_envs:BrightPixelCHW", precision="bf16")
    with pytest.raises(UserInputError, match="precision='bf16'"):
        build_network(cfg, space, gym.spaces.Discrete(2), with_value=True,
                      module=UserCNN(space, gym.spaces.Discrete(2)))


def test_a3c_workers_and_recurrent_networks_build_bf16_encoders():
    """What an A3C worker builds from its config, and a recurrent network (its core reads fp32 features)."""
    space, frames = gym.spaces.Box(0, 255, (36, 36, 4), np.uint8), torch.zeros(3, 36, 36, 4, dtype=torch.uint8)
    worker = build_network(pg.A3CConfig(precision="bf16"), space, gym.spaces.Discrete(2), with_value=True)
    dist, value = worker(frames)
    assert worker.autocast_dtype == torch.bfloat16
    assert dist.log_prob(torch.zeros(3)).dtype == torch.float32 and value.dtype == torch.float32
    cfg = pg.PPOConfig(precision="bf16", recurrent="lstm", num_envs=4)
    recurrent = build_network(cfg, space, gym.spaces.Discrete(2), with_value=True)
    dist, value, state = recurrent.step(frames, recurrent.initial_state(3), torch.ones(3, dtype=torch.bool))
    assert recurrent.autocast_dtype == torch.bfloat16
    assert dist.log_prob(torch.zeros(3)).dtype == value.dtype == state.dtype == torch.float32


def test_bf16_on_a_cpu_without_it_warns_once(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: False)
    precision.warn_if_slow.cache_clear()
    try:
        with pytest.warns(UserWarning, match="no native bf16"):
            pg.make_config("a2c", precision="bf16", **TINY, **FAST)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pg.make_config("a2c", precision="bf16", **TINY, **FAST)  # once per process
    finally:
        precision.warn_if_slow.cache_clear()


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["fp32", "bf16"])
def test_ppo_learns_catch_from_pixels_in_either_precision(setting, tmp_path):
    """Catch from 36x36 pixels with the Nature CNN (a random policy scores about -0.6, a perfect one 1):
    PPO with benchmarks/bf16_effect.py's settings, 20k steps, seed 1, in fp32 and in bf16 (both reached
    1.0 there; benchmarks/results/bf16.md has 10 seeds)."""
    cfg = pg.make_config("ppo", env_id="image_envs:Catch", encoder="nature", precision=setting, seed=1,
                         shared_trunk=True, total_steps=20_480, num_envs=8, num_steps=32, num_minibatches=4,
                         update_epochs=4, learning_rate=1e-3, progress=False, tensorboard=False, eval_episodes=32)
    result = pg.train(cfg, run_dir=tmp_path / "run")
    assert result.evaluation.mean >= 0.8, result.evaluation


@pytest.mark.parametrize("algo", ["reinforce", "actor_critic", "a2c", "a3c", "ppo"])
def test_every_algorithm_trains_and_evaluates_an_image_network_in_bf16(algo, tmp_path):
    """The option is a field of every algorithm's config, and each one's network autocasts its encoder
    (A3C's workers included: the final checkpoint is the shared network they trained)."""
    episodic = {k: v for k, v in TINY.items() if k != "num_steps"}  # REINFORCE learns from whole episodes
    values = {"ppo": PPO_TINY, "a3c": dict(TINY, num_workers=2), "reinforce": episodic}.get(algo, TINY)
    cfg = pg.make_config(algo, precision="bf16", **values, **FAST)
    result = pg.train(cfg, run_dir=tmp_path / algo)
    assert result.global_step >= 128 and np.isfinite(result.evaluation.mean)
    loaded = pg.load(result.run_dir)
    assert loaded.network.autocast_dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in loaded.network.parameters())
