"""The policygrad command: smoke runs of every subcommand; bad input is one line and exit code 2, a bug
in policygrad is exit code 1 and says so; help is argparse's at every level."""

import json
import re
import subprocess
import sys

import gymnasium
import pytest
import torch

from policygrad.cli import build_parser, main
from policygrad.core.errors import RunWriteError, TrainingError, UserInputError

FAST = ["--total-steps", "2000", "--progress", "false", "--tensorboard", "false", "--eval-episodes", "3"]


def test_train_eval_plot_list(tmp_path, capsys, monkeypatch):
    # As on a GPU machine: without --device the run still trains on the CPU, the faster one for these networks.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    run = tmp_path / "run"
    assert main(["train", "reinforce", "--env", "CartPole-v1", "--run-dir", str(run), "--seed", "3",
                 "--hidden-sizes", "32", "16", "--learning-rate", "0.01", "--return-type", "total", *FAST]) == 0
    out = capsys.readouterr().out
    assert "eval (deterministic, 3 episodes)" in out
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["hidden_sizes"] == [32, 16]
    assert record["config"]["learning_rate"] == 0.01
    assert record["config"]["return_type"] == "total"
    assert record["config"]["seed"] == 3
    assert record["device_used"] == "cpu"
    assert "torch" in record["versions"]

    assert main(["eval", str(run), "--episodes", "4", "--stochastic", "--seed", "5"]) == 0
    evaluation = json.loads((run / "evals" / "eval_stochastic_4ep_seed5.json").read_text())
    assert len(evaluation["returns"]) == 4 and evaluation["deterministic"] is False

    out_png = tmp_path / "curves.png"
    assert main(["plot", str(run), str(run), "--out", str(out_png)]) == 0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "reinforce" in listing and "--episodes-per-update" in listing


