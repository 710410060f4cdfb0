"""The Python API is as careful as the command line (issue 33): wrong types are TypeErrors naming the
field, the value and the type; one rule for presets; observations checked against the space; results
as data."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import policygrad as pg
from policygrad.core.errors import UserInputError

TINY = dict(total_steps=256, num_envs=2, num_steps=64, num_minibatches=2, update_epochs=1, progress=False,
            tensorboard=False, eval_episodes=1, hidden_sizes=(8,))


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("api") / "run"
    pg.train(pg.PPOConfig(env_id="CartPole-v1", **TINY), run_dir=run_dir)
    return run_dir


# -- 1. types at construction ---------------------------------------------------------------------------
@pytest.mark.parametrize("field,value,expected", [
    ("normalize_obs", "no", "bool"), ("progress", "no", "bool"), ("tensorboard", 1, "bool"),
    ("norm_adv", "False", "bool"), ("seed", True, "int"), ("total_steps", 1.5, "int"),
    ("num_envs", "8", "int"), ("learning_rate", "0.1", "float"), ("gamma", None, "float"),
    ("clip_coef", True, "float"), ("hidden_sizes", "64", "tuple of int"), ("env_id", 3, "str"),
    ("activation", None, "str"),
])
def test_wrong_type_is_a_type_error_naming_field_value_and_type(field, value, expected):
    with pytest.raises(TypeError, match=f"{field}={re.escape(repr(value))} is invalid: expected a value of type "
                                        f"{re.escape(expected)}.*, not {type(value).__name__}"):
        pg.PPOConfig(**{field: value})
    # and the command line's one-line refusal still catches it (exit 2): it is a UserInputError too
    with pytest.raises(UserInputError):
        pg.PPOConfig(**{field: value})


def test_wrong_element_type_names_the_element():
    with pytest.raises(TypeError, match=r"hidden_sizes=\(64, 1.0\) is invalid: expected a value of type tuple of "
                                        r"int, not one holding float 1.0"):
        pg.PPOConfig(hidden_sizes=(64, 1.0))


def test_wrong_type_in_a_subclass_field_checked_before_its_own_checks():
    with pytest.raises(TypeError, match="episodes_per_update='8'.*int"):
        pg.ReinforceConfig(episodes_per_update="8")


def test_an_int_for_a_float_field_and_numpy_scalars_are_fine():
    config = pg.PPOConfig(learning_rate=1, gamma=np.float32(0.5), seed=np.int64(3), hidden_sizes=[16, 16],
                          normalize_obs=np.bool_(True))
    assert config.learning_rate == 1 and type(config.seed) is int and type(config.gamma) is float
    assert config.hidden_sizes == (16, 16) and config.normalize_obs is True
    json.dumps(config.to_dict())


def test_bad_value_is_still_a_value_error_not_a_type_error():
    with pytest.raises(ValueError, match="gamma=1.5") as info:
        pg.PPOConfig(gamma=1.5)
    assert not isinstance(info.value, TypeError)


def test_unknown_keyword_is_a_type_error_from_the_class_and_from_make_config():
    with pytest.raises(TypeError, match="'lerning_rate' is not a field of PPOConfig. Did you mean learning_rate"):
        pg.PPOConfig(lerning_rate=1e-3)
    with pytest.raises(TypeError, match="'lerning_rate' is not a field of PPOConfig"):
        pg.make_config("ppo", lerning_rate=1e-3)


def test_train_refuses_a_string_with_a_type_error():
    with pytest.raises(TypeError, match="config='ppo' is invalid: expected a value of type a config"):
        pg.train("ppo")
    with pytest.raises(TypeError, match="overwrite='yes'.*bool"):
        pg.train(pg.PPOConfig(), overwrite="yes")


def test_act_evaluate_load_arguments_are_type_checked(cartpole_run):
    agent = pg.load(cartpole_run)
    with pytest.raises(TypeError, match="deterministic='no'.*bool"):
        agent.act(np.zeros(4), deterministic="no")
    with pytest.raises(TypeError, match="episodes=2.0.*int"):
        pg.evaluate(agent, episodes=2.0)
    with pytest.raises(TypeError, match="deterministic=0.*bool"):
        pg.evaluate(agent, episodes=1, deterministic=0)
    with pytest.raises(TypeError, match="device=0.*str"):
        pg.load(cartpole_run, device=0)
    with pytest.raises(TypeError, match="trust_env='no'.*bool"):
        pg.load(cartpole_run, trust_env="no")
    with pytest.raises(ValueError, match="device='gpu' is invalid"):
        pg.load(cartpole_run, device="gpu")


def test_load_device_auto_works(cartpole_run):
    agent = pg.load(cartpole_run, device="auto")
    assert agent.device.type in ("cpu", "cuda", "mps")
    assert agent.config.device == agent.device.type
    assert pg.load(cartpole_run, device=torch.device("cpu")).device == torch.device("cpu")


# -- 2. one rule for presets -------------------------------------------------------------------------------
def test_a_config_class_applies_no_preset_and_records_none():
    config = pg.PPOConfig(env_id="Pendulum-v1")
    assert config.preset == "none" and config.gamma == pg.PPOConfig().gamma
    with pytest.raises(ValueError, match="preset='auto': a config class applies no preset.*make_config"):
        pg.PPOConfig(env_id="Pendulum-v1", preset="auto")


def test_make_config_applies_the_preset_it_records_and_copies_keep_it():
    config = pg.make_config("ppo", env_id="Pendulum-v1")
    assert config.preset == "Pendulum-v1"
    from policygrad.run.presets import preset_values

    for name, value in preset_values("ppo", "Pendulum-v1")[1].items():
        got = getattr(config, name)
        assert (tuple(got) if isinstance(got, tuple) else got) == (tuple(value) if isinstance(value, list) else value)
    import dataclasses

    assert config.replace(seed=2).preset == "Pendulum-v1"
    assert dataclasses.replace(config, seed=2).preset == "Pendulum-v1"


def test_the_command_line_records_the_preset_it_applied(tmp_path):
    run_dir = tmp_path / "run"
    from policygrad.cli import main

    assert main(["train", "ppo", "--env-id", "Pendulum-v1", "--total-steps", "64", "--num-envs", "1", "--num-steps",
                 "64", "--num-minibatches", "1", "--update-epochs", "1", "--eval-episodes", "1", "--progress", "false",
                 "--tensorboard", "false", "--run-dir", str(run_dir)]) == 0
    record = json.loads((run_dir / "config.json").read_text())
    assert record["config"]["preset"] == "Pendulum-v1"
    for name, value in record["preset_values"].items():
        if name not in ("num_envs", "num_steps", "num_minibatches", "update_epochs", "total_steps"):
            assert record["config"][name] == value, name


# -- 3. observations checked against the space ----------------------------------------------------------
def test_act_checks_the_observation_shape(cartpole_run):
    agent = pg.load(cartpole_run)
    with pytest.raises(ValueError, match=r"shape \(3,\): expected one observation of shape \(4,\) or a batch "
                                         r"of shape \(B, 4\)"):
        agent.act(np.zeros(3))
    with pytest.raises(ValueError, match=r"shape \(\): expected one observation of shape \(4,\)"):
        agent.act(0.0)
    with pytest.raises(TypeError, match="expected numbers"):
        agent.act("obs")
    with pytest.raises(ValueError, match="not an array of numbers"):
        agent.act([[0.0, 1.0], [0.0]])


def test_act_returns_the_shapes_its_docstring_states(cartpole_run):
    agent = pg.load(cartpole_run)
    one = agent.act(np.zeros(4, dtype=np.float32))
    assert isinstance(one, np.ndarray) and one.shape == ()
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    env.step(one)  # a 0-d array is an action CartPole takes
    assert int(one) in (0, 1)
    assert agent.act(np.zeros((5, 4))).shape == (5,)
    assert agent.act(np.zeros(4, dtype=np.float64), deterministic=False).shape == ()


def test_act_on_a_box_action_space_returns_the_action_shape(tmp_path):
    config = pg.PPOConfig(env_id="Pendulum-v1", **TINY)
    agent = pg.train(config, run_dir=tmp_path / "run").agent
    assert agent.act(np.zeros(3)).shape == (1,)
    assert agent.act(np.zeros((2, 3))).shape == (2, 1)
    with pytest.raises(ValueError, match=r"expected one observation of shape \(3,\)"):
        agent.act(np.zeros(4))


def test_evaluate_accepts_a_run_directory_and_refuses_other_things(cartpole_run):
    result = pg.evaluate(str(cartpole_run), episodes=1)
    assert len(result.returns) == 1
    assert pg.evaluate(cartpole_run, episodes=1).returns == result.returns
    with pytest.raises(TypeError, match="agent=42.*policygrad.Agent or a run directory"):
        pg.evaluate(42)


def test_evaluate_on_another_environment_is_a_clear_error(cartpole_run):
    with pytest.raises(ValueError, match="env_id='Pendulum-v1' does not fit this agent"):
        pg.evaluate(pg.load(cartpole_run), episodes=1, env_id="Pendulum-v1")


class OtherNet(nn.Module):
    def __init__(self, with_value: bool = True) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        self.critic = nn.Linear(4, 1) if with_value else None

    def forward(self, obs):
        return (self.layer(obs), self.critic(obs)) if self.critic is not None else self.layer(obs)


def test_load_with_a_network_that_does_not_fit_blames_the_module_passed(cartpole_run):
    with pytest.raises(ValueError, match="network='test_python_api:OtherNet' \\(the module passed\\) does not fit "
                                         "the weights .* trained with the built-in network"):
        pg.load(cartpole_run, network=OtherNet())
    with pytest.raises(ValueError, match="network='test_python_api:OtherNet' returns no value"):
        pg.load(cartpole_run, network=OtherNet(with_value=False))
    with pytest.raises(TypeError, match="network=.*torch.nn.Module"):
        pg.load(cartpole_run, network="custom_networks:TwoHeaded")


# -- 7. messages for Python callers -----------------------------------------------------------------------
def test_an_existing_run_dir_names_the_python_keyword(cartpole_run):
    with pytest.raises(ValueError, match="overwrite=True"):
        pg.train(pg.PPOConfig(env_id="CartPole-v1", **TINY), run_dir=cartpole_run)


# -- 4. study results as data ------------------------------------------------------------------------------
def study_result():
    from types import SimpleNamespace

    from policygrad.studies.runner import StudyResult

    rows = [{"run_id": f"gamma={g}__seed={s}", "gamma": g, "seed": str(s), "status": "done", "final_eval": score,
             "auc": "", "steps_to_threshold": "", "wall_seconds": "1.500", "error": ""}
            for g, s, score in [("0.9", 1, "79.5"), ("0.9", 2, "500.0"), ("0.99", 1, "300.0"), ("0.99", 2, "310.0")]]
    rows.append({**rows[0], "run_id": "gamma=0.99__seed=3", "gamma": "0.99", "seed": "3", "status": "failed",
                 "final_eval": "", "error": "RuntimeError: boom"})
    return StudyResult(pathlib.Path("studies/x"), SimpleNamespace(vary={"gamma": [0.9, 0.99]}), rows)


def test_study_results_hold_numbers_as_numbers():
    study = study_result()
    assert max(r["final_eval"] for r in study.done) == 500.0
    first = study.results[0]
    assert first["gamma"] == 0.9 and first["seed"] == 1 and first["wall_seconds"] == 1.5
    assert first["auc"] is None and first["steps_to_threshold"] is None and first["error"] is None
    assert study.results[-1]["final_eval"] is None and study.failed[0]["error"] == "RuntimeError: boom"
    assert study.rows_text[0]["final_eval"] == "79.5"  # results.csv's text, as in the file


def test_study_best_run_and_best_value():
    study = study_result()
    assert study.best()["value"] == 500.0 and study.best()["row"]["seed"] == 2
    assert study.best(by="gamma") == {"value": 0.99, "mean": 305.0, "runs": 2}
    assert study.best("wall_seconds")["value"] == 1.5
    with pytest.raises(ValueError, match="metric='return' is invalid"):
        study.best("return")
    with pytest.raises(ValueError, match="by='lr' is invalid: expected a varied field of this study \\(gamma\\)"):
        study.best(by="lr")


def test_study_to_dataframe_needs_pandas(monkeypatch):
    study = study_result()
    monkeypatch.setitem(sys.modules, "pandas", None)  # not installed
    with pytest.raises(ImportError, match="needs pandas, which policygrad does not install"):
        study.to_dataframe()
    from types import SimpleNamespace

    monkeypatch.setitem(sys.modules, "pandas", SimpleNamespace(DataFrame=lambda rows: ("frame", rows)))
    assert study.to_dataframe() == ("frame", study.results)


def test_the_readmes_python_section_runs(tmp_path, monkeypatch):
    """The README's Python example, with a short budget: what a user copies works as it says."""
    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    code = readme.split("\n## Python\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    short = code.replace("total_steps=300_000", "total_steps=1_000, progress=False, tensorboard=False, "
                         "eval_episodes=2").replace("episodes=20", "episodes=2")
    assert short.count("total_steps=1_000") == 1 and "pg.make_config(" in short
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(short, "README.md", "exec"), namespace)  # the README's own text, a test fixture
    assert namespace["config"].preset == "CartPole-v1"  # the preset applied is the preset recorded
    assert namespace["action"].shape == () and namespace["actions"].shape == (4,)


