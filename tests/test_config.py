"""Config validation: a bad value is a ValueError at construction that names the field, the value
and what is allowed; unknown names suggest close matches; configs are frozen and round-trip.
Configs are plain data: what needs the environment or the device is checked by make_config and
train(), before any training step."""

import dataclasses
import json

import pytest

import policygrad as pg
from policygrad.core.errors import UserInputError


def error_of(**changes) -> str:
    with pytest.raises(UserInputError) as info:  # a ValueError: the command line exits 2 on it, not 1
        pg.ReinforceConfig(**changes)
    return str(info.value)


def test_negative_learning_rate_names_field_value_and_allowed_range():
    message = error_of(learning_rate=-1)
    assert "learning_rate" in message and "-1" in message and "> 0" in message


def test_zero_learning_rate_is_refused():
    assert "learning_rate=0" in error_of(learning_rate=0.0)


@pytest.mark.parametrize("gamma", [1.5, -0.1])
def test_gamma_outside_the_unit_interval_is_refused(gamma):
    message = error_of(gamma=gamma)
    assert f"gamma={gamma}" in message and "[0, 1]" in message


@pytest.mark.parametrize("gamma", [0.0, 1.0])
def test_gamma_at_the_bounds_is_accepted(gamma):
    assert pg.ReinforceConfig(gamma=gamma).gamma == gamma


def test_zero_episodes_per_update_is_refused():
    message = error_of(episodes_per_update=0)
    assert "episodes_per_update=0" in message and "> 0" in message


def test_more_envs_than_episodes_per_update_is_refused():
    message = error_of(num_envs=9, episodes_per_update=8)
    assert "num_envs=9" in message and "episodes_per_update=8" in message
    assert "--num-envs" in message and "--episodes-per-update" in message
    assert pg.ReinforceConfig(num_envs=8, episodes_per_update=8).num_envs == 8


@pytest.mark.parametrize("episodes,num_envs", [(1, 1), (2, 2), (8, 8), (16, 8)])
def test_num_envs_follows_episodes_per_update_by_one_rule_however_the_config_is_built(episodes, num_envs):
    """num_envs left unset is episodes_per_update copies, at most 8: in a config built directly, by
    make_config (with or without the env's preset) and by replace(); it is a field from then on."""
    built = [pg.ReinforceConfig(episodes_per_update=episodes),
             pg.make_config("reinforce", preset="none", episodes_per_update=episodes),
             pg.make_config("reinforce", preset="auto", episodes_per_update=episodes),
             pg.ReinforceConfig().replace(num_envs=0, episodes_per_update=episodes)]
    assert [config.num_envs for config in built] == [num_envs] * 4
    assert all(config.to_dict()["num_envs"] == num_envs for config in built)
    # a number the caller sets is kept, and checked by the same rule
    assert pg.ReinforceConfig(episodes_per_update=episodes, num_envs=1).num_envs == 1
    with pytest.raises(UserInputError, match=f"num_envs={episodes + 1} is invalid"):
        pg.ReinforceConfig(episodes_per_update=episodes, num_envs=episodes + 1)


def test_empty_hidden_sizes_is_refused():
    message = error_of(hidden_sizes=())
    assert "hidden_sizes=()" in message and "positive integers" in message


def test_non_positive_hidden_size_is_refused():
    assert "hidden_sizes=(64, 0)" in error_of(hidden_sizes=(64, 0))


@pytest.mark.parametrize("changes,needle", [
    ({"learning_rate": "3e-4"}, "learning_rate='3e-4'"),  # what yaml.safe_load makes of 3e-4
    ({"learning_rate": True}, "learning_rate=True"),
    ({"hidden_sizes": 64}, "hidden_sizes=64"),
    ({"hidden_sizes": (64, True)}, "hidden_sizes=(64, True)"),
])
def test_values_of_the_wrong_type_are_a_user_input_error_and_a_type_error(changes, needle):
    """One line on the command line (a UserInputError, exit 2), a TypeError for Python callers (issue 33)."""
    assert needle in error_of(**changes)
    with pytest.raises(TypeError):
        pg.ReinforceConfig(**changes)


