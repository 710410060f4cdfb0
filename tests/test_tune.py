"""``policygrad tune`` (Optuna) and ``--preset FILE``: tiny real tunings of PPO on CartPole (a thousand
steps a run), their files, the best preset training, two processes on one journal file, a failing
trial, resuming (a killed process's trial continued), the median pruner, bad input (exit 2, one line).

Most tunings here run their trials' runs in this process (:class:`InlineBackend`, the Backend
interface without worker processes: a spawned worker costs seconds, the runs a fraction of one);
the local and Ray backends have their own tests (test_study_runner.py and the Ray tests)."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from policygrad.cli import main
from policygrad.studies.backends.run_task import execute
from policygrad.tuning.search import report_seed, resume_tune, tune
from policygrad.tuning.space import check_space
from policygrad.tuning.spec import (
    BEST_PRESET,
    JOURNAL_FILE,
    load_optuna_study,
    open_storage,
    read_optuna_study,
    read_tune_spec,
)

SPACE = {"learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}, "num_steps": {"choices": [16, 32]},
         "update_epochs": 2, "hidden_sizes": [16]}
TINY = {"total_steps": 512, "eval_every": 128, "eval_episodes": 2, "verbose": False}


class InlineBackend:
    """The Backend interface, each run trained in this process (run_task.execute), one after another."""

    def __init__(self):
        self.run_ids = []

    def run_all(self, tasks, workers, on_result=None):
        results = []
        for task in tasks:
            self.run_ids.append(task.run_id)
            result = execute(task)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results


def trials_of(study_dir):
    spec = read_tune_spec(study_dir)
    return read_optuna_study(spec, open_storage(Path(study_dir), spec.storage)).get_trials()


def final_eval(run_dir):
    return json.loads((run_dir / "eval.json").read_text())["mean"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune")
    backend = InlineBackend()
    result = tune("ppo", "CartPole-v1", trials=3, space=SPACE, seeds_per_trial=2, top=2, reeval_seeds=1, out_dir=out,
                  backend=backend, **TINY)
    return result, backend


def test_a_tuning_scores_trials_over_seeds_reevaluates_on_fresh_seeds_and_writes_preset_and_report(tuned):
    result, backend = tuned
    study_dir = result.study_dir
    trials = trials_of(study_dir)
    assert [t.number for t in trials] == [0, 1, 2] and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:  # the objective: the mean over the seeds of each run's final evaluation, never one seed's
        finals = [final_eval(study_dir / "runs" / f"trial_{t.number:04d}__seed={s}") for s in (1, 2)]
        assert t.value == pytest.approx(sum(finals) / 2)
        assert 1e-3 <= t.params["learning_rate"] <= 1e-2 and t.params["num_steps"] in (16, 32)
    # the top 2 re-evaluated on seed 3, which no search run used
    top = sorted(trials, key=lambda t: -t.value)[:2]
    assert sorted(r for r in backend.run_ids if r.endswith("seed=3")) == sorted(
        f"trial_{t.number:04d}__seed=3" for t in top)
    reeval = (study_dir / "reeval.csv").read_text().splitlines()
    assert len(reeval) == 3 and reeval[0].startswith("trial,search_rank,search_value")
    for line, t in zip(reeval[1:], top):
        cells = line.split(",")
        assert cells[0] == str(t.number) and float(cells[5]) == final_eval(
            study_dir / "reeval" / f"trial_{t.number:04d}__seed=3")
    # the best preset: the best trial's values, loadable as data
    preset = yaml.safe_load((study_dir / BEST_PRESET).read_text())
    best = next(t for t in trials if t.number == result.best["number"])
    assert preset["learning_rate"] == best.params["learning_rate"] and preset["num_steps"] == best.params["num_steps"]
    assert preset["update_epochs"] == 2 and preset["hidden_sizes"] == [16] and "seed" not in preset
    report = (study_dir / "report.md").read_text()
    for heading in ("## Best config", "## Re-evaluation on fresh seeds", "## Hyperparameter importance",
                    "## Optimisation history", "## Trials"):
        assert heading in report
    assert (study_dir / "report_files" / "history.svg").is_file()
    assert (study_dir / "report_files" / "importance.svg").is_file()
    html = (study_dir / "report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")


def test_the_best_preset_trains_with_preset_file(tuned, tmp_path):
    result, _ = tuned
    preset = result.study_dir / BEST_PRESET
    rc = main(["train", "ppo", "--env", "CartPole-v1", "--preset", str(preset), "--total-steps", "256",
               "--run-dir", str(tmp_path / "run"), "--eval-episodes", "1", "--progress", "false",
               "--tensorboard", "false", "--no-check-env"])
    assert rc == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    values = yaml.safe_load(preset.read_text())
    assert config["preset"] == str(preset)
    assert config["learning_rate"] == values["learning_rate"] and config["num_steps"] == values["num_steps"]
    assert config["hidden_sizes"] == [16]


def test_report_html_renders_in_headless_chromium(tuned, tmp_path):
    from test_study_report import assert_readable, render_in_chromium

    result, _ = tuned
    rendered = render_in_chromium(result.study_dir / "report.html", tmp_path)
    boxes, tables, errors, requests, screenshot = rendered[:5]
    assert_readable(rendered, [["learning_rate", "num_steps"], []])  # importance: every searched field
    assert len(boxes) == 2  # importance, history
    for box in boxes:
        assert box["width"] > 100 and box["height"] > 100 and box["shapes"] > 10, box
    assert tables == 4  # best config, re-evaluation, importances, trials
    assert errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests


@pytest.mark.parametrize("text, message", [
    ("learning_rat: {low: 0.001, high: 0.01}", "'learning_rat' is not a field of PPOConfig"),
    ("learning_rate: {low: 0.01, high: 0.001}", "must be below high"),
    ("learning_rate: {low: 0, high: 0.01, log: true}", "log needs low > 0"),
    ("update_epochs: {low: 1.5, high: 4}", "expected an integer"),
    ("gamma: {choices: [abc, 0.99]}", "expected a number"),
    ("learning_rate: {low: 0.001, hi: 0.01}", "unknown key 'hi'"),
    ("seed: {choices: [1, 2]}", "seed is set by the tuning itself"),
    ("norm_adv: {low: 0, high: 1}", "searched with choices"),
    ("- learning_rate\n- gamma", "expected a mapping"),
    ("learning_rate: {low: [", "not valid YAML"),
])
def test_a_bad_space_file_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    space = tmp_path / "space.yaml"
    space.write_text(text)
    rc = main(["tune", "ppo", "--env", "CartPole-v1", "--trials", "2", "--space", str(space),
               "--out-dir", str(tmp_path / "studies")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("policygrad tune: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "studies").exists()


@pytest.mark.parametrize("argv, message", [
    (["tune", "nope", "--trials", "2"], "nope"),
    (["tune", "ppo", "--env", "NoSuchEnv-v0", "--trials", "2"], "NoSuchEnv-v0"),
    (["tune", "ppo", "--trials", "0"], "trials=0"),
    (["tune", "ppo"], "--trials"),
    (["tune", "ppo", "--trials", "2", "--objective", "last"], "invalid choice"),
    (["tune", "ppo", "--trials", "2", "--eval-every", "0"], "eval_every=0"),
    (["tune", "ppo", "--trials", "2", "--storage", "nosuchdb://x"], "storage 'nosuchdb://x' cannot be opened"),
])
def test_bad_tune_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_failing_trial_is_fail_and_the_search_goes_on(tmp_path, monkeypatch):
    # a network whose construction raises: the trials that pick it fail in their run, the others complete
    (tmp_path / "boom_net.py").write_text(textwrap.dedent("""
        import torch.nn as nn

        class Boom(nn.Module):
            def __init__(self, observation_space, action_space):
                raise RuntimeError("boom: this network cannot be built")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    space = {"network": {"choices": ["", "boom_net:Boom"]}, "learning_rate": {"low": 1e-3, "high": 1e-2},
             "num_steps": 16, "update_epochs": 2, "hidden_sizes": [16]}
    result = tune("ppo", "CartPole-v1", trials=4, space=space, seeds_per_trial=1, top=1, reeval_seeds=1,
                  out_dir=tmp_path / "studies", backend=InlineBackend(), sampler_seed=3, workers=2, **TINY)
    trials = trials_of(result.study_dir)
    states = {t.number: t.state.name for t in trials}
    assert len(trials) == 4 and set(states.values()) == {"COMPLETE", "FAIL"}, states
    for t in trials:
        assert (t.state.name == "FAIL") == (t.params["network"] == "boom_net:Boom")
        if t.state.name == "FAIL":
            assert "boom: this network cannot be built" in t.user_attrs["error"]
    assert result.best is not None and states[result.best["number"]] == "COMPLETE"
    assert (result.study_dir / "report.md").is_file()


