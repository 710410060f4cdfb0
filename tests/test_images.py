"""Learning from pixels: the image rule (core/images.py), the encoders (core/encoders.py), uint8 storage,
every algorithm on small synthetic image environments (tests/image_envs.py), checkpoints and exact
resume, and the bad inputs refused in one line."""

import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch

import policygrad as pg
from policygrad.algos.rollout import FixedHorizonCollector, collect_episodes
from policygrad.cli import main
from policygrad.core.encoders import ImpalaCNN, MLPEncoder, NatureCNN, resolve_encoder
from policygrad.core.envs import env_spaces, make_vec_env
from policygrad.core.errors import UserInputError
from policygrad.core.images import image_layout, is_image_space, storage_dtype
from policygrad.core.networks import ActorCritic, check_observation_space
from policygrad.fast.fused_acting import acting_forward
from policygrad.fast.fused_loss import fused_loss_supported
from policygrad.fast.numpy_acting import numpy_actor_class
from policygrad.run.checkpoint import periodic_checkpoints

FAST = dict(progress=False, tensorboard=False, device="cpu", eval_episodes=4)


def box(shape, dtype=np.uint8, low=0, high=255):
    return gym.spaces.Box(low, high, shape, dtype)


# -- the rule -----------------------------------------------------------------------------------------

def test_the_image_rule_rank_3_uint8_or_floats_in_unit_interval():
    assert is_image_space(box((4, 84, 84)))
    assert is_image_space(box((84, 84, 3)))
    assert is_image_space(box((10, 10, 1), np.float32, 0.0, 1.0))
    assert not is_image_space(box((84, 84)))  # rank 2
    assert not is_image_space(box((10, 10, 1), np.float32, 0.0, 255.0))  # floats beyond [0, 1]
    assert not is_image_space(box((10, 10, 1), np.float32, -np.inf, np.inf))
    assert not is_image_space(gym.spaces.Discrete(3))
    assert resolve_encoder(box((84, 84, 3)), "auto") == "nature"
    assert resolve_encoder(box((4,), np.float32, -1.0, 1.0), "auto") == "mlp"
    assert resolve_encoder(box((3, 10, 10), np.float32, -5.0, 5.0), "auto") == "mlp"  # as before: flattened


def test_layout_by_the_smallest_outer_axis_and_the_field_overrides_it():
    assert image_layout(box((4, 84, 84))).channels_first
    assert not image_layout(box((84, 84, 3))).channels_first
    assert image_layout(box((1, 10, 10))).channels_first
    assert not image_layout(box((10, 10, 1))).channels_first
    hwc = image_layout(box((84, 84, 4)))
    assert (hwc.channels, hwc.height, hwc.width, hwc.divisor) == (4, 84, 84, 255.0)
    assert image_layout(box((3, 10, 3)), "chw").channels == 3
    forced = image_layout(box((4, 84, 84)), "hwc")  # the field wins over the rule
    assert not forced.channels_first and forced.channels == 84
    assert image_layout(box((1, 10, 10), np.float32, 0.0, 1.0)).divisor == 1.0


@pytest.mark.parametrize("shape", [(10, 10, 10), (3, 10, 3), (5, 3, 7)])
def test_an_ambiguous_layout_is_one_line_naming_the_field(shape):
    with pytest.raises(UserInputError, match="image_layout") as info:
        image_layout(box(shape))
    assert "\n" not in str(info.value)


def test_storage_dtype_uint8_for_uint8_images_float32_otherwise():
    assert storage_dtype(box((84, 84, 4))) == torch.uint8
    assert storage_dtype(box((84, 84, 1), np.float32, 0.0, 1.0)) == torch.float32
    assert storage_dtype(box((4,), np.uint8)) == torch.float32  # not an image: the MLP's float32 as before
    assert storage_dtype(gym.spaces.Box(-1.0, 1.0, (4,), np.float64)) == torch.float32


# -- encoders -----------------------------------------------------------------------------------------

def test_encoders_give_out_features_and_scale_uint8_inside():
    torch.manual_seed(0)
    nature = NatureCNN(image_layout(box((84, 84, 4))))
    obs = torch.randint(0, 256, (5, 84, 84, 4), dtype=torch.uint8)
    features = nature(obs)
    assert features.shape == (5, nature.out_features) == (5, 512)
    # the space decides the scaling, not the tensor's dtype: a float32 copy of the pixels gives the same
    assert torch.equal(nature(obs.float()), features)
    impala = ImpalaCNN(image_layout(box((3, 10, 10))))
    assert impala(torch.randint(0, 256, (2, 3, 10, 10), dtype=torch.uint8)).shape == (2, 256)
    assert impala.out_features == 256