def test_unknown_activation_lists_the_known_ones():
    message = error_of(activation="swish")
    assert "activation='swish'" in message
    for name in ("tanh", "relu", "elu", "gelu", "silu", "leaky_relu"):
        assert name in message


@pytest.mark.parametrize("changes,needles", [
    ({"init": "lecun"}, ["init='lecun'", "orthogonal", "torch-default"]),
    ({"return_type": "future"}, ["return_type='future'", "total", "reward_to_go"]),
    ({"baseline": "median"}, ["baseline='median'", "none", "mean", "value"]),
    ({"reward_norm": "max"}, ["reward_norm='max'", "popart"]),
    ({"device": "tpu"}, ["device='tpu'", "auto"]),
    ({"seed": -1}, ["seed=-1", ">= 0"]),
    ({"total_steps": 0}, ["total_steps=0", "> 0"]),
    ({"num_envs": 2.5}, ["num_envs=2.5", "integer"]),
    ({"ent_coef": -0.01}, ["ent_coef=-0.01", ">= 0"]),
    ({"max_grad_norm": -1.0}, ["max_grad_norm=-1.0", ">= 0"]),
])
def test_other_bad_values_name_field_value_and_allowed(changes, needles):
    message = error_of(**changes)
    for needle in needles:
        assert needle in message, (needle, message)


def env_error_of(**changes) -> str:
    """The error make_config raises (the environment is checked there, not at construction)."""
    with pytest.raises(ValueError) as info:
        pg.make_config("reinforce", **changes)
    return str(info.value)


def test_misspelt_env_id_suggests_the_registered_one():
    message = env_error_of(env_id="CartPol-v1")
    assert "CartPol-v1" in message and "CartPole-v1" in message


def test_module_attr_env_id_with_missing_attribute_is_refused():
    message = env_error_of(env_id="probe_envs:NoSuchEnv")
    assert "probe_envs" in message and "NoSuchEnv" in message


def test_module_attr_env_id_with_missing_module_is_refused():
    message = env_error_of(env_id="no_such_module_xyz:Env")
    assert "no_such_module_xyz" in message and "cannot import" in message


def test_module_attr_env_id_that_exists_is_accepted():
    assert pg.make_config("reinforce", env_id="probe_envs:CountingEnv").env_id == "probe_envs:CountingEnv"


def test_building_a_config_never_makes_its_environment(monkeypatch):
    import policygrad.core.envs as envs

    def fail(*args, **kwargs):
        raise AssertionError("a config constructor touched the environment")

    monkeypatch.setattr(envs, "make_env_fn", fail)
    envs._env_spaces.cache_clear()
    cfg = pg.PPOConfig(env_id="NoSuchEnv-v9", device="cuda" if not __import__("torch").cuda.is_available() else "cpu")
    assert cfg.env_id == "NoSuchEnv-v9"  # plain data: neither the env nor the device was looked at


