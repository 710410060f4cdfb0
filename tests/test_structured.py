"""Dict and Tuple observations (core/structured.py): paths and flattening, the per-part encoder,
uint8 parts stored as uint8, every algorithm on a Dict of an image and a vector, user networks given the
dict, per-part normalization, exact resume with Dict observations and masks; and Box actions of rank 2
(every continuous head) acting in the environment's shape."""

import csv
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch

import policygrad as pg
from policygrad.algos.rollout import FixedHorizonCollector
from policygrad.cli import main
from policygrad.core.encoders import ImpalaCNN, MLPEncoder, NatureCNN
from policygrad.core.envs import make_vec_env
from policygrad.core.errors import UserInputError
from policygrad.core.networks import ActorCritic
from policygrad.core.structured import (
    StructuredEncoder,
    feature_parts,
    flatten_obs,
    space_parts,
    unflatten_obs,
)
from policygrad.run.checkpoint import periodic_checkpoints

FAST = dict(progress=False, tensorboard=False, device="cpu", eval_episodes=2)
NESTED = gym.spaces.Dict({
    "position": gym.spaces.Discrete(5),
    "inner": gym.spaces.Tuple((gym.spaces.Box(-1.0, 1.0, (3,), np.float32), gym.spaces.MultiDiscrete([2, 3]))),
    "action_mask": gym.spaces.Box(0, 1, (2,), np.int8),
})


def test_parts_are_flattened_by_path_and_back():
    # (Gymnasium's Dict sorts the keys of a dict it is given)
    assert list(space_parts(NESTED)) == ["action_mask", "inner/0", "inner/1", "position"]
    assert list(feature_parts(NESTED)) == ["inner/0", "inner/1", "position"]  # the mask is no feature
    obs = NESTED.sample()
    flat = flatten_obs(obs, NESTED)
    assert flat["inner/1"] is obs["inner"][1]
    back = unflatten_obs(flat, NESTED)
    assert back["position"] == obs["position"] and back["inner"][0] is obs["inner"][0]


def test_the_structured_encoder_has_one_encoder_per_part_and_concatenates():
    space = gym.spaces.Dict({"big": gym.spaces.Box(0, 255, (40, 40, 3), np.uint8),
                             "small": gym.spaces.Box(0, 255, (1, 8, 8), np.uint8),
                             "x": gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32), "k": gym.spaces.Discrete(3)})
    encoder = StructuredEncoder(space, (16,), "tanh")
    kinds = [type(part) for part in encoder]
    assert kinds == [NatureCNN, MLPEncoder, ImpalaCNN, MLPEncoder]  # auto: Nature from 36x36, IMPALA below
    assert encoder.out_features == 512 + 16 + 256 + 16
    obs = {key: torch.as_tensor(np.stack([sub.sample() for _ in range(3)])) for key, sub in space.items()}
    assert encoder(obs).shape == (3, encoder.out_features)
    with pytest.raises(UserInputError, match="observation part 'small'.*36x36"):
        StructuredEncoder(space, (16,), "tanh", encoder="nature")


def test_image_parts_stay_uint8_in_the_rollout():
    envs = make_vec_env("masked_envs:ImageVectorEnv", 2)
    net = ActorCritic(envs.single_observation_space, envs.single_action_space, hidden_sizes=(16,))
    batch = FixedHorizonCollector(envs, net, 4, seed=0).collect()
    assert batch.obs["image"].dtype == torch.uint8 and batch.obs["image"].shape == (4, 2, 8, 8, 1)
    assert batch.obs["vector"].dtype == torch.float32


@pytest.mark.parametrize("algo, env, extra", [
    ("ppo", "ImageVectorEnv", dict(normalize_obs=True, num_envs=2, num_steps=16, num_minibatches=2, update_epochs=1)),
    ("a2c", "ImageVectorTupleEnv", dict(num_envs=2, encoder="mlp")),  # mlp: the image flattened into an MLP
    ("reinforce", "NestedEnv", dict(episodes_per_update=2)),
    ("actor_critic", "NestedEnv", dict(num_envs=2)),
])
def test_every_algorithm_trains_evaluates_and_reloads_on_structured_observations(tmp_path, algo, env, extra):
    config = pg.make_config(algo, env_id=f"masked_envs:{env}", total_steps=64, hidden_sizes=(16,), **extra, **FAST)
    result = pg.train(config, run_dir=tmp_path / "run", check_env=False)
    assert len(result.evaluation.returns) == 2
    agent = pg.load(result.run_dir, trust_env=True)
    space = agent.network.observation_space
    one = space.sample()
    assert agent.act(one).shape == ()
    assert agent.act(unflatten_obs({k: np.stack([v, v]) for k, v in flatten_obs(one, space).items()},
                                   space)).shape == (2,)
    if extra.get("normalize_obs"):  # per part: the vector has statistics, the image none
        keys = [k for k in agent.network.state_dict() if "obs_normalizer" in k]
        assert keys and all(".normalizers.0." in k for k in keys)
        assert agent.network.obs_normalizer.paths == ["vector"]