def test_the_mlp_encoder_is_an_encoder_too():
    torch.manual_seed(0)
    net = ActorCritic(box((3, 4), np.float32, -1.0, 1.0), gym.spaces.Discrete(2), hidden_sizes=(8, 5))
    encoder = net.policy_body
    assert isinstance(encoder, MLPEncoder) and encoder.out_features == 5
    obs = torch.randn(6, 3, 4)
    assert torch.equal(encoder(obs), net.encode(encoder, net.preprocess(obs)))
    assert list(net.state_dict())[:2] == ["policy_body.0.weight", "policy_body.0.bias"]  # checkpoints' names


def test_chw_and_hwc_give_the_same_features_for_the_same_image():
    torch.manual_seed(0)
    chw = NatureCNN(image_layout(box((4, 36, 36))))
    hwc = NatureCNN(image_layout(box((36, 36, 4))))
    hwc.load_state_dict(chw.state_dict())
    image = torch.randint(0, 256, (3, 4, 36, 36), dtype=torch.uint8)
    torch.testing.assert_close(chw(image), hwc(image.permute(0, 2, 3, 1).contiguous()), rtol=1e-5, atol=1e-6)


def test_nature_cnn_refuses_images_smaller_than_36_pixels_in_one_line():
    with pytest.raises(UserInputError, match="encoder='nature'.*36x36.*impala") as info:
        ActorCritic(box((1, 10, 10)), gym.spaces.Discrete(2))
    assert "\n" not in str(info.value)
    NatureCNN(image_layout(box((36, 36, 1))))  # the smallest it takes