# -- 7. types, docs and notes ------------------------------------------------------------------------------
def test_the_package_is_typed_and_ships_py_typed():
    root = pathlib.Path(pg.__file__).parent
    assert (root / "py.typed").is_file()
    pyproject = (root.parent.parent / "pyproject.toml").read_text()
    assert '"py.typed"' in pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]


def test_help_of_a_config_class_lists_its_fields_with_descriptions():
    import pydoc

    text = pydoc.render_doc(pg.PPOConfig)
    assert "clip_coef (float, default 0.2): clip the probability ratio" in text
    assert "env_id (str, default 'CartPole-v1'): Gymnasium id" in text
    assert "algo (" not in text  # the internal tag is not a field to set
    assert "baseline (str, default 'value')" in pg.ReinforceConfig.__doc__


def test_total_steps_rounded_up_to_whole_rollouts_is_said_and_recorded(tmp_path, caplog):
    config = pg.PPOConfig(env_id="CartPole-v1", **{**TINY, "total_steps": 100})
    with caplog.at_level("WARNING", logger="policygrad"):
        result = pg.train(config, run_dir=tmp_path / "run")
    assert result.global_step == 128
    assert "total_steps=100 is rounded up to 128" in caplog.text
    note = json.loads((tmp_path / "run" / "config.json").read_text())["total_steps_note"]
    assert note == {"requested": 100, "trains": 128,
                    "why": "training runs whole rollouts of num_envs x num_steps = 2 x 64 = 128 steps"}
    assert "total_steps_note" not in json.loads(
        (pg.train(config.replace(total_steps=128), run_dir=tmp_path / "whole").run_dir / "config.json").read_text())


