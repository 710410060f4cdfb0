"""``--env-kwargs`` on every command that makes an environment: one parser (a JSON object, or KEY=VALUE
pairs; anything else is one line naming the flag, exit 2), the environment check made with the arguments
(PartiallyObserved-v0 cannot be made without them), and ``diagnose gradients`` on the environment a run or
a fresh network acts in, Dict observations and action masks included. (``compare``'s own tests are in
test_compare_structured.py; ``train``'s in test_python_api.py.)"""

import json

import pytest
from test_compare import InProcess  # a backend running each run in this process (tests/ is on sys.path)

import policygrad as pg
from policygrad.cli import main
from policygrad.core.envs import env_kwargs_for
from policygrad.env_check import check_env, preflight

HIDDEN = {"env_id": "CartPole-v1", "hide": [1, 3]}  # CartPole without its velocities


BROKEN, NOT_AN_OBJECT = '{"env_id": "CartPole-v1"', "[1, 3]"  # (compare's: test_compare_structured.py)


@pytest.mark.parametrize("command, value", [
    (["train", "ppo"], BROKEN), (["sweep", "ppo"], NOT_AN_OBJECT), (["study", "lr", "--algo", "ppo"], BROKEN),
    (["tune", "ppo", "--trials", "2"], NOT_AN_OBJECT), (["check-env", "PartiallyObserved-v0"], BROKEN),
    (["diagnose", "gradients"], NOT_AN_OBJECT),
])
def test_every_command_refuses_env_kwargs_that_are_not_an_object_in_one_line(capsys, tmp_path, command, value):
    env = [] if command[0] == "check-env" else ["--env", "PartiallyObserved-v0"]
    code = main([*command, *env, "--env-kwargs", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--env-kwargs" in err[0], err
    assert value in err[0]  # the value as given, not a guess at what it meant


def test_check_env_makes_the_environment_with_its_arguments(capsys):
    assert main(["check-env", "PartiallyObserved-v0", "--env-kwargs", json.dumps(HIDDEN), "--steps", "20"]) == 0
    out = capsys.readouterr().out
    assert f"PartiallyObserved-v0 {json.dumps(HIDDEN)}: no problems found in 20 steps" in out
    # without them the wrapper cannot be made: an error finding, exit 1 (as before)
    assert main(["check-env", "PartiallyObserved-v0", "--steps", "20"]) == 1
    assert "missing 2 required positional arguments" in capsys.readouterr().out


def test_the_check_before_training_makes_the_environment_with_the_runs_arguments():
    # train runs preflight inside the run's env_kwargs context; it used to make the env without them
    with env_kwargs_for("PartiallyObserved-v0", HIDDEN):
        assert preflight("PartiallyObserved-v0") == []
    assert not [f for f in check_env("PartiallyObserved-v0", 20, env_kwargs=HIDDEN) if f.severity == "error"]
    with pytest.raises(ValueError, match="fails the environment check"):
        preflight("PartiallyObserved-v0")


def test_a_sweep_checks_and_trains_on_the_environment_made_with_its_arguments(tmp_path):
    result = pg.sweep("ppo", "PartiallyObserved-v0", vary={"gamma": [0.9]}, seeds=1, total_steps=64, eval_every=0,
                      eval_episodes=1, num_envs=1, num_steps=32, env_kwargs=HIDDEN, out_dir=tmp_path,
                      backend=InProcess(), verbose=False)
    assert [r["status"] for r in result.results] == ["done"]
    spec = json.loads((result.study_dir / "study.json").read_text())
    assert spec["fixed"]["env_kwargs"] == HIDDEN
    agent = pg.load(result.study_dir / "runs" / "gamma=0.9__seed=1")
    assert agent.network.observation_space.shape == (2,)  # two of CartPole's four numbers: the arguments reached it
    assert f"on PartiallyObserved-v0 (env_kwargs {json.dumps(HIDDEN)})" in \
        (result.study_dir / "report.md").read_text().splitlines()[0]


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory):
    """PPO trained briefly on the Dict-observation trap (a mask key beside the state) with 4-step episodes."""
    config = pg.make_config("ppo", env_id="masked_envs:TrapObsEnv", env_kwargs={"length": 4}, total_steps=64,
                            num_envs=2, num_steps=16, num_minibatches=2, update_epochs=1, eval_episodes=2,
                            progress=False, tensorboard=False)
    return pg.train(config, run_dir=tmp_path_factory.mktemp("run") / "run", check_env=False).run_dir


def test_diagnose_gradients_plays_a_runs_dict_observations_and_masks_with_its_arguments(masked_run, tmp_path,
                                                                                       capsys):
    out = tmp_path / "diagnosis"
    assert main(["diagnose", "gradients", "--run", str(masked_run), "--batches", "4", "--batch-episodes", "2",
                 "--out", str(out)]) == 0
    settings = json.loads((out / "diagnosis.json").read_text())
    # every episode: the run's 4 steps (not the trap's default 10), and no masked action (it would end it at -10)
    assert settings["env_kwargs"] == {"length": 4}
    assert settings["return_mean"] == 4.0 and settings["length_mean"] == 4.0
    assert 'masked_envs:TrapObsEnv (env_kwargs {"length": 4})' in (out / "report.md").read_text().splitlines()[0]
    capsys.readouterr()
    # other arguments than the run's: refused in one line
    assert main(["diagnose", "gradients", "--run", str(masked_run), "--env-kwargs", "length=5",
                 "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained with env_kwargs {'length': 4}" in err[0]
    assert not (tmp_path / "never").exists()


def test_diagnose_gradients_of_a_fresh_network_on_a_dict_env_made_with_its_arguments(tmp_path):
    d = pg.diagnose_gradients("masked_envs:TrapObsEnv", env_kwargs={"length": 3}, batches=4, batch_episodes=2,
                              estimators="total,reward_to_go,value_baseline")
    assert d.env_kwargs == {"length": 3} and d.return_mean == 3.0 and d.length_mean == 3.0
    assert all(s.mean_norm > 0 for s in d.stats)  # gradients through the Dict encoder, on the allowed actions
