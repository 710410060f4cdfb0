"""policygrad check-env: each faulty environment is reported in policygrad's words, with the right
severity; a good one passes; train() refuses an env with errors before writing anything."""

import logging

import pytest

import policygrad as pg
from policygrad.cli import main
from policygrad.env_check import check_env, preflight


def findings(name: str, steps: int = 60):
    return check_env(f"faulty_envs:{name}", steps=steps, gymnasium_checker=False)


@pytest.mark.parametrize("name,check,needle", [
    ("OldResetAPI", "reset", "expected a tuple (observation, info dict)"),
    ("OldStepAPI", "step", "old Gym API: one done flag"),
    ("WrongShape", "observation", "shape (3,); the observation space declares (4,)"),
    ("NaNObservation", "observation", "non-finite observation (nan at index 2)"),
    ("InfReward", "reward", "non-finite reward (inf) at step 3 of an episode"),
    ("RaisesAfterSteps", "step", "boom: the environment failed on purpose"),
])
def test_errors_are_named(name, check, needle):
    errors = [f for f in findings(name) if f.severity == "error"]
    assert len(errors) == 1, errors
    assert errors[0].check == check and needle in errors[0].message, errors[0]


@pytest.mark.parametrize("name,check,needle", [
    ("OutOfBounds", "observation", "outside the declared bounds (index 0: 2.0 not in [-1.0, 1.0])"),
    ("UnboundedActions", "actions", "is unbounded"),
    ("IgnoresSeed", "seeding", "differ at the first observation"),
    ("HugeReward", "reward", "overflow float32"),
])
def test_warnings_are_named(name, check, needle):
    found = findings(name)
    assert [f.severity for f in found] == ["warning"], found
    assert found[0].check == check and needle in found[0].message, found[0]


@pytest.mark.parametrize("env_id", ["faulty_envs:WellBehaved", "CartPole-v1", "Pendulum-v1"])
def test_good_environments_pass_including_gymnasiums_checker(env_id):
    assert check_env(env_id, steps=100) == []


def test_cli_check_env_prints_findings_and_exits_1_on_errors(capsys):
    assert main(["check-env", "faulty_envs:OldStepAPI", "--steps", "20"]) == 1
    out = capsys.readouterr().out
    assert "error: [step]" in out and "1 error(s)" in out
    assert main(["check-env", "CartPole-v1", "--steps", "20"]) == 0
    assert "no problems found" in capsys.readouterr().out
    assert main(["check-env", "CartPol-v1"]) == 2  # not an environment at all: bad input


def test_train_refuses_a_broken_env_before_writing_anything(tmp_path):
    run = tmp_path / "run"
    cfg = pg.ReinforceConfig(env_id="faulty_envs:NaNObservation", total_steps=500, progress=False,
                             tensorboard=False, device="cpu")
    with pytest.raises(ValueError, match=r"fails the environment check: \[observation\].*nan at index 2"):
        pg.train(cfg, run_dir=run)
    assert not run.exists()


def test_preflight_logs_warnings_and_lets_training_go_on(caplog):
    with caplog.at_level(logging.WARNING, logger="policygrad"):
        found = preflight("faulty_envs:OutOfBounds")  # what train() runs first
    assert [f.check for f in found] == ["observation"]
    assert any("outside the declared bounds" in r.getMessage() for r in caplog.records)


def test_cli_no_check_env_skips_the_check_before_training(tmp_path, capsys):
    args = ["train", "reinforce", "--env", "faulty_envs:NaNObservation", "--total-steps", "500",
            "--progress", "false", "--tensorboard", "false", "--device", "cpu"]
    assert main([*args, "--run-dir", str(tmp_path / "checked")]) == 2
    assert "fails the environment check" in capsys.readouterr().err
    # Skipped: training starts and the NaN is caught while stepping instead, named by env and step.
    assert main([*args, "--run-dir", str(tmp_path / "unchecked"), "--no-check-env"]) != 0
    err = capsys.readouterr().err
    assert "fails the environment check" not in err and "nan" in err.lower()