def test_running_again_continues_the_same_study_and_a_killed_process_trial(tmp_path):
    import socket

    args = dict(space=SPACE, seeds_per_trial=1, top=1, reeval_seeds=1, out_dir=tmp_path, **TINY)
    first = tune("ppo", "CartPole-v1", trials=2, backend=InlineBackend(), **args)
    before = {t.number: (t.params, t.value) for t in trials_of(first.study_dir)}
    marker = first.study_dir / "runs" / "trial_0000__seed=1" / "eval.json"
    stamp = marker.stat().st_mtime_ns
    # a third trial left RUNNING by a process that is gone (as after kill -9): no lock file holds it
    spec = read_tune_spec(first.study_dir)
    spec.trials = 3
    study = load_optuna_study(spec, open_storage(first.study_dir, spec.storage), sampler_seed=2)
    trial = study.ask()
    check_space("ppo", spec.space).suggest(trial)
    trial.set_user_attr("owner", f"{socket.gethostname()}-999999999")
    backend = InlineBackend()
    second = tune("ppo", "CartPole-v1", trials=3, backend=backend, **args)
    trials = trials_of(second.study_dir)
    assert [t.number for t in trials] == [0, 1, 2] and all(t.state.name == "COMPLETE" for t in trials)
    assert {t.number: (t.params, t.value) for t in trials[:2]} == before  # kept, not run again
    assert marker.stat().st_mtime_ns == stamp
    assert "trial_0002__seed=1" in backend.run_ids and trials[2].params == trial.params  # the same trial, continued
    third = resume_tune(second.study_dir, trials=4, backend=InlineBackend(), echo=None)
    assert [t.number for t in trials_of(third.study_dir)] == [0, 1, 2, 3]
    assert read_tune_spec(third.study_dir).trials == 4