# -- 6. your own code by name ------------------------------------------------------------------------------
def test_module_class_names_resolve_in_the_current_directory_as_python_would(tmp_path, monkeypatch):
    (tmp_path / "my_envs_33.py").write_text("import gymnasium as gym\n\n\ndef make():\n"
                                           "    return gym.make('CartPole-v1')\n")
    (tmp_path / "my_nets_33.py").write_text("from torch import nn\n\n\nclass Net(nn.Module):\n"
                                           "    def __init__(self, observation_space, action_space):\n"
                                           "        super().__init__()\n        self.layer = nn.Linear(4, 2)\n\n"
                                           "    def forward(self, obs):\n        return self.layer(obs)\n")
    # the console script, run in that folder without PYTHONPATH (sys.path[0] is its bin/ directory)
    script = pathlib.Path(sys.executable).parent / "policygrad"
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(script), "check-env", "my_envs_33:make"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    # in this process too: the cwd is appended to sys.path, after the installed modules
    from policygrad.core.user_network import network_class

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    assert network_class("my_nets_33:Net").__name__ == "Net"
    assert sys.path[-1] == str(tmp_path)
    with pytest.raises(ValueError, match="cannot import module 'not_there_33'"):
        network_class("not_there_33:Net")


def test_a_network_defined_in_main_warns_at_training_time(tmp_path):
    class MainNet(OtherNet):
        pass

    MainNet.__module__, MainNet.__qualname__ = "__main__", "MainNet"
    with pytest.warns(UserWarning, match="network='__main__:MainNet' is defined in __main__.*can be loaded only by "
                                         "passing the network"):
        result = pg.train(pg.PPOConfig(env_id="CartPole-v1", **TINY), run_dir=tmp_path / "run", network=MainNet())
    assert pg.load(result.run_dir, network=MainNet()).config.network == "__main__:MainNet"


