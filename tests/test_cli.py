"""The policygrad command: smoke runs of every subcommand, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest
import torch

from policygrad.cli import main

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