def test_two_processes_on_one_journal_file_run_the_trials_together(tmp_path):
    script = tmp_path / "tune_one.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from policygrad.studies.backends.run_task import execute
        from policygrad.tuning.search import tune

        class InlineBackend:
            def run_all(self, tasks, workers, on_result=None):
                return [execute(task) for task in tasks]

        tune("ppo", "CartPole-v1", trials=4, space={SPACE!r}, seeds_per_trial=1, top=1, reeval_seeds=0,
             out_dir=sys.argv[1], backend=InlineBackend(), **{TINY!r})
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "studies")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    study_dir = tmp_path / "studies" / "tune_ppo_CartPole-v1"
    assert (study_dir / JOURNAL_FILE).is_file()
    trials = trials_of(study_dir)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]  # four trials in all, no number twice
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["owner"] for t in trials}) >= 1
    assert (study_dir / "report.md").is_file() and (study_dir / BEST_PRESET).is_file()


def test_an_rdb_storage_url_holds_the_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    result = tune("ppo", "CartPole-v1", trials=2, space=SPACE, seeds_per_trial=1, top=1, reeval_seeds=0,
                  storage=url, out_dir=tmp_path / "studies", backend=InlineBackend(), **TINY)
    assert (tmp_path / "tune.db").is_file() and not (result.study_dir / JOURNAL_FILE).exists()
    assert [t.state.name for t in trials_of(result.study_dir)] == ["COMPLETE", "COMPLETE"]


