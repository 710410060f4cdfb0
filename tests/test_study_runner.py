"""Studies, the runner's half (issue 13): the grid and its run ids, spec validation (exit 2 before any
run), periodic deterministic evaluations (evals.csv), results.csv, and the reliability promises: a
study SIGKILLed at any moment and run again ends with the results of an uninterrupted one, a failing
run is recorded and the study goes on, a dead worker's run is retried once."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import policygrad as pg
from policygrad.algos.rollout import evaluation_episodes
from policygrad.cli import main
from policygrad.studies.grid import expand
from policygrad.studies.named import named_spec
from policygrad.studies.results import area_under_curve
from policygrad.studies.spec import make_spec, read_spec, write_spec

TESTS = Path(__file__).parent
FAST = dict(progress=False, tensorboard=False, eval_episodes=3)
COLUMNS = ["run_id", "learning_rate", "seed", "status", "final_eval", "auc", "steps_to_threshold", "wall_seconds",
           "error"]
# The study every reliability test runs: PPO on CartPole, 2 learning rates x 2 seeds, 6k steps each
# (about a second a run), periodic checkpoints every 1024 steps so that a killed run has one to resume.
SWEEP = ["sweep", "ppo", "--env", "CartPole-v1", "--vary", "learning_rate=1e-3,3e-3", "--seeds", "2",
         "--total-steps", "6k", "--eval-every", "1000", "--eval-episodes", "3", "--threshold", "150",
         "--checkpoint-every", "1024", "--workers", "2", "--name", "lr"]


def read_rows(path: Path, drop=()) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def cli(args, cwd=TESTS, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "policygrad.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted study, through the command line (in-process: main() spawns the workers)."""
    out = tmp_path_factory.mktemp("reference")
    assert main([*SWEEP, "--out-dir", str(out)]) == 0
    return out / "lr"


# -- the grid and the spec ------------------------------------------------------------------------------------
def test_grid_expands_in_spec_order_with_deterministic_ids_and_configs(tmp_path):
    spec = make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-3, 3e-3], "hidden_sizes": ["64x64", [32]]},
                     seeds=[3, 7], total_steps=2000, fixed={"ent_coef": 0.01})
    runs = expand(spec)
    assert [r.run_id for r in runs] == [
        "learning_rate=0.001__hidden_sizes=64x64__seed=3", "learning_rate=0.001__hidden_sizes=64x64__seed=7",
        "learning_rate=0.001__hidden_sizes=32__seed=3", "learning_rate=0.001__hidden_sizes=32__seed=7",
        "learning_rate=0.003__hidden_sizes=64x64__seed=3", "learning_rate=0.003__hidden_sizes=64x64__seed=7",
        "learning_rate=0.003__hidden_sizes=32__seed=3", "learning_rate=0.003__hidden_sizes=32__seed=7"]
    cfg = runs[2].config
    assert (cfg.learning_rate, cfg.hidden_sizes, cfg.seed, cfg.ent_coef) == (1e-3, (32,), 3, 0.01)
    assert (cfg.total_steps, cfg.eval_every, cfg.eval_episodes) == (2000, 100, 10)  # eval_every: total_steps // 20
    assert (cfg.torch_threads, cfg.progress, cfg.tensorboard, cfg.preset) == (1, False, False, "CartPole-v1")
    assert spec.name == "ppo_CartPole-v1_learning_rate_hidden_sizes"
    # seeds N -> 1..N; no varied field: one run per seed
    assert [r.run_id for r in expand(make_spec("a2c", "CartPole-v1", None, 3, 1000))] == ["seed=1", "seed=2", "seed=3"]
    # study.json round trip keeps the grid's order (gamma before learning_rate here, not alphabetical)
    ordered = make_spec("a2c", "CartPole-v1", {"gamma": [0.9, 0.99], "learning_rate": [1e-3]}, 2, 1000)
    write_spec(tmp_path, ordered)
    back = read_spec(tmp_path)
    assert back.identity() == ordered.identity() and list(back.vary) == ["gamma", "learning_rate"]
    assert [r.run_id for r in expand(back)] == [r.run_id for r in expand(ordered)]