@pytest.mark.parametrize("argv,needle", [
    (["train", "reinforc"], "Did you mean reinforce"),
    (["train", "reinforce", "--env", "CartPol-v1"], "CartPole-v1"),
    (["train", "reinforce", "--learning-rate", "-0.1"], "learning_rate=-0.1"),
    (["train", "reinforce", "--gamma", "1.5"], "gamma=1.5"),
    (["train", "reinforce", "--episodes-per-update", "0"], "episodes_per_update=0"),
    (["train", "reinforce", "--learnin-rate", "0.1"], "--learning-rate"),
    (["train", "reinforce", "--distribution", "tanh"], "does not fit"),
    (["train", "reinforce", "--env", "Pendulum-v1", "--distribution", "categorical"], "does not fit"),
    (["eval", "/nonexistent/run"], "no checkpoint"),
    (["plot", "/nonexistent/run"], "not a run directory"),
    (["frobnicate"], "unknown command"),
    (["train"], "expected an algorithm first: one of reinforce"),
    (["train", "reinforce", "--total-steps", "lots"], "argument --total-steps"),
    (["train", "reinforce", "--normalize-obs", "maybe"], "expected true or false"),
    (["resume", "/nonexistent/run", "--checkpoint", "../x"], "not a checkpoint name"),
    (["check-env", "CartPole-v1", "--steps", "0"], "--steps=0"),
    (["sweep"], "or --resume STUDY_DIR"),
    (["sweep", "ppo", "--vary", "learning_rate"], "expected FIELD=V1,V2"),
    (["sweep", "ppo", "--vary", "learning_rat=0.1,0.2"], "not a field of PPOConfig"),
    (["sweep", "ppo", "--backend", "rya"], "Did you mean ray"),
    (["study", "lr"], "--algo"),
    (["study", "lrr", "--algo", "ppo"], "unknown study 'lrr'"),
    (["tune"], "or --resume STUDY_DIR"),
    (["tune", "ppo"], "needs --trials"),
    (["diagnose"], "gradients"),
    (["diagnose", "gradients", "--run", "/nonexistent/run"], "no checkpoint here"),  # --run is no handler's name
    (["diagnose", "gradients", "--checkpoint", "step_000000100"], "--checkpoint needs --run"),
    (["compare", "--methods", "ppo"], "--env"),
    (["report", "/a", "/b"], "several only with --aggregate"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, needle, capsys, tmp_path):
    if argv[:2] == ["train", "reinforce"]:
        argv = argv + ["--run-dir", str(tmp_path / "never")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "never").exists() or not any((tmp_path / "never").iterdir())


def test_existing_run_dir_is_not_overwritten_silently(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "precious.txt").write_text("keep me")
    assert main(["train", "reinforce", "--run-dir", str(run), *FAST]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (run / "precious.txt").read_text() == "keep me"


def test_console_script_runs_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "policygrad.cli", "train", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "nope" in proc.stderr


def test_presets_apply_under_explicit_values_and_are_recorded(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "reinforce", "--run-dir", str(run), "--learning-rate", "0.001", *FAST]) == 0
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["preset"] == "CartPole-v1"
    assert record["preset_values"]["learning_rate"] == 0.004  # the preset's value, recorded
    assert record["config"]["learning_rate"] == 0.001  # but the user's value won

    plain = tmp_path / "plain"
    assert main(["train", "reinforce", "--run-dir", str(plain), "--preset", "none", *FAST]) == 0
    record = json.loads((plain / "config.json").read_text())
    assert record["config"]["preset"] == "none" and record["preset_values"] == {}


# -- what ends how: bad input (2), a bug in policygrad (1), --debug, help ----------------------------------
def fail_inside_training(monkeypatch, exc: Exception) -> None:
    """Make ``train`` raise ``exc`` from inside the library, where no user input is parsed any more."""
    def train(config, **kwargs):
        raise exc

    monkeypatch.setattr("policygrad.training.train", train)


def test_an_unexpected_value_error_is_reported_as_a_bug_with_a_log_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fail_inside_training(monkeypatch, ValueError("internal"))
    assert main(["train", "reinforce", "--total-steps", "300"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "bug in policygrad" in err and "not a mistake in your input" in err and "ValueError: internal" in err
    assert "Traceback" not in err and "policygrad train: error:" not in err  # not reported as bad input
    logs = list((tmp_path / "cache" / "policygrad").glob("error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    log = logs[0].read_text()
    assert "Traceback (most recent call last)" in log and "ValueError: internal" in log
    assert "command: policygrad train reinforce --total-steps 300" in log


def test_debug_prints_the_traceback_instead_of_writing_a_log(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fail_inside_training(monkeypatch, KeyError("internal"))
    assert main(["--debug", "train", "reinforce", "--total-steps", "300"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'internal'" in err
    assert "bug in policygrad" in err.strip().splitlines()[-1]
    assert not (tmp_path / "cache").exists()

    assert main(["--debug", "train", "reinforce", "--learning-rate", "-1", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err  # bad input: still exit 2, with the traceback of where it was refused
    assert "Traceback" in err and "learning_rate=-1" in err.strip().splitlines()[-1]


def test_a_bug_without_a_writable_cache_prints_its_traceback(tmp_path, capsys, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # a file: no folder can be made under it
    fail_inside_training(monkeypatch, RuntimeError("internal"))
    assert main(["train", "reinforce"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: internal" in err and "Traceback" in err and "no log file" in err


@pytest.mark.parametrize("exc,code,needle", [
    (UserInputError("bad value"), 2, "error: bad value"),
    (TrainingError("diverged"), 1, "training failed: diverged"),
    (RunWriteError("disk full"), 1, "error: disk full"),
    (gymnasium.error.NameNotFound("Environment `Nope` doesn't exist."), 2, "Nope"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_how_a_command_ends_is_its_exit_code(exc, code, needle, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fail_inside_training(monkeypatch, exc)
    assert main(["train", "reinforce"]) == code
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "bug" not in err
    assert not (tmp_path / "cache").exists()


COMMANDS = ["train", "resume", "eval", "check-env", "plot", "sweep", "study", "report", "compare", "tune", "diagnose",
            "list"]


def test_help_lists_every_command_with_a_line_of_its_own(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listing = out.split("COMMAND\n", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^ {4}(\S+)\s*\n?\s*(\S.*)$", listing, flags=re.MULTILINE)  # name, its line of help
    assert sorted(name for name, _ in listed) == sorted(COMMANDS) and all(len(line) > 20 for _, line in listed)
    parser_commands = next(a for a in build_parser()._actions if a.dest == "cli_command").choices
    assert sorted(parser_commands) == sorted(COMMANDS)
    assert main([]) == 2 and "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needles", [
    (["train", "--help"], ["reinforce", "ppo", "ALGO --help"]),
    (["train", "ppo", "--help"], ["--clip-coef", "--env ENV_ID", "--run-dir"]),
    (["sweep", "--help"], ["--resume STUDY_DIR", "ALGO"]),
    (["sweep", "a2c", "--help"], ["--vary", "--seeds", "--gae-lambda", "--backend"]),
    (["study", "--help"], ["architecture", "reward-norm"]),
    (["study", "lr", "--help"], ["--algo ALGO", "--seeds", "--dry-run"]),
    (["study", "lr", "--algo", "ppo", "--help"], ["--clip-coef", "--seeds"]),
    (["tune", "--help"], ["--resume STUDY_DIR", "--trials"]),
    (["tune", "ppo", "--help"], ["--seeds-per-trial", "--objective", "--clip-coef"]),
    (["compare", "--help"], ["--methods", "--shared"]),
    (["diagnose", "gradients", "--help"], ["--estimators", "--batch-episodes"]),
    (["report", "--help"], ["--aggregate OUT_DIR", "--baseline"]),
])
def test_every_level_has_argparse_help_and_returns_0(argv, needles, capsys):
    assert main(argv) == 0  # no SystemExit out of main
    out = capsys.readouterr().out
    assert out.startswith("usage: policygrad ") and all(n in out for n in needles), out


def test_flags_shared_by_a_parent_may_come_before_or_after_algo(monkeypatch):
    seen = {}

    def tune(algo, env_id, trials, **options):
        seen.update(options, algo=algo, trials=trials)
        return type("Result", (), {"best": {}, "handed_over": False, "trials": []})()

    from policygrad.tuning import search

    monkeypatch.setattr(search, "tune", tune)
    assert main(["tune", "--workers", "2", "ppo", "--trials", "3", "--backend", "ray"]) == 0
    assert seen["workers"] == 2 and seen["trials"] == 3 and seen["backend"] == "ray" and seen["algo"] == "ppo"
    assert main(["tune", "--trials", "4", "ppo", "--workers", "3"]) == 0
    assert seen["workers"] == 3 and seen["trials"] == 4 and seen["backend"] == "local"


@pytest.mark.parametrize("words, widths", [(["64x64"], (64, 64)), (["64", "64"], (64, 64)),
                                           (["32X16", "8"], (32, 16, 8)), (["128"], (128,))])
def test_hidden_sizes_are_written_as_studies_write_them_or_as_separate_widths(words, widths):
    from policygrad.algos import PPO
    from policygrad.cli.flags import config_values

    args = build_parser().parse_args(["train", "ppo", "--hidden-sizes", *words])
    assert config_values(args, PPO.Config)["hidden_sizes"] == widths


def test_hidden_sizes_refuse_what_is_not_widths_and_show_their_default_as_studies_write_it(capsys):
    assert main(["train", "ppo", "--hidden-sizes", "64y"]) == 2
    assert "expected widths such as 64 64 or 64x64, got '64y'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "ppo", "--help"])
    assert "(default: 64x64)" in " ".join(capsys.readouterr().out.split())