def test_the_median_pruner_stops_a_trial_below_the_median_between_its_seeds():
    import optuna

    from policygrad.tuning.spec import make_pruner

    study = optuna.create_study(direction="maximize", pruner=make_pruner("median"))
    for value in (100.0, 120.0, 140.0, 160.0, 180.0):  # five completed trials (the pruner's startup)
        trial = study.ask()
        assert not report_seed(trial, 0, value, prune=False)
        assert not report_seed(trial, 1, value / 2, prune=False)
        study.tell(trial, value * 0.75)
    low = study.ask()
    assert report_seed(low, 0, 130.0, prune=True)  # its first seed: 130 < 140, the median of the first seeds
    assert study.trials[-1].intermediate_values == {0: 130.0}
    high = study.ask()
    assert not report_seed(high, 0, 150.0, prune=True)
    # its second seed is step 1, compared with the second seeds (median 70): 60 is below it, but the
    # median pruner takes a trial's best value so far (150): not pruned
    assert not report_seed(high, 1, 60.0, prune=True)
    assert study.trials[-1].intermediate_values == {0: 150.0, 1: 60.0}
    unasked = study.ask()
    assert not report_seed(unasked, 0, 1.0, prune=False)  # after the last seed the pruner is not asked
    few = optuna.create_study(direction="maximize", pruner=make_pruner("median"))
    for value in (100.0, 120.0, 140.0, 160.0):  # four completed trials: too few to prune
        trial = few.ask()
        report_seed(trial, 0, value, prune=False)
        few.tell(trial, value)
    assert not report_seed(few.ask(), 0, 1.0, prune=True)
    none = optuna.create_study(direction="maximize", pruner=make_pruner("none"))
    for value in (100.0, 120.0, 140.0, 160.0, 180.0):
        trial = none.ask()
        report_seed(trial, 0, value, prune=False)
        none.tell(trial, value)
    assert not report_seed(none.ask(), 0, 1.0, prune=True)


def test_a_tuning_prunes_a_trial_below_the_median_after_its_first_seed(tmp_path, monkeypatch):
    """End to end, with the pruner's startup at 2 completed trials: two trials that learn
    (learning_rate 0.003), then one that cannot (1e-6, enqueued): its first seed scores below the
    others', it is told PRUNED, and its second seed never runs."""
    from policygrad.tuning import spec as tune_spec
    from policygrad.tuning.search import run_tune

    monkeypatch.setattr(tune_spec, "PRUNER_STARTUP", 2)
    space = {"learning_rate": {"choices": [0.003, 1e-6]}, "num_steps": 16, "update_epochs": 2, "hidden_sizes": [16]}
    spec = tune_spec.make_tune_spec("ppo", "CartPole-v1", 3, space=space, seeds_per_trial=2, top=1, reeval_seeds=0,
                                    total_steps=2048, eval_every=512, eval_episodes=2)
    study_dir = tmp_path / spec.name
    study_dir.mkdir()
    (study_dir / "tune.json").write_text(json.dumps(spec.to_dict()))
    study = tune_spec.load_optuna_study(spec, open_storage(study_dir, None))
    for lr in (0.003, 0.003, 1e-6):
        study.enqueue_trial({"learning_rate": lr})
    backend = InlineBackend()
    run_tune(spec, tmp_path, 1, backend=backend, echo=None)
    trials = trials_of(study_dir)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert trials[2].params["learning_rate"] == 1e-6 and list(trials[2].intermediate_values) == [0]
    assert trials[2].intermediate_values[0] < trials[0].intermediate_values[0]
    assert "trial_0002__seed=1" in backend.run_ids and "trial_0002__seed=2" not in backend.run_ids
    assert "| pruned |" in (study_dir / "report.md").read_text()


# -- --preset FILE ---------------------------------------------------------------------------------------------
def test_preset_file_sets_fields_and_replaces_the_env_preset(tmp_path):
    import policygrad as pg

    path = tmp_path / "mine.yaml"
    path.write_text("learning_rate: 0.001\nhidden_sizes: [32, 32]\n")
    config = pg.make_config("ppo", env_id="CartPole-v1", preset=str(path), gamma=0.9)
    assert config.preset == str(path) and config.learning_rate == 0.001 and config.hidden_sizes == (32, 32)
    assert config.gamma == 0.9 and config.num_steps == 128  # the caller's value wins; no CartPole preset under it