@pytest.mark.slow  # mypy reads torch's annotations: ~35 s
def test_a_users_script_type_checks_against_the_package(tmp_path):
    """py.typed: mypy sees the package's annotations (without it, every name would be Any and this
    mistake would pass)."""
    (tmp_path / "user_script.py").write_text(
        "import numpy as np\n\nimport policygrad as pg\n\n"
        "config = pg.make_config('ppo', env_id='CartPole-v1', total_steps=1_000)\n"
        "result = pg.train(config)\n"
        "agent: pg.Agent = pg.load(result.run_dir, device='auto')\n"
        "action: np.ndarray = agent.act(np.zeros(4))\n"
        "evaluation: pg.EvalResult = pg.evaluate(result.run_dir, episodes=2)\n"
        "wrong: str = evaluation.mean\n")
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "user_script.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines() == [
        'user_script.py:10: error: Incompatible types in assignment (expression has type "float", variable has type '
        '"str")  [assignment]', "Found 1 error in 1 file (checked 1 source file)"], done.stdout + done.stderr


# -- 5. environment arguments --------------------------------------------------------------------------------
CONTINUOUS = {"continuous": True}  # LunarLander-v3 with a Box(2) action space instead of Discrete(4)


@pytest.fixture(scope="module")
def lunar_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("lunar") / "run"
    config = pg.PPOConfig(env_id="LunarLander-v3", env_kwargs=CONTINUOUS,
                          **{**TINY, "checkpoint_every": 128, "eval_every": 128})
    result = pg.train(config, run_dir=run_dir)
    assert isinstance(result.agent.network.action_space, gym.spaces.Box)
    return run_dir