def test_image_network_takes_the_plain_path_and_mlp_keeps_the_fast_ones():
    image = ActorCritic(box((36, 36, 4)), gym.spaces.Box(-1.0, 1.0, (2,), np.float32), shared_trunk=True)
    assert image.encoder_kind == "nature" and image.value_body is None
    assert acting_forward(image) == image.dist_and_value  # the plain path
    assert numpy_actor_class(image, 8) is None
    assert not fused_loss_supported(image, clip_vloss=False)
    vector = ActorCritic(box((4,), np.float32, -1.0, 1.0), gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    assert vector.encoder_kind == "mlp" and fused_loss_supported(vector, clip_vloss=False)
    assert numpy_actor_class(vector, 8) is not None
    separate = ActorCritic(box((36, 36, 4)), gym.spaces.Discrete(3))
    assert isinstance(separate.value_body, NatureCNN) and separate.value_body is not separate.policy_body
    dist, value = separate(torch.zeros((2, 36, 36, 4), dtype=torch.uint8))
    assert dist.sample().shape == (2,) and value.shape == (2,)


def test_normalize_obs_is_refused_for_images():
    with pytest.raises(UserInputError, match="normalize_obs=True does not apply to images"):
        ActorCritic(box((36, 36, 4)), gym.spaces.Discrete(2), normalize_obs=True)
    cfg = pg.make_config("ppo", env_id="image_envs:BrightPixelNature").replace(normalize_obs=True)
    with pytest.raises(UserInputError, match="normalize_obs"):
        check_observation_space(cfg, env_spaces(cfg.env_id)[0])


# -- storage ------------------------------------------------------------------------------------------

def test_rollouts_store_uint8_images_as_uint8():
    envs = make_vec_env("image_envs:BrightPixelHWC", 2)
    assert envs.obs_dtype == torch.uint8
    net = ActorCritic(envs.single_observation_space, envs.single_action_space, encoder="impala")
    batch = FixedHorizonCollector(envs, net, num_steps=4, seed=1).collect()
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (4, 2, 10, 10, 3)
    assert batch.next_obs.dtype == torch.uint8
    assert int(batch.obs.max()) == 255  # raw pixels, not scaled
    episodes_batch, episodes, _ = collect_episodes(envs, net, 2)
    assert episodes_batch is not None and episodes_batch.obs.dtype == torch.uint8 and len(episodes) == 2
    floats = make_vec_env("image_envs:BrightPixelFloatHWC", 2)
    assert floats.obs_dtype == torch.float32


# -- every algorithm ----------------------------------------------------------------------------------

ALGOS = {
    "reinforce": dict(total_steps=160, num_envs=2),
    "actor_critic": dict(total_steps=64, num_envs=2),
    "a2c": dict(total_steps=128, num_envs=2, num_steps=8),
    "ppo": dict(total_steps=128, num_envs=2, num_steps=16, num_minibatches=2, update_epochs=2),
    "a3c": dict(total_steps=64, num_envs=1, num_steps=8, num_workers=2),
}
ENVS = {  # env, encoder: CHW and HWC, uint8 and float, both CNNs
    "reinforce": ("image_envs:BrightPixelCHW", "impala"),
    "actor_critic": ("image_envs:BrightPixelFloatHWC", "impala"),
    "a2c": ("image_envs:BrightPixelNature", "auto"),
    "ppo": ("image_envs:BrightPixelHWC", "impala"),
    "a3c": ("image_envs:BrightPixelNatureCHW", "nature"),  # float32, CHW
}


@pytest.mark.parametrize("algo", list(ALGOS))
def test_every_algorithm_trains_evaluates_and_loads_on_images(algo, tmp_path):
    env_id, encoder = ENVS[algo]
    cfg = pg.make_config(algo, env_id=env_id, encoder=encoder, **ALGOS[algo], **FAST)
    result = pg.train(cfg, run_dir=tmp_path / "run")
    network = result.agent.network
    assert isinstance(network, ActorCritic) and network.encoder_kind == resolve_encoder(
        env_spaces(env_id)[0], encoder)
    assert len(result.evaluation.returns) == 4
    agent = pg.load(result.run_dir, trust_env=True)
    assert type(agent.network.policy_body) is type(network.policy_body)
    for key, value in network.state_dict().items():
        assert torch.equal(agent.network.state_dict()[key], value), key
    evaluation = pg.evaluate(agent, episodes=2)
    assert len(evaluation.returns) == 2 and all(0 <= r <= 8 for r in evaluation.returns)


def test_ppo_on_images_resumes_exactly(tmp_path):
    cfg = pg.make_config("ppo", env_id="image_envs:BrightPixelCHW", encoder="impala", total_steps=256, num_envs=2,
                         num_steps=32, num_minibatches=2, update_epochs=2, checkpoint_every=128, keep_checkpoints=5,
                         **FAST)
    straight = pg.train(cfg, run_dir=tmp_path / "straight")
    resumed = tmp_path / "resumed"
    shutil.copytree(straight.run_dir, resumed)
    first = periodic_checkpoints(resumed)[0]
    assert main(["resume", str(resumed), "--checkpoint", first.name, "--trust-env"]) == 0
    expected = straight.agent.network.state_dict()
    loaded = pg.load(resumed, trust_env=True).network.state_dict()
    for key in expected:
        assert torch.equal(expected[key], loaded[key]), key


def test_eval_with_video_and_plot_on_an_image_run(tmp_path):
    pytest.importorskip("moviepy")
    cfg = pg.make_config("a2c", env_id="image_envs:BrightPixelCHW", encoder="impala", total_steps=64, num_envs=2,
                         num_steps=8, **FAST)
    run_dir = pg.train(cfg, run_dir=tmp_path / "run").run_dir
    videos = tmp_path / "videos"
    assert main(["eval", str(run_dir), "--episodes", "2", "--video", str(videos), "--video-episodes", "1",
                 "--trust-env"]) == 0
    assert list(videos.glob("*.mp4"))
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").stat().st_size > 0


# -- bad input ----------------------------------------------------------------------------------------

BAD = {
    "wrong rank": (["--encoder", "nature"], "image_envs:GreyFrame", "rank 2"),
    "float outside [0, 1]": (["--encoder", "impala"], "image_envs:WideFloatImage", "bounds"),
    "ambiguous layout": ([], "image_envs:AmbiguousImage", "image_layout"),
    "too small for nature": ([], "image_envs:BrightPixelCHW", "36x36"),
    "normalize_obs": (["--encoder", "impala", "--normalize-obs", "true"], "image_envs:BrightPixelCHW", "normalize_obs"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_image_input_is_exit_2_in_one_line_and_writes_nothing(case, tmp_path, capsys):
    flags, env_id, words = BAD[case]
    run_dir = tmp_path / "run"
    code = main(["train", "ppo", "--env-id", env_id, "--total-steps", "64", "--run-dir", str(run_dir), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert words in err and len(err.splitlines()) == 1, err
    assert not run_dir.exists()


# -- learning -----------------------------------------------------------------------------------------

def test_ppo_learns_the_bright_pixel_task_above_random(tmp_path):
    """Random scores 4 of 8; PPO on the 10x10x3 HWC uint8 image with the IMPALA CNN learns which half."""
    cfg = pg.make_config("ppo", env_id="image_envs:BrightPixelHWC", encoder="impala", shared_trunk=True,
                         total_steps=3_072, num_envs=8, num_steps=32, num_minibatches=4, update_epochs=4,
                         learning_rate=1e-3, seed=3, progress=False, tensorboard=False, eval_episodes=16)
    result = pg.train(cfg, run_dir=tmp_path / "run")
    assert result.evaluation.mean >= 6.5, result.evaluation


def test_a_users_own_cnn_trains_on_uint8_images(tmp_path):
    cfg = pg.make_config("ppo", env_id="image_envs:BrightPixelCHW", network="image_envs:UserCNN", total_steps=64,
                         num_envs=2, num_steps=16, num_minibatches=2, update_epochs=1, **FAST)
    result = pg.train(cfg, run_dir=tmp_path / "run")
    assert len(result.evaluation.returns) == 4
    assert pg.load(result.run_dir, trust_env=True).network is not None


def test_same_seed_same_parameters_on_images(tmp_path):
    cfg = pg.make_config("ppo", env_id="image_envs:BrightPixelHWC", encoder="impala", total_steps=64, num_envs=2,
                         num_steps=16, num_minibatches=2, update_epochs=2, **FAST)
    a, b = (pg.train(cfg, run_dir=tmp_path / name).agent.network.state_dict() for name in ("a", "b"))
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_diagnose_gradients_of_a_fresh_image_network_with_the_encoder_asked_for(tmp_path, capsys):
    from policygrad.diagnostics.critic import FittedCritic

    # 10x10 images: the default (Nature CNN) refuses them, --encoder impala takes them, and the fitted
    # critic is an IMPALA CNN too (an MLP on standardised pixels would be another model of V)
    flags = ["--env", "image_envs:BrightPixelCHW", "--batches", "4", "--batch-episodes", "2", "--estimators",
             "reward_to_go,gae", "--trust-env", "--out", str(tmp_path / "report")]
    assert main(["diagnose", "gradients", *flags]) == 2
    assert "encoder='impala'" in capsys.readouterr().err
    assert main(["diagnose", "gradients", *flags, "--encoder", "impala"]) == 0
    rows = (tmp_path / "report" / "gradients.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("reward_to_go") and rows[2].startswith("gae")
    critic = FittedCritic(*env_spaces("image_envs:BrightPixelCHW"), (64, 64), "impala")
    assert isinstance(critic.net.value_body, ImpalaCNN) and not critic.box  # pixels reach it unstandardised


def test_diagnose_refuses_an_encoder_for_a_run_in_one_line(tmp_path, capsys):
    assert main(["diagnose", "gradients", "--run", str(tmp_path), "--encoder", "impala"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fresh network only" in err[0]


def test_sb3_compares_with_its_cnn_policy_on_the_same_image_copies():
    pytest.importorskip("stable_baselines3", reason="the compare extra (pip install 'policygrad[compare]')")
    from stable_baselines3 import PPO as SB3PPO

    from policygrad.comparison.methods import quiet_sb3_logger, sb3_training_env

    env, policy = sb3_training_env("image_envs:BrightPixelNature", 2, seed=3)
    assert policy == "CnnPolicy" and env.num_envs == 2
    assert env.observation_space.shape == (36, 36, 4) and env.observation_space.dtype == np.uint8
    model = SB3PPO(policy, env, n_steps=16, batch_size=16, n_epochs=1, seed=3, device="cpu")
    quiet_sb3_logger(model)  # else SB3 leaves an empty SB3-<time> folder in the temporary directory
    model.learn(32)  # SB3 transposes the HWC frames itself (VecTransposeImage) and scales them by 255
    assert model.num_timesteps == 32 and type(model.policy.features_extractor).__name__ == "NatureCNN"
    vectors, mlp = sb3_training_env("CartPole-v1", 1, seed=3)
    assert mlp == "MlpPolicy" and vectors.observation_space.shape == (4,)