@pytest.mark.parametrize("text, message", [
    ("learning_rat: 0.001", "'learning_rat' is not a field of PPOConfig"),
    ("learning_rate: abc", "learning_rate='abc' is invalid"),
    ("- 1\n- 2", "expected a mapping of config fields"),
    ("CartPole-v1:\n  learning_rate: 0.001", "a file of presets per environment is not a preset"),
    ("env_id: Pendulum-v1", "env_id cannot be set by a preset"),
    ("learning_rate: [", "not valid YAML"),
    ("!!python/object:os.system\nargs: [echo]", "not valid YAML"),
])
def test_bad_preset_file_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    rc = main(["train", "ppo", "--env", "CartPole-v1", "--preset", str(path), "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_missing_preset_file_is_one_line(tmp_path, capsys):
    rc = main(["train", "ppo", "--preset", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot read it" in err, err


def test_a_run_from_a_preset_file_resumes_and_evaluates_after_the_file_is_deleted(tmp_path, monkeypatch, capsys):
    """The run's records hold every value the file gave: resume, eval and the record itself must not need
    the file again (it used to be read again, relative to the current directory)."""
    monkeypatch.chdir(tmp_path)
    Path("mine.yaml").write_text("learning_rate: 0.0012\nnum_steps: 16\n")
    assert main(["train", "a2c", "--env", "CartPole-v1", "--preset", "mine.yaml", "--run-dir", "run", "--total-steps",
                 "128", "--eval-episodes", "2", "--progress", "false", "--tensorboard", "false"]) == 0
    Path("mine.yaml").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["resume", "../run", "--total-steps", "256"]) == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["config"]["preset"] == "mine.yaml" and record["config"]["learning_rate"] == 0.0012
    assert record["preset_values"] == {"learning_rate": 0.0012, "num_steps": 16}  # kept from the first record
    assert record["config"]["total_steps"] == 256 and len(record["resumes"]) == 1
    assert main(["eval", "../run", "--episodes", "2"]) == 0, capsys.readouterr().err


def test_policygrad_report_rewrites_a_tuning_report_the_same(tuned, capsys):
    result, _ = tuned
    before = (result.study_dir / "report.md").read_text()
    journal = (result.study_dir / JOURNAL_FILE).read_bytes()
    assert main(["report", str(result.study_dir)]) == 0
    assert (result.study_dir / "report.md").read_text() == before
    # Reporting only reads the study: a committed tuning's journal stays byte for byte as it was.
    assert (result.study_dir / JOURNAL_FILE).read_bytes() == journal


def test_tune_help_and_resume_of_nothing(tmp_path, capsys):
    assert main(["tune", "--help"]) == 0 and "--resume STUDY_DIR" in capsys.readouterr().out
    assert main(["tune", "ppo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--objective" in out and "--seeds-per-trial" in out
    rc = main(["tune", "--resume", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    assert rc == 2 and "no tuning here" in err and len(err.strip().splitlines()) == 1, err


GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"
GUIDE_HEADING = "### Tuning many hyperparameters at once: `policygrad tune`"
COMMITTED = GUIDE.parent / "studies" / "tune_ppo_CartPole-v1"


def test_the_guide_quotes_its_committed_tuning_and_the_command_that_made_it():
    """The guide's tuning section quotes the re-evaluation table and the best preset committed in
    docs/studies/tune_ppo_CartPole-v1, and its command makes exactly the tuning tune.json records."""
    import shlex

    from policygrad.cli.parsing import parse_count
    from policygrad.tuning.spec import make_tune_spec

    text = GUIDE.read_text()
    start = text.index(GUIDE_HEADING)
    answer = text[start:text.index("\n## ", start)]
    report = (COMMITTED / "report.md").read_text()
    table = report[report.index("## Re-evaluation on fresh seeds"):report.index("## Hyperparameter importance")]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) >= 4 and all(row in answer for row in rows), "the guide does not quote the re-evaluation table"
    preset = [line for line in (COMMITTED / BEST_PRESET).read_text().splitlines() if not line.startswith("#")]
    assert preset and all(line in answer for line in preset), "the guide does not quote best_preset.yaml"
    for figure in re.findall(r"\]\((studies/[^)]+)\)", answer):
        assert (GUIDE.parent / figure).is_file(), f"the guide shows {figure}, which is not committed"
    [command] = [line for line in answer.splitlines() if line.startswith("policygrad tune ppo ")]
    argv = shlex.split(command, comments=True)
    options = dict(zip(argv[3::2], argv[4::2]))
    spec = make_tune_spec("ppo", options["--env"], int(options["--trials"]),
                          seeds_per_trial=int(options["--seeds-per-trial"]), objective=options["--objective"],
                          total_steps=parse_count(options["--total-steps"]))
    recorded = read_tune_spec(COMMITTED)
    assert spec.identity() == recorded.identity() and spec.trials == recorded.trials
    assert options["--out-dir"] == "docs/studies" and spec.name == COMMITTED.name
    trials = trials_of(COMMITTED)
    assert len(trials) == recorded.trials and all(t.state.is_finished() for t in trials)


def _reeval_rows(fresh: dict[str, list[float]], search: list[float]) -> list[dict[str, str]]:
    order = sorted(fresh, key=lambda t: -sum(fresh[t]) / len(fresh[t]))
    return [{"trial": t, "search_rank": str(i + 1), "search_value": str(search[i]),
             "fresh_value": str(sum(v) / len(v)), "fresh_rank": str(order.index(t) + 1),
             "fresh_scores": " ".join(map(str, v)), "fresh_seeds": "3 4 5", "search_seeds": "1 2",
             "all_seeds_value": ""} for i, (t, v) in enumerate(fresh.items())]


def test_the_conclusion_says_what_to_use_and_what_is_not_established():
    from policygrad.tuning.report import conclusion, reeval_verdict

    assert conclusion([], best_written=False) == "No trial completed: there is nothing to use yet."
    one_seed = _reeval_rows({"7": [480.0], "2": [300.0], "5": [200.0]}, [500.0, 490.0, 480.0])
    text = conclusion(one_seed, best_written=True)
    assert text.startswith("Use best_preset.yaml (trial 7, the search's best). Whether it beats the other 2 "
                           "re-evaluated trial(s) is not established: each ran on 1 fresh seed(s), fewer than the 3")
    # three trials, partly reordered: the rank correlation says how little three trials show
    verdict = reeval_verdict(_reeval_rows({"7": [480.0], "2": [300.0], "5": [400.0]}, [500.0, 490.0, 480.0]))
    assert "Spearman rho 0.50 between search and fresh scores, p 1.000 with 3 trials: this agreement is not " \
           "established" in verdict and "The ranking holds" not in verdict
    # the same order on three trials is not established either: one pairing in 3 (two-sided) is as extreme
    # (scipy's t approximation said p 0 here)
    same = reeval_verdict(_reeval_rows({"7": [480.0], "2": [400.0], "5": [300.0]}, [500.0, 490.0, 480.0]))
    assert "Spearman rho 1.00 between search and fresh scores, p 0.333 with 3 trials: this agreement is not " \
           "established" in same
    enough = _reeval_rows({"7": [480.0, 490.0, 470.0, 485.0, 475.0, 495.0],
                           "2": [100.0, 110.0, 120.0, 105.0, 115.0, 125.0]}, [500.0, 490.0])
    assert conclusion(enough, best_written=True) == (
        "Use best_preset.yaml (trial 7, the search's best). On the fresh seeds: Use trial 7: its fresh score is higher "
        "than every other trial's (Mann-Whitney's test, Holm-corrected). Established: trial 2 is worse than trial 7.")


def test_a_directory_another_process_is_starting_in_is_not_another_tuning(tuned, tmp_path):
    """Two processes starting one tuning together: the second may look while the first's tune.json is a
    hidden temporary (atomic write) beside its locks. That is this tuning starting, not a foreign
    directory (the race that failed test_two_processes_on_one_journal_file_run_the_trials_together)."""
    from policygrad.core.errors import UserInputError
    from policygrad.studies.spec import check_same_study, read_spec
    from policygrad.tuning.spec import check_same_tuning

    result, _ = tuned
    spec = read_tune_spec(result.study_dir)
    starting = tmp_path / "starting"
    (starting / ".owners").mkdir(parents=True)
    for hidden in (".tune.lock", ".tune.json.tmp-4242", ".lock", ".study.json.tmp-4242"):
        (starting / hidden).write_text("")
    assert check_same_tuning(starting, spec) is False
    study_spec = read_spec(Path(__file__).resolve().parents[1] / "docs" / "studies" / "lr_ppo_CartPole-v1")
    assert check_same_study(starting, study_spec) is False
    (starting / "notes.txt").write_text("mine")  # a visible file that is not the record: someone else's folder
    with pytest.raises(UserInputError, match="holds no tune.json"):
        check_same_tuning(starting, spec)
    with pytest.raises(UserInputError, match="holds no study.json"):
        check_same_study(starting, study_spec)