def test_train_checks_the_environment_of_a_config_built_by_hand(tmp_path):
    with pytest.raises(ValueError, match="CartPole-v1"):
        pg.train(pg.PPOConfig(env_id="CartPol-v1", total_steps=64), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before the run directory was made


def test_a_discrete_env_with_a_log_std_is_refused_by_make_config_and_train(tmp_path):
    assert pg.A2CConfig(log_std_init=-1.0).log_std_init == -1.0
    with pytest.raises(ValueError, match="log_std_init"):
        pg.make_config("a2c", env_id="CartPole-v1", log_std_init=-1.0)
    with pytest.raises(ValueError, match="log_std_init"):
        pg.train(pg.A2CConfig(env_id="CartPole-v1", log_std_init=-1.0), run_dir=tmp_path / "run")


def test_unknown_field_in_make_config_suggests_the_real_one():
    with pytest.raises(ValueError) as info:
        pg.make_config("reinforce", learnin_rate=0.1)
    message = str(info.value)
    assert "'learnin_rate'" in message and "learning_rate" in message


def test_unknown_field_as_keyword_is_a_type_error_from_the_dataclass():
    with pytest.raises(TypeError):
        pg.ReinforceConfig(learnin_rate=0.1)


def test_misspelt_algorithm_suggests_the_real_one():
    with pytest.raises(ValueError) as info:
        pg.make_config("reinforc")
    message = str(info.value)
    assert "'reinforc'" in message and "Did you mean reinforce" in message


def test_make_config_validates_values_too():
    with pytest.raises(ValueError, match="gamma=2"):
        pg.make_config("reinforce", gamma=2)


def test_make_config_turns_json_lists_into_tuples():
    cfg = pg.make_config("reinforce", preset="none", hidden_sizes=[32, 16])
    assert cfg.hidden_sizes == (32, 16)
    assert cfg == pg.ReinforceConfig(hidden_sizes=(32, 16))


@pytest.mark.parametrize("algo", sorted(pg.ALGORITHMS))
def test_to_dict_round_trips_through_json_and_make_config(algo):
    cfg = pg.make_config(algo, hidden_sizes=(32, 16), seed=4, gamma=0.5, learning_rate=0.01)
    values = json.loads(json.dumps(cfg.to_dict()))
    assert values["algo"] == algo and values["hidden_sizes"] == [32, 16]
    assert pg.make_config(values.pop("algo"), **values) == cfg


def test_reinforce_config_round_trip_keeps_every_field():
    cfg = pg.ReinforceConfig(return_type="total", baseline="mean", episodes_per_update=4, num_envs=2,
                             normalize_returns=False, ent_coef=0.01, activation="relu")
    values = cfg.to_dict()
    again = pg.make_config(values.pop("algo"), **values)
    assert again == cfg and type(again) is pg.ReinforceConfig
    assert {f.name for f in dataclasses.fields(cfg)} == set(cfg.to_dict())


def test_configs_are_frozen():
    cfg = pg.ReinforceConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.learning_rate = 0.1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 5


def test_replace_validates_and_checks_names():
    cfg = pg.ReinforceConfig()
    assert cfg.replace(gamma=0.5).gamma == 0.5 and cfg.gamma == 0.99
    with pytest.raises(ValueError, match="gamma=2"):
        cfg.replace(gamma=2.0)
    with pytest.raises(ValueError, match="learning_rate"):
        cfg.replace(learnin_rate=0.1)


def test_bool_seed_and_infinite_coefficients_are_refused():
    with pytest.raises(ValueError, match="seed=True"):
        pg.ReinforceConfig(seed=True)
    with pytest.raises(ValueError, match="ent_coef=inf"):
        pg.ReinforceConfig(ent_coef=float("inf"))


@pytest.mark.parametrize("config_cls", [pg.PPOConfig, pg.A2CConfig, pg.ActorCriticConfig])
def test_standardize_together_with_norm_adv_is_refused_as_redundant(config_cls):
    with pytest.raises(ValueError, match="reward_norm='standardize'.*norm_adv"):
        config_cls(reward_norm="standardize", norm_adv=True)
    assert config_cls(reward_norm="standardize", norm_adv=False).reward_norm == "standardize"


@pytest.mark.parametrize("baseline", ["none", "mean"])
def test_reinforce_popart_without_a_value_baseline_is_refused(baseline):
    message = error_of(reward_norm="popart", baseline=baseline)
    assert "reward_norm='popart'" in message and "--baseline value" in message
    assert pg.ReinforceConfig(reward_norm="popart", baseline="value").reward_norm == "popart"


def test_a3c_config_is_part_of_the_public_api():
    assert "A3CConfig" in pg.__all__ and pg.A3CConfig().algo == "a3c"


@pytest.mark.parametrize("build", [
    lambda: pg.make_config("ppo", learnin_rate=0.1),  # an unknown field
    lambda: pg.make_config("ppo", env_id="NoSuchEnv-v0"),
    lambda: pg.make_config("not_an_algo"),
    lambda: pg.make_config("ppo", num_minibatches=3),  # not a divisor of the batch
    lambda: pg.make_config("ppo", device="no_such_device"),
])
def test_bad_input_is_a_user_input_error(build):
    """What the caller got wrong is a UserInputError (a ValueError subclass): the command line reports it
    as bad input (exit 2); any other exception is reported as a bug in policygrad."""
    with pytest.raises(UserInputError):
        build()