def test_named_studies_expand_to_grids_the_algorithm_accepts():
    lr = named_spec("lr", "ppo", "CartPole-v1")
    assert lr.vary == {"learning_rate": [0.00025, 0.00079, 0.0025, 0.0079]} and lr.seeds == [1, 2, 3, 4, 5]
    norm = named_spec("reward-norm", "ppo", "CartPole-v1", seeds=1)
    assert norm.vary["reward_norm"] == ["none", "scale", "standardize", "popart"]
    assert norm.adjust == [{"if": {"reward_norm": "standardize"}, "set": {"norm_adv": False}}]
    configs = {r.values["reward_norm"]: r.config for r in expand(norm)}
    assert configs["standardize"].norm_adv is False and configs["popart"].norm_adv is True
    a3c = named_spec("reward-norm", "a3c", "CartPole-v1", seeds=1)
    assert a3c.vary["reward_norm"] == ["none", "scale"] and any("popart left out" in n for n in a3c.notes)
    batch = expand(named_spec("batch", "ppo", "CartPole-v1", seeds=1))
    assert [(r.config.num_steps, r.config.minibatch_size) for r in batch] == [(32, 256), (64, 256), (128, 256),
                                                                              (256, 256)]
    reinforce = expand(named_spec("batch", "reinforce", "CartPole-v1", seeds=1))
    assert [(r.config.episodes_per_update, r.config.num_envs) for r in reinforce] == [(2, 2), (4, 4), (8, 8), (16, 8)]
    arch = named_spec("architecture", "a2c", "CartPole-v1", seeds=1)
    assert arch.vary["hidden_sizes"] == [(32,), (64, 64), (256, 256), (64, 64, 64)]