def test_a_user_network_gets_the_dict_without_the_mask_and_its_logits_are_masked(tmp_path):
    config = pg.make_config("ppo", env_id="masked_envs:TrapObsEnv", network="masked_envs:DictPolicy",
                            total_steps=128, num_envs=2, num_steps=16, num_minibatches=2, update_epochs=1, **FAST)
    result = pg.train(config, run_dir=tmp_path / "run", check_env=False)
    with open(result.run_dir / "episodes.csv", newline="") as f:
        assert min(float(row["return"]) for row in csv.DictReader(f)) == 10  # never a disallowed action
    assert result.evaluation.returns == [10.0, 10.0]


def test_bad_structured_input_is_refused():
    with pytest.raises(UserInputError, match="observation part 'name' is Text"):
        StructuredEncoder(gym.spaces.Dict({"name": gym.spaces.Text(4), "x": gym.spaces.Box(-1, 1, (2,))}), (8,), "tanh")
    with pytest.raises(UserInputError, match="no part to encode"):
        feature_parts(gym.spaces.Dict({"action_mask": gym.spaces.Box(0, 1, (2,), np.int8)}))


# -- exact resume --------------------------------------------------------------------------------------

@pytest.mark.parametrize("algo, env, extra", [
    ("ppo", "TrapObsEnv", dict(normalize_obs=True, num_envs=2, num_steps=16, num_minibatches=2, update_epochs=2)),
    ("a2c", "TrapMultiEnv", dict(num_envs=2, num_steps=8)),
])
def test_dict_observations_and_masks_resume_exactly(tmp_path, algo, env, extra):
    config = pg.make_config(algo, env_id=f"masked_envs:{env}", total_steps=256, checkpoint_every=96,
                            keep_checkpoints=5, eval_every=100, **extra, **FAST)
    straight = pg.train(config, run_dir=tmp_path / "straight", check_env=False)
    resumed = tmp_path / "resumed"
    shutil.copytree(straight.run_dir, resumed)
    first = periodic_checkpoints(resumed)[0]
    assert main(["resume", str(resumed), "--checkpoint", first.name, "--trust-env", "--no-check-env"]) == 0
    expected = straight.agent.network.state_dict()
    loaded = pg.load(resumed, trust_env=True).network.state_dict()
    assert list(expected) == list(loaded)
    for key in expected:
        assert torch.equal(expected[key], loaded[key]), key
    for name in ("episodes.csv", "evals.csv"):
        with open(straight.run_dir / name) as a, open(resumed / name) as b:
            drop = lambda rows: [{k: v for k, v in r.items() if k not in ("wall_time", "wall_seconds")} for r in rows]  # noqa: E731
            assert drop(csv.DictReader(a)) == drop(csv.DictReader(b))


# -- Box actions of any shape ----------------------------------------------------------------------------

@pytest.mark.parametrize("distribution", ["gaussian", "gaussian_state_std", "tanh", "beta", "gsde"])
def test_a_2x2_box_action_runs_end_to_end_with_every_continuous_head(tmp_path, distribution):
    config = pg.make_config("ppo", env_id="masked_envs:MatrixActionEnv", distribution=distribution, total_steps=64,
                            num_envs=2, num_steps=16, num_minibatches=2, update_epochs=1, hidden_sizes=(16,), **FAST)
    result = pg.train(config, run_dir=tmp_path / "run", check_env=False)  # the env raises unless given (2, 2)
    assert len(result.evaluation.returns) == 2
    agent = pg.load(result.run_dir, trust_env=True)
    assert agent.act(np.zeros(4, np.float32)).shape == (2, 2)
    assert agent.act(np.zeros((3, 4), np.float32), deterministic=False).shape == (3, 2, 2)


# -- learning (slow) -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_ppo_learns_the_image_and_vector_task(tmp_path):
    """Random scores 2.5 of 10; the right action needs the image's pixel side and the vector's sign."""
    config = pg.make_config("ppo", env_id="masked_envs:ImageVectorEnv", total_steps=8192, num_envs=8, num_steps=32,
                            learning_rate=1e-3, progress=False, tensorboard=False, eval_episodes=20)
    result = pg.train(config, run_dir=tmp_path / "run", check_env=False)
    print("image and vector:", result.evaluation)  # the measured number (pytest -s shows it)
    assert result.evaluation.mean >= 8.0, result.evaluation


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["gaussian", "gaussian_state_std", "tanh", "beta", "gsde"])
def test_every_continuous_head_learns_a_2x2_box_action(tmp_path, distribution):
    """Random actions in [-1, 1] score about -1.3 (4 x E(a - t)^2); copying the target scores 0."""
    config = pg.make_config("ppo", env_id="masked_envs:MatrixActionEnv", distribution=distribution,
                            total_steps=20_000, num_envs=8, num_steps=64, learning_rate=3e-3, log_std_init=-0.5,
                            progress=False, tensorboard=False, eval_episodes=20)
    result = pg.train(config, run_dir=tmp_path / "run", check_env=False)
    print(distribution, result.evaluation)  # the measured number (pytest -s shows it)
    assert result.evaluation.mean >= -0.15, result.evaluation


def test_check_env_takes_dict_and_tuple_observations():
    for env in ("ImageVectorEnv", "ImageVectorTupleEnv", "TrapObsEnv"):
        assert main(["check-env", f"masked_envs:{env}", "--steps", "40"]) == 0
