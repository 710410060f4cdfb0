"""What a new user hit (issue 18, items 2-9): each test failed on the code as it was.

Runs are built by hand (a checkpoint written with save_checkpoint / save_periodic) where training
would only cost time: evaluation, loading and resuming read nothing else.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import policygrad as pg
from policygrad.algos import algorithm
from policygrad.cli import main
from policygrad.cli.parsing import Parser, parse_count
from policygrad.core.envs import env_spaces
from policygrad.core.networks import build_agent
from policygrad.run.checkpoint import save_checkpoint, save_periodic

ROOT = Path(__file__).resolve().parents[1]
STEP_400 = "step_000000400"


def make_run(path: Path, final: bool = True, periodic: tuple[int, ...] = ()) -> Path:
    """A REINFORCE run directory as training leaves it: config.json, eval.json, checkpoint/ (the final
    one, unless ``final`` is False: a killed run) and the periodic checkpoints ``periodic``."""
    cfg = pg.ReinforceConfig(device="cpu")
    net = build_agent(cfg, *env_spaces(cfg.env_id), with_value=algorithm("reinforce").needs_value(cfg))
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"config": cfg.to_dict()}))
    for step in periodic:
        save_periodic(path, step, keep=10, model=net, optimizer=None, config=cfg.to_dict(),
                      counters={"global_step": step}, run_state={}, state_tensors={})
    if final:
        save_checkpoint(path / "checkpoint", net, None, cfg.to_dict(), {"global_step": 500, "completed": True})
        (path / "eval.json").write_text(json.dumps({"mean": 500.0, "deterministic": True, "seed": 10_000}))
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# -- 2. policygrad eval keeps training's eval.json and writes its own file ---------------------------
def test_eval_keeps_trainings_eval_json_and_writes_a_file_named_after_its_settings(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    training_eval = (run / "eval.json").read_text()
    assert main(["eval", str(run), "--episodes", "3", "--stochastic", "--seed", "7"]) == 0
    written = run / "evals" / "eval_stochastic_3ep_seed7.json"
    assert f"wrote {written}" in capsys.readouterr().out
    assert (run / "eval.json").read_text() == training_eval
    saved = json.loads(written.read_text())
    assert saved["deterministic"] is False and saved["seed"] == 7 and saved["episodes"] == 3
    assert len(saved["returns"]) == 3 and saved["global_step"] == 500
    assert saved["checkpoint"] == str(run / "checkpoint")

    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert (run / "evals" / "eval_deterministic_2ep_seed10000.json").is_file()
    chosen = tmp_path / "elsewhere" / "mine.json"
    assert main(["eval", str(run), "--episodes", "2", "--out", str(chosen)]) == 0
    assert f"wrote {chosen}" in capsys.readouterr().out
    assert json.loads(chosen.read_text())["episodes"] == 2
    assert (run / "eval.json").read_text() == training_eval


def test_eval_on_a_full_disk_is_one_line_naming_the_file_and_the_way_out(tmp_path, capsys, monkeypatch):
    import errno

    import policygrad.run.files as files
    from policygrad.core.errors import RunWriteError

    run = make_run(tmp_path / "run")

    def full_disk(path, data):
        raise RunWriteError.from_os_error("file", path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(files, "write_json_atomic", full_disk)
    assert main(["eval", str(run), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "training failed" not in err and "cannot write" in err and "--out" in err
    assert len(err.strip().splitlines()) == 1


# -- 3. a seeded stochastic evaluation is reproducible ------------------------------------------------
def test_stochastic_evaluation_with_a_seed_is_reproducible_and_leaves_the_callers_rng_alone(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    agent = pg.load(run)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = pg.evaluate(agent, episodes=6, deterministic=False, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random stream is untouched
    torch.rand(100)  # the caller's own draws in between change nothing
    second = pg.evaluate(agent, episodes=6, deterministic=False, seed=7)
    assert (first.returns, first.lengths) == (second.returns, second.lengths)
    assert pg.evaluate(agent, episodes=6, deterministic=False, seed=8).returns != first.returns

    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    for out in outs:
        assert main(["eval", str(run), "--episodes", "5", "--stochastic", "--seed", "7", "--out", str(out)]) == 0
    a, b = (json.loads(out.read_text()) for out in outs)
    assert a["returns"] == b["returns"] and a["mean"] == b["mean"]


# -- 4. episodes_per_update below the default num_envs -------------------------------------------------
@pytest.mark.parametrize("preset", ["auto", "none"])
def test_num_envs_the_user_did_not_set_is_derived_from_episodes_per_update(preset, caplog):
    with caplog.at_level(logging.INFO, logger="policygrad"):
        config = pg.make_config("reinforce", preset=preset, episodes_per_update=2)
    assert config.num_envs == 2 and config.to_dict()["num_envs"] == 2  # what config.json records
    assert "num_envs=2" in caplog.text and "episodes_per_update=2" in caplog.text
    assert pg.make_config("reinforce", preset=preset, episodes_per_update=16).num_envs == 8  # untouched


def test_num_envs_set_above_episodes_per_update_names_both_flags_and_the_fix():
    for values in (dict(num_envs=4, episodes_per_update=2), dict(num_envs=16)):
        with pytest.raises(ValueError) as info:
            pg.make_config("reinforce", **values)
        message = str(info.value)
        assert "--num-envs" in message and "--episodes-per-update" in message and "\n" not in message


def test_train_with_episodes_per_update_2_runs_and_records_the_derived_num_envs(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "reinforce", "--episodes-per-update", "2", "--total-steps", "300", "--run-dir", str(run),
                 "--progress", "false", "--tensorboard", "false", "--eval-episodes", "1", "--no-check-env"]) == 0
    record = json.loads((run / "config.json").read_text())["config"]
    assert record["num_envs"] == 2 and record["episodes_per_update"] == 2


# -- 5. the preset default that train applies ----------------------------------------------------------
def test_list_and_train_help_show_the_preset_default_train_applies(capsys):
    assert main(["list"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("--preset")]
    assert lines and all(words[1] == "auto" for words in lines)
    assert main(["train", "reinforce", "--help"]) == 0
    preset_help = " ".join(capsys.readouterr().out.split()).split("--preset TEXT ", 1)[1].split(" --", 1)[0]
    assert "(default: auto" in preset_help and "CartPole-v1" in preset_help


# -- 6. make demo is described as what it does ---------------------------------------------------------
def test_readme_and_guide_say_which_algorithm_make_demo_trains():
    demo = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    trained = re.search(r"policygrad train (\w+)", demo).group(1)
    for doc in (ROOT / "README.md", ROOT / "docs" / "guide.md"):
        text = " ".join(doc.read_text().split())
        claims = re.findall(r"make demo`?(?:(?!\. ).)*?\btrains (\w+)", text)  # within the sentence
        assert claims, doc
        assert {c.lower() for c in claims} == {trained}, (doc, claims)


# -- 7. a killed run: what was found, what to do -------------------------------------------------------
def test_loading_a_killed_run_names_its_newest_periodic_checkpoint(tmp_path, capsys):
    run = make_run(tmp_path / "run", final=False, periodic=(200, 400))
    with pytest.raises(ValueError) as info:
        pg.load(run)
    assert "no final checkpoint" in str(info.value) and str(run / "checkpoints" / STEP_400) in str(info.value)
    assert main(["eval", str(run)]) == 2
    err = one_line_error(capsys)
    assert STEP_400 in err and "resume" in err and "checkpoint.json is missing" not in err

    assert main(["eval", str(run / "checkpoints" / STEP_400), "--episodes", "2"]) == 0
    assert (run / "evals" / f"eval_deterministic_2ep_seed10000_{STEP_400}.json").is_file()


def test_resuming_a_run_without_checkpoints_says_what_was_found(tmp_path, capsys):
    run = make_run(tmp_path / "run", final=False)  # killed before its first periodic checkpoint
    assert main(["resume", str(run)]) == 2
    err = one_line_error(capsys)
    assert "no final checkpoint/" in err and "no periodic checkpoint" in err and "--checkpoint-every" in err
    assert "mid-update" not in err

    run = make_run(tmp_path / "pointerless", final=False, periodic=(200, 400))
    (run / "checkpoints" / "latest").unlink()
    assert main(["resume", str(run)]) == 2
    assert f"--checkpoint {STEP_400}" in one_line_error(capsys)


def test_resuming_a_complete_run_refuses_without_first_saying_resuming(tmp_path, capsys):
    total = pg.ReinforceConfig().total_steps
    run = make_run(tmp_path / "run", final=False, periodic=(total,))
    assert main(["resume", str(run)]) == 2
    out, err = capsys.readouterr()
    assert "the run is complete" in err and "--total-steps" in err
    assert "resuming" not in out


# -- 8. no flag matched by its prefix -------------------------------------------------------------------
@pytest.mark.parametrize("argv,suggestion", [
    (["train", "reinforce", "--learning-rat", "0.01"], "--learning-rate"),
    (["train", "reinforce", "--learning-rat=0.01"], "--learning-rate"),
    (["eval", "RUN", "--epis", "2"], "--episodes"),
    (["resume", "RUN", "--total", "5"], "--total-steps"),
    (["check-env", "CartPole-v1", "--step", "5"], "--steps"),
    (["plot", "RUN", "--win", "3"], "--window"),
])
def test_a_flag_prefix_is_an_unknown_flag_with_a_suggestion(argv, suggestion, capsys, tmp_path):
    if argv[0] == "train":
        argv = argv + ["--run-dir", str(tmp_path / "never")]
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert "unrecognized arguments" in err and f"did you mean {suggestion}" in err
    assert not (tmp_path / "never").exists()
    assert Parser(prog="any").allow_abbrev is False


# -- 9. step counts as people type them -----------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("1e4", 10_000), ("20k", 20_000), ("1M", 1_000_000), ("20_000", 20_000),
                                        ("1.5M", 1_500_000), ("300", 300), ("2.5e3", 2500)])
def test_step_counts_accept_the_forms_people_type(text, value, monkeypatch):
    assert parse_count(text) == value
    seen = {}

    def fake_train(config, **kwargs):
        seen["config"] = config
        return SimpleNamespace(run_dir="r", global_step=0, seconds=0.0, evaluation=None)

    monkeypatch.setattr("policygrad.training.train", fake_train)
    assert main(["train", "reinforce", "--total-steps", text, "--checkpoint-every", text]) == 0
    assert seen["config"].total_steps == value and seen["config"].checkpoint_every == value


@pytest.mark.parametrize("flag,text", [("--total-steps", "1.5e3.2"), ("--total-steps", "1.0001k"),
                                       ("--checkpoint-every", "2.5"), ("--total-steps", "lots")])
def test_a_step_count_that_is_not_a_whole_number_is_one_line_naming_the_flag(flag, text, capsys, tmp_path):
    assert main(["train", "reinforce", flag, text, "--run-dir", str(tmp_path / "never")]) == 2
    err = one_line_error(capsys)
    assert f"argument {flag}" in err and repr(text) in err
    assert not (tmp_path / "never").exists()


def test_python_configs_stay_strict_ints():
    for value in ("20k", 1e4):
        with pytest.raises(ValueError, match="total_steps"):
            pg.make_config("reinforce", total_steps=value)
