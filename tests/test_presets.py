"""Every shipped preset builds a valid config; presets are data (safe_load), never code."""

import pytest

from policygrad.algos import ALGORITHMS
from policygrad.run.configure import make_config
from policygrad.run.presets import _load, available, preset_values


def all_presets():
    for algo in ALGORITHMS:
        for env_id in available(algo):
            yield algo, env_id


@pytest.mark.parametrize("algo,env_id", list(all_presets()))
def test_preset_builds_a_valid_config(algo, env_id):
    # MuJoCo presets need the mujoco extra, which the dev extra (make test, CI) installs: never skipped
    cfg = make_config(algo, env_id=env_id)
    assert cfg.preset == env_id
    for key, value in _load(algo)[env_id].items():
        got = getattr(cfg, key)
        assert (list(got) if isinstance(got, tuple) else got) == value, key


def test_every_issue_environment_has_presets():
    for algo in ("ppo", "a2c", "a3c", "actor_critic"):
        for env_id in ("CartPole-v1", "Acrobot-v1", "LunarLander-v3"):
            assert env_id in available(algo), (algo, env_id)
    for env_id in ("Pendulum-v1", "MountainCarContinuous-v0", "LunarLanderContinuous-v3", "HalfCheetah-v5",
                   "Hopper-v5"):
        assert env_id in available("ppo"), env_id
    for algo in ("ppo", "a2c"):  # issue 16's continuous-control list
        for env_id in ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5", "LunarLanderContinuous-v3",
                       "Pendulum-v1"):
            assert env_id in available(algo), (algo, env_id)


def test_a_preset_may_share_values_through_a_yaml_merge_key():
    # a2c.yaml's Walker2d and Swimmer entries are Hopper's values (<<: *a2c-mujoco), Swimmer with its own gamma
    hopper, swimmer = (make_config("a2c", env_id=env_id) for env_id in ("Hopper-v5", "Swimmer-v5"))
    assert "<<" not in _load("a2c")["Walker2d-v5"]
    assert (swimmer.num_steps, swimmer.optimizer, swimmer.reward_norm) == (hopper.num_steps, "rmsprop", "scale")
    assert (hopper.gamma, swimmer.gamma) == (0.99, 0.9999)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="preset='Nope' does not exist for ppo"):
        preset_values("ppo", "CartPole-v1", "Nope")