@pytest.mark.parametrize("args,message", [
    (["--vary", "learnig_rate=0.1"], "'learnig_rate' is not a field of PPOConfig. Did you mean learning_rate"),
    (["--vary", "learning_rate=fast"], "--vary learning_rate='fast': expected a number"),
    (["--vary", "hidden_sizes=64x64,big"], "--vary hidden_sizes='big': expected widths such as 64x64"),
    (["--vary", "learning_rate=1e-3", "--num-envs", "many"], "argument --num-envs"),
    (["--vary", "reward_norm=none,standardize"], "grid point reward_norm=standardize: reward_norm='standardize' "
                                                  "is invalid"),
    (["--vary", "num_minibatches=3,4"], "grid point num_minibatches=3: num_minibatches=3 is invalid"),
    (["--vary", "learning_rate="], "vary learning_rate has no values: the grid is empty"),
    (["--vary", "gamma=0.9,0.9"], "vary gamma lists 0.9 twice"),
    (["--vary", "learning_rate=1e-3", "--seeds", "0"], "the grid is empty"),
    (["--vary", "seed=1,2"], "vary seed: a study sets seed itself; use the study's seeds (--seeds)"),
    (["--vary", "learning_rate=1e-3", "--seed", "4"], "fixed seed: a study sets seed itself"),
    (["--vary", "learning_rate=1e-3", "--name", "../x"], "study name '../x' is invalid"),
])
def test_bad_specs_exit_2_with_one_line_before_any_run(tmp_path, capsys, args, message):
    code = main(["sweep", "ppo", "--env", "CartPole-v1", "--total-steps", "1000", "--out-dir", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())  # nothing written, nothing ran


def test_a_study_directory_holding_another_study_is_refused(reference, capsys):
    other = [a if a != "learning_rate=1e-3,3e-3" else "learning_rate=1e-3,1e-2" for a in SWEEP]
    before = {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()}
    assert main([*other, "--out-dir", str(reference.parent)]) == 2
    err = capsys.readouterr().err
    assert "holds a different study (vary:" in err and "policygrad sweep --resume" in err and err.count("\n") == 1
    assert before == {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="vary learning_rate has no values"):
        pg.sweep("ppo", "CartPole-v1", vary={"learning_rate": []}, out_dir=reference.parent)


# -- periodic evaluations --------------------------------------------------------------------------------------
def test_evals_csv_rows_at_each_multiple_from_fixed_seeds_and_nothing_else_changes(tmp_path):
    cfg = pg.make_config("a2c", total_steps=1000, eval_every=300, **FAST)  # 8 envs x 5 steps: 40 a batch
    plain = pg.train(cfg.replace(eval_every=0), run_dir=tmp_path / "plain")
    run = pg.train(cfg, run_dir=tmp_path / "evals")
    rows = read_rows(run.run_dir / "evals.csv")
    assert list(rows[0]) == ["global_step", "wall_seconds", "eval_mean", "eval_std", "eval_min", "eval_max",
                             "episodes"]
    assert [int(r["global_step"]) for r in rows] == [0, 320, 600, 920, 1000]  # first boundary at or past each
    assert all(r["episodes"] == "3" for r in rows)
    clocks = [float(r["wall_seconds"]) for r in rows]
    assert clocks == sorted(clocks)
    assert not (plain.run_dir / "evals.csv").exists()
    # evaluating draws from nothing the run uses: the same weights with and without
    a, b = plain.agent.network.state_dict(), run.agent.network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the same policy from the same fixed seeds: the same returns, every time, and the same as eval.json
    first, second = (evaluation_episodes(run.agent.network, "CartPole-v1", 3, seed=cfg.eval_seed) for _ in range(2))
    assert [e.ret for e in first] == [e.ret for e in second]
    assert float(rows[-1]["eval_mean"]) == run.evaluation.mean == sum(e.ret for e in first) / 3
    assert area_under_curve([(0, 0.0), (10, 10.0), (20, 10.0)]) == 7.5


def test_a3c_evaluates_in_its_parent_from_the_shared_network(tmp_path):
    cfg = pg.make_config("a3c", total_steps=1200, num_workers=1, log_every=200, eval_every=400, **FAST)
    run = pg.train(cfg, run_dir=tmp_path / "a3c")
    steps = [int(r["global_step"]) for r in read_rows(run.run_dir / "evals.csv")]
    assert steps[0] == 0 and steps[-1] == run.global_step >= 1200 and len(steps) >= 4 and steps == sorted(steps)


# -- a study end to end ---------------------------------------------------------------------------------------
def test_a_tiny_study_end_to_end_through_the_cli(reference):
    spec = json.loads((reference / "study.json").read_text())
    assert spec["vary"] == {"learning_rate": [0.001, 0.003]} and spec["seeds"] == [1, 2]
    rows = read_rows(reference / "results.csv")
    assert list(rows[0]) == COLUMNS
    assert [r["run_id"] for r in rows] == ["learning_rate=0.001__seed=1", "learning_rate=0.001__seed=2",
                                           "learning_rate=0.003__seed=1", "learning_rate=0.003__seed=2"]
    for row in rows:
        run = reference / "runs" / row["run_id"]
        assert row["status"] == "done" and row["error"] == ""
        assert float(row["final_eval"]) == json.loads((run / "eval.json").read_text())["mean"]
        evals = [(int(r["global_step"]), float(r["eval_mean"])) for r in read_rows(run / "evals.csv")]
        assert [s for s, _ in evals] == [0, 1024, 2048, 3072, 4096, 5120, 6144]
        assert float(row["auc"]) == area_under_curve(evals)
        reached = [s for s, m in evals if m >= 150]
        assert row["steps_to_threshold"] == (str(reached[0]) if reached else "")
        assert float(row["wall_seconds"]) > 0
        config = json.loads((run / "config.json").read_text())["config"]
        assert (config["seed"], config["torch_threads"], config["progress"]) == (int(row["seed"]), 1, False)
    # a finished study keeps no lock files, in its folder or its runs'
    assert sorted(p for p in reference.rglob(".lock*")) == []
    # a finished study run again keeps every run
    mtimes = {p: p.stat().st_mtime_ns for p in (reference / "runs").rglob("eval.json")}
    assert main(["sweep", "--resume", str(reference)]) == 0
    assert mtimes == {p: p.stat().st_mtime_ns for p in (reference / "runs").rglob("eval.json")}
    assert read_rows(reference / "results.csv") == rows


def test_a_study_sigkilled_mid_run_finishes_identically_when_run_again(reference, tmp_path):
    proc = cli([*SWEEP, "--out-dir", str(tmp_path)], start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "lr" / "runs").glob("*/checkpoints/latest")):  # a run is part way
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # the study's process only: its workers notice and stop
    proc.wait()
    assert not (tmp_path / "lr" / "results.csv").exists() or len(read_rows(tmp_path / "lr" / "results.csv")) < 4
    assert main(["sweep", "--resume", str(tmp_path / "lr")]) == 0
    resumed = [p.parent.name for p in (tmp_path / "lr" / "runs").glob("*/config.json")
               if json.loads(p.read_text()).get("resumes")]
    assert resumed  # at least one run went on from its periodic checkpoint
    assert read_rows(tmp_path / "lr" / "results.csv", drop=("wall_seconds",)) == \
        read_rows(reference / "results.csv", drop=("wall_seconds",))