def test_env_kwargs_reach_training_evaluation_and_the_record(lunar_run):
    record = json.loads((lunar_run / "config.json").read_text())
    assert record["config"]["env_kwargs"] == CONTINUOUS
    agent = pg.load(lunar_run)
    assert agent.config.env_kwargs == CONTINUOUS and agent.act(np.zeros(8)).shape == (2,)
    assert len(pg.evaluate(lunar_run, episodes=1).returns) == 1  # the Box agent plays the continuous env
    with pytest.raises(ValueError, match="does not fit this agent"):  # the plain id is the discrete env
        pg.evaluate(agent, episodes=1, env_id="CartPole-v1")


def test_env_kwargs_are_kept_by_a_resumed_run(lunar_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(lunar_run, copy)
    (periodic,) = (copy / "checkpoints").glob("step_*")
    result = pg.train(resume_from=periodic)
    assert result.agent.config.env_kwargs == CONTINUOUS and result.global_step == 256


def test_env_kwargs_reach_a_studys_runs(tmp_path):
    from policygrad.studies.backends.run_task import execute

    class InProcess:
        def run_all(self, tasks, workers, on_result=None):
            results = [execute(task) for task in tasks]
            for result in results:
                if on_result:
                    on_result(result)
            return results

    study = pg.sweep("ppo", "LunarLander-v3", vary={"gamma": [0.9]}, seeds=1, env_kwargs=CONTINUOUS,
                     out_dir=tmp_path, backend=InProcess(), verbose=False,
                     **{k: v for k, v in TINY.items() if k not in ("progress", "tensorboard", "eval_episodes")})
    assert study.results[0]["status"] == "done", study.results
    run = study.study_dir / "runs" / study.results[0]["run_id"]
    assert json.loads((run / "config.json").read_text())["config"]["env_kwargs"] == CONTINUOUS
    assert pg.load(run).act(np.zeros(8)).shape == (2,)


def test_env_kwargs_on_the_command_line_as_json_or_key_value(tmp_path):
    from policygrad.cli import main

    for flag in (['{"continuous": true}'], ["continuous=true"]):
        run_dir = tmp_path / flag[0][:4]
        assert main(["train", "ppo", "--env-id", "LunarLander-v3", "--env-kwargs", *flag, "--total-steps", "128",
                     "--num-envs", "2", "--num-steps", "64", "--num-minibatches", "2", "--update-epochs", "1",
                     "--eval-episodes", "1", "--progress", "false", "--tensorboard", "false", "--preset", "none",
                     "--run-dir", str(run_dir)]) == 0
        assert json.loads((run_dir / "config.json").read_text())["config"]["env_kwargs"] == CONTINUOUS
    from policygrad.cli.flags import parse_mapping

    assert parse_mapping("gravity=-9.5") == {"gravity": -9.5} and parse_mapping("mode=fast") == {"mode": "fast"}


def test_env_kwargs_values_must_be_json():
    with pytest.raises(ValueError, match="env_kwargs=.*JSON values"):
        pg.PPOConfig(env_kwargs={"callback": print})
    with pytest.raises(TypeError, match="env_kwargs='continuous=True'.*dict"):
        pg.PPOConfig(env_kwargs="continuous=True")


def test_a3c_workers_make_their_environments_with_the_runs_env_kwargs(tmp_path):
    # the workers are spawned: without the config's env_kwargs they would make the discrete lander, whose
    # Discrete(4) actions the Box(2) head of the network cannot step
    config = pg.make_config("a3c", env_id="LunarLander-v3", env_kwargs=CONTINUOUS, total_steps=400, num_workers=2,
                            num_envs=1, num_steps=20, progress=False, tensorboard=False, eval_episodes=1,
                            eval_every=0)
    result = pg.train(config, run_dir=tmp_path / "run")
    assert isinstance(result.agent.network.action_space, gym.spaces.Box)
    assert result.global_step >= 400


def test_a_video_is_recorded_with_the_runs_env_kwargs(lunar_run, monkeypatch, tmp_path):
    from policygrad import video
    from policygrad.core.envs import current_env_kwargs

    seen = []

    def fake_make_env_fn(env_id, **kwargs):
        seen.append({**current_env_kwargs(env_id), **kwargs})
        raise TypeError("stop here")

    monkeypatch.setitem(sys.modules, "moviepy", sys.modules.get("moviepy") or __import__("types"))
    monkeypatch.setattr(video, "make_env_fn", fake_make_env_fn)
    with pytest.raises(ValueError, match="cannot render"):
        video.record_video(pg.load(lunar_run), tmp_path)
    assert seen == [{"continuous": True, "render_mode": "rgb_array"}]