def test_a_failing_run_is_recorded_and_a_dead_worker_retried_once(tmp_path, monkeypatch, capsys):
    # faulty_envs.FailsBySeed: seed 2 raises, seed 3 kills its worker once, seed 4 kills it every time
    monkeypatch.setenv("FAULTY_ENVS_MARKERS", str(tmp_path))  # the spawned workers inherit it (and sys.path)
    code = main(["sweep", "a2c", "--env", "faulty_envs:FailsBySeed", "--seeds", "4", "--total-steps", "400",
                 "--num-envs", "1", "--eval-every", "100", "--eval-episodes", "2", "--workers", "2",
                 "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1, out  # the study completed; some runs failed
    rows = {r["seed"]: r for r in read_rows(tmp_path / "a2c_faulty_envs_FailsBySeed_seeds" / "results.csv")}
    assert [rows[s]["status"] for s in "1234"] == ["done", "failed", "done", "failed"]
    assert rows["2"]["error"] == "RuntimeError: boom: the environment failed on purpose"
    assert rows["2"]["final_eval"] == "" and rows["1"]["final_eval"] != ""
    assert "killed by SIGKILL" in rows["4"]["error"] and "2 times" in rows["4"]["error"]
    assert "seed=3: its worker process died (killed by SIGKILL); retrying it" in out
    assert "boom" in (tmp_path / "a2c_faulty_envs_FailsBySeed_seeds" / "runs" / "seed=2" / "error.txt").read_text()


def process_id_task(task):
    """A LocalBackend task function (importable by the spawned workers): which process ran the task."""
    from policygrad.studies.backends.run_task import DONE, TaskResult

    return TaskResult(task.run_id, DONE, str(os.getpid()))


def test_the_local_backend_keeps_its_workers_between_calls_until_closed():
    """A tuning calls run_all once per generation: its workers are spawned once, not per call."""
    from policygrad.studies.backends.local import LocalBackend
    from policygrad.studies.backends.run_task import RunTask

    backend = LocalBackend(fn=process_id_task, echo=None)
    tasks = [RunTask(f"t{i}", "", None) for i in range(4)]
    try:
        first = {r.error for r in backend.run_all(tasks, 2)}
        second = {r.error for r in backend.run_all(tasks, 2)}
        assert len(first) == 2 and second == first  # the same two processes ran both calls
        fewer = {r.error for r in backend.run_all(tasks[:2], 1)}
        assert len(fewer) == 1 and fewer < first and len(backend.pool) == 1  # the extra worker was stopped
    finally:
        processes = [worker.proc for worker in backend.pool]
        backend.close()
    for process in processes:
        process.join(30)
        assert not process.is_alive() and process.exitcode == 0
    assert backend.pool == []


# -- the worker budget: an A3C run's processes count --------------------------------------------------------
def interval_task(task):
    """A LocalBackend task function: when it ran (start and end, on the machine's monotonic clock)."""
    from policygrad.studies.backends.run_task import DONE, TaskResult

    start = time.monotonic()
    time.sleep(1.5)
    return TaskResult(task.run_id, DONE, f"{start} {time.monotonic()}")


def test_the_scheduler_counts_an_a3c_runs_processes_in_the_budget():
    from policygrad.studies.backends.run_task import DONE, RunTask, TaskResult
    from policygrad.studies.backends.scheduler import Scheduler, budget_notes

    a3c = pg.A3CConfig(num_workers=2)
    wide = pg.A3CConfig(num_workers=3)
    tasks = [RunTask("a", "", None), RunTask("b", "", a3c), RunTask("c", "", None), RunTask("d", "", wide)]
    assert [t.processes for t in tasks] == [1, 2, 1, 3]
    schedule = Scheduler(tasks, workers=2, retries=0)
    assert schedule.next_task().run_id == "a"  # 1 of 2 busy: b (2 processes) waits, c fits
    assert schedule.next_task().run_id == "c"
    assert schedule.next_task() is None
    schedule.finish(TaskResult("a", DONE))
    assert schedule.next_task() is None  # 1 busy: b still does not fit
    schedule.finish(TaskResult("c", DONE))
    assert schedule.next_task().run_id == "b" and schedule.busy == 2 and schedule.next_task() is None
    schedule.finish(TaskResult("b", DONE))
    assert schedule.next_task().run_id == "d" and schedule.busy == 3  # wider than the budget: alone
    assert not schedule.pending
    notes = budget_notes(tasks, 2)
    assert any("take 2 of the 2 workers" in n for n in notes) and any("each runs alone" in n for n in notes)


def test_a_study_with_k_workers_never_trains_in_more_than_k_processes(tmp_path):
    """Through the local backend: an A3C run of num_workers=2 takes both of 2 workers (never beside
    another run); with 3 workers it runs beside one single-process run."""
    from policygrad.studies.backends.local import LocalBackend
    from policygrad.studies.backends.run_task import RunTask

    a3c = pg.A3CConfig(num_workers=2)
    tasks = [RunTask("one", "", None), RunTask("a3c", "", a3c), RunTask("two", "", None), RunTask("three", "", None)]
    backend = LocalBackend(fn=interval_task, echo=None)
    cost = {t.run_id: t.processes for t in tasks}
    try:
        for workers in (2, 3):  # the second call reuses the first one's worker processes
            spans = {r.run_id: tuple(map(float, r.error.split())) for r in backend.run_all(tasks, workers)}
            for moment in sorted(start for start, _ in spans.values()):
                busy = sum(cost[rid] for rid, (start, end) in spans.items() if start <= moment < end)
                assert busy <= workers, (workers, spans)
            beside = [rid for rid, (s, e) in spans.items() if rid != "a3c" and s < spans["a3c"][1] and
                      spans["a3c"][0] < e]
            assert (beside == []) if workers == 2 else (len(beside) >= 1), (workers, spans)
    finally:
        backend.close()


# -- budgets and dry runs checked before any run -----------------------------------------------------------------
def test_too_few_steps_for_one_iteration_is_refused_before_any_run(tmp_path, capsys):
    code = main(["study", "lr", "--algo", "ppo", "--env", "CartPole-v1", "--total-steps", "1", "--seeds", "2",
                 "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "total_steps=1 is fewer than one iteration of ppo (num_envs 8 x num_steps 128 = 1024 steps)" in err
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
    with pytest.raises(ValueError, match="total_steps=4 is fewer than one iteration of reinforce"):
        expand(make_spec("reinforce", "CartPole-v1", {"gamma": [0.9]}, seeds=1, total_steps=4))
    assert expand(make_spec("reinforce", "CartPole-v1", {"gamma": [0.9]}, seeds=1, total_steps=8))


def test_a_dry_run_makes_the_real_runs_checks(tmp_path, capsys):
    base = ["sweep", "ppo", "--env", "CartPole-v1", "--vary", "learning_rate=1e-3", "--seeds", "1",
            "--total-steps", "2048", "--out-dir", str(tmp_path), "--dry-run"]
    assert main([*base, "--workers", "0"]) == 2
    assert "workers=0 is invalid: expected an integer >= 1" in capsys.readouterr().err
    assert main([*base, "--total-steps", "10"]) == 2
    assert "fewer than one iteration" in capsys.readouterr().err
    other = make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-2]}, seeds=1, total_steps=2048)
    (tmp_path / other.name).mkdir()
    write_spec(tmp_path / other.name, other)
    assert main(base) == 2  # the directory the real run would use holds another study
    assert "holds a different study (vary:" in capsys.readouterr().err
    assert main(base[:-1] + ["--name", "fresh", "--dry-run"]) == 0
    assert "1 runs of ppo" in capsys.readouterr().out and not (tmp_path / "fresh").exists()


@pytest.mark.slow  # two sweeps in worker processes: ~40 s on a loaded machine
def test_the_report_path_is_printed_and_a_report_that_fails_exits_non_zero(tmp_path, capsys, monkeypatch):
    args = ["sweep", "a2c", "--env", "CartPole-v1", "--vary", "gamma=0.9", "--seeds", "1", "--total-steps", "100",
            "--num-envs", "1", "--eval-every", "50", "--eval-episodes", "1", "--workers", "1", "--out-dir",
            str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    report = tmp_path / "a2c_CartPole-v1_gamma" / "report.html"
    assert f"report: {report}" in out and report.is_file()

    from policygrad.studies import report as report_module

    def broken(study_dir, baseline=None):
        raise ValueError("Data cannot be log-scaled")

    monkeypatch.setattr(report_module, "write_report", broken)
    code = main([*args[:-1], str(tmp_path / "again")])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "report not written" in out and "Data cannot be log-scaled" in out
    assert "the report was not written: the runs and" in out and "policygrad report" in out


def test_the_primary_test_and_minimum_effect_come_from_the_command_line(tmp_path, capsys):
    from policygrad.comparison.methods import make_comparison

    base = ["sweep", "ppo", "--env", "CartPole-v1", "--vary", "learning_rate=1e-3", "--seeds", "1",
            "--total-steps", "2048", "--out-dir", str(tmp_path), "--dry-run"]
    assert main([*base, "--test", "welch", "--min-effect", "0.5"]) == 0
    assert main([*base, "--test", "t"]) == 2
    assert "test='t' is not a test: expected one of mannwhitney, welch" in capsys.readouterr().err
    assert main(["study", "lr", "--algo", "ppo", "--env", "CartPole-v1", "--total-steps", "2048", "--min-effect",
                 "0", "--out-dir", str(tmp_path), "--dry-run"]) == 2
    assert "min_effect=0.0 is invalid: expected a number > 0" in capsys.readouterr().err
    assert main(["compare", "--env", "CartPole-v1", "--methods", "random", "--seeds", "1", "--total-steps", "1000",
                 "--test", "wilcoxon", "--out-dir", str(tmp_path), "--dry-run"]) == 2
    spec = make_comparison("CartPole-v1", "ppo,random", 1, 2048, test="welch", min_effect=2.0).spec
    assert (spec.to_dict()["test"], spec.to_dict()["min_effect"]) == ("welch", 2.0)
    named = named_spec("gamma", "ppo", "CartPole-v1", seeds=3, total_steps=2048, test="welch")
    assert named.test == "welch"


def test_evaluations_are_recorded_as_they_will_be_made(tmp_path, capsys):
    spec = make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-3]}, seeds=1, total_steps=4096, eval_every=100)
    expand(spec)
    assert spec.notes == ["eval_every 100 is shorter than one iteration (1024 steps): evaluations are made at "
                          "iteration boundaries, so every 1024 steps where an iteration is 1024 steps"]
    expand(spec)
    assert len(spec.notes) == 1  # a resumed study does not repeat it
    with pytest.raises(ValueError, match="eval_every=5000 is more than total_steps=4096: no evaluation"):
        expand(make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-3]}, seeds=1, total_steps=4096,
                         eval_every=5000))
    assert main(["sweep", "ppo", "--env", "CartPole-v1", "--vary", "learning_rate=1e-3", "--seeds", "1",
                 "--total-steps", "4096", "--eval-every", "100", "--out-dir", str(tmp_path), "--dry-run"]) == 0
    assert "note: eval_every 100 is shorter than one iteration (1024 steps)" in capsys.readouterr().out
