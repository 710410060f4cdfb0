"""policygrad compare (issue 14): one protocol for every method (policygrad, SB3, random), the study
directory it writes, the pairwise statistics, failures and refusals, and the command line."""

import csv
import json
import sys
import time

import numpy as np
import pytest
from scipy import stats

import policygrad as pg
from policygrad.algos.rollout import evaluation_episodes
from policygrad.cli import main
from policygrad.comparison import methods as cmp
from policygrad.reporting.statistics import holm, letters, pairwise
from policygrad.studies.backends.run_task import execute


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class InProcess:
    """A backend running each task in this process (so that monkeypatches reach it)."""

    def run_all(self, tasks, workers, on_result=None):
        results = []
        for task in tasks:
            results.append(execute(task))
            if on_result:
                on_result(results[-1])
        return results


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """ppo (8 x 128 steps an iteration), sb3:ppo (8 environments) and random, 2 seeds, 2048 steps,
    evaluated every 1024 steps: every method's step marks are 0, 1024, 2048. In this process (the
    worker pool is test_external_runs_go_through_the_worker_pool's)."""
    out = tmp_path_factory.mktemp("compare")
    return pg.compare("CartPole-v1", "ppo,sb3:ppo,random", seeds=2, total_steps=2048, eval_every=1024,
                      eval_episodes=3, out_dir=out, backend=InProcess(), verbose=False)


def test_every_method_is_evaluated_at_the_same_steps_on_the_same_episodes(study):
    assert [r["status"] for r in study.results] == ["done"] * 6
    assert [r["method"] for r in study.results] == ["ppo", "ppo", "sb3:ppo", "sb3:ppo", "random", "random"]
    for row in study.results:
        evals = read_csv(study.study_dir / "runs" / row["run_id"] / "evals.csv")
        assert list(evals[0]) == ["global_step", "wall_seconds", "eval_mean", "eval_std", "eval_min", "eval_max",
                                  "episodes"]
        assert [int(e["global_step"]) for e in evals] == [0, 1024, 2048], row["run_id"]
        assert [int(e["episodes"]) for e in evals] == [3, 3, 3]
        final = json.loads((study.study_dir / "runs" / row["run_id"] / "eval.json").read_text())["mean"]
        assert float(row["final_eval"]) == pytest.approx(final) == pytest.approx(float(evals[-1]["eval_mean"]))
        assert float(row["wall_seconds"]) >= 0
    spec = json.loads((study.study_dir / "study.json").read_text())
    assert spec["kind"] == "compare" and spec["vary"] == {"method": ["ppo", "sb3:ppo", "random"]}
    assert spec["methods"]["sb3:ppo"]["hyperparameters"]["n_steps"] == 32  # the zoo's CartPole-v1 PPO
    assert "hyperparams/ppo.yml" in spec["methods"]["sb3:ppo"]["source"]
    assert spec["methods"]["ppo"]["config"]["gamma"] == 0.98  # policygrad's preset
    assert (study.study_dir / "report.html").is_file()


def test_external_runs_go_through_the_worker_pool(tmp_path):
    result = pg.compare("CartPole-v1", "random", seeds=2, total_steps=600, eval_every=300, eval_episodes=2,
                        workers=2, out_dir=tmp_path, verbose=False)
    assert [r["status"] for r in result.results] == ["done", "done"]
    evals = read_csv(result.study_dir / "runs" / "method=random__seed=2" / "evals.csv")
    assert [int(e["global_step"]) for e in evals] == [0, 300, 600]


def test_the_adapters_evaluation_plays_the_trainers_evaluation_episodes(study):
    """The same policy evaluated by play_episodes (sb3, random) and by the trainer's
    evaluation_episodes: the same environments from the same seeds, the same returns."""
    agent = pg.load(study.study_dir / "runs" / "method=ppo__seed=1", trust_env=True)
    net = agent.network
    ours = sorted(e.ret for e in evaluation_episodes(net, "CartPole-v1", 5, deterministic=True, seed=10_000))

    def act(obs, mask):
        import torch

        with torch.no_grad():
            return net.to_env(net.act(torch.as_tensor(obs), True))

    assert sorted(cmp.play_episodes(act, "CartPole-v1", 5, seed=10_000)) == pytest.approx(ours)


def test_evaluation_time_is_off_the_clock(tmp_path, monkeypatch):
    def slow(act, env_id, episodes, seed):
        time.sleep(0.2)
        return [1.0] * episodes

    monkeypatch.setattr(cmp, "play_episodes", slow)
    protocol = {"env_id": "CartPole-v1", "eval_every": 100, "eval_episodes": 2, "eval_seed": 10_000}
    writer = cmp.EvalWriter(tmp_path, protocol)
    for step in (0, 100):
        writer.run(step, lambda obs, mask: obs)
    writer.finish(200, lambda obs, mask: obs)
    evals = read_csv(tmp_path / "evals.csv")
    assert [int(e["global_step"]) for e in evals] == [0, 100, 200]
    assert all(float(e["wall_seconds"]) < 0.1 for e in evals)  # 0.6 s of evaluations excluded
    assert json.loads((tmp_path / "eval.json").read_text())["mean"] == 1.0


def test_an_sb3_run_leaves_no_folder_in_the_temporary_directory(tmp_path, monkeypatch):
    """SB3's default logger makes an empty SB3-<time> folder in the temporary directory at every learn();
    a comparison's SB3 runs write only into their run directory."""
    import tempfile

    pytest.importorskip("stable_baselines3", reason="the bench extra (pip install 'policygrad[bench]')")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    settings = {"algo": "ppo", "hyperparameters": {"n_steps": 32, "batch_size": 32, "n_epochs": 1}}
    protocol = {"env_id": "CartPole-v1", "seed": 0, "total_steps": 64, "eval_every": 64, "eval_episodes": 1,
                "eval_seed": 10_000}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cmp.run_sb3(run_dir, settings, protocol)
    assert [int(e["global_step"]) for e in read_csv(run_dir / "evals.csv")] == [0, 64]
    assert [p.name for p in temp.iterdir() if p.name.startswith("SB3-")] == []


def test_pairwise_statistics_against_scipy():
    groups = {"a": [10.0, 11.0, 12.0, 13.0], "b": [1.0, 2.0, 2.5, 3.0], "c": [1.5, 2.0, 3.0, 2.2]}
    pairs = pairwise(groups, test="welch")  # 4 seeds: Mann-Whitney's smallest p (0.029) cannot pass Holm
    assert [(c.value, c.baseline) for c in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    raw = [stats.ttest_ind(groups[c.value], groups[c.baseline], equal_var=False).pvalue for c in pairs]
    mw = [stats.mannwhitneyu(groups[c.value], groups[c.baseline], alternative="two-sided").pvalue for c in pairs]
    for c, p, m in zip(pairs, raw, mw):
        assert c.welch_p == pytest.approx(p) and c.mannwhitney_p == pytest.approx(m)
    assert [c.welch_p_holm for c in pairs] == pytest.approx(holm(raw))
    order = sorted(range(3), key=lambda i: raw[i])  # Holm by hand: m = 3
    by_hand = [0.0] * 3
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[i]))
        by_hand[i] = running
    assert [c.welch_p_holm for c in pairs] == pytest.approx(by_hand)
    x, y = np.array(groups["b"]), np.array(groups["c"])
    assert pairs[2].prob_improvement == pytest.approx(np.mean((x[:, None] > y) + 0.5 * (x[:, None] == y)))
    # a is significantly better than both; b and c are not separated: they share a letter
    assert letters(groups, pairs) == [("a", "a"), ("b", "b"), ("b", "c")]  # b, c: by IQM (2.25, 2.1)
    assert all(c.significant for c in pairs[:2]) and not pairs[2].significant


def test_a_failing_method_is_recorded_and_the_comparison_completes(tmp_path, monkeypatch):
    def broken(run_dir, settings, protocol):
        if protocol["seed"] == 2:
            raise FloatingPointError("diverged")
        cmp.EvalWriter(run_dir, protocol).finish(protocol["total_steps"], lambda obs, mask: np.zeros(len(obs), int))

    monkeypatch.setattr(cmp, "run_random", broken)
    result = pg.compare("CartPole-v1", "random", seeds=2, total_steps=1000, eval_every=500, eval_episodes=2,
                        out_dir=tmp_path, backend=InProcess(), verbose=False)
    assert [(r["seed"], r["status"]) for r in result.results] == [(1, "done"), (2, "failed")]
    assert "FloatingPointError: diverged" in result.results[1]["error"]
    assert "diverged" in (result.study_dir / "runs" / "method=random__seed=2" / "error.txt").read_text()
    assert "Failed runs" in (result.study_dir / "report.md").read_text()
    monkeypatch.undo()  # running it again retries the failed run only
    again = pg.compare("CartPole-v1", "random", seeds=2, total_steps=1000, eval_every=500, eval_episodes=2,
                       out_dir=tmp_path, backend=InProcess(), resume=True, verbose=False)
    assert [r["status"] for r in again.results] == ["done", "done"]
    assert again.results[0]["final_eval"] == result.results[0]["final_eval"]  # kept, not rerun
    assert [int(e["global_step"]) for e in read_csv(again.study_dir / "runs" / "method=random__seed=2" /
                                                   "evals.csv")] == [0, 500, 1000]


def test_a_refused_method_stops_everything_before_any_run(tmp_path, capsys):
    code = main(["compare", "--env", "Pendulum-v1", "--methods", "ppo,sb3:dqn,sb3:sac,random", "--seeds", "1",
                 "--total-steps", "2000", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "sb3:dqn cannot run on Pendulum-v1: it needs a Discrete action space, not Box" in err
    assert "sb3:sac" not in err
    assert list(tmp_path.iterdir()) == []
    code = main(["compare", "--env", "CartPole-v1", "--methods", "sb3:td3,nope", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 2 and "sb3:td3 cannot run on CartPole-v1" in err[0] and "nope" in err[1]


def test_sb3_missing_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # import stable_baselines3 -> ImportError
    code = main(["compare", "--env", "CartPole-v1", "--methods", "ppo,sb3:dqn", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'policygrad[compare]'" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_dry_run_lists_the_runs_and_writes_nothing(tmp_path, capsys):
    code = main(["compare", "--env", "CartPole-v1", "--methods", "reinforce,a2c,sb3:dqn,random", "--seeds", "2",
                 "--total-steps", "4000", "--eval-every", "1000", "--shared", "gamma=0.99", "--out-dir",
                 str(tmp_path), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "8 runs" in out and "method=sb3_dqn__seed=2" in out and "method=reinforce__seed=1" in out
    assert "hyperparams/dqn.yml" in out
    assert list(tmp_path.iterdir()) == []
    comparison = cmp.make_comparison("CartPole-v1", "reinforce,sb3:dqn", 1, 4000, shared={"gamma": 0.99,
                                                                                           "num_envs": 2})
    assert comparison.spec.methods["reinforce"]["config"]["gamma"] == 0.99
    assert comparison.spec.methods["sb3:dqn"]["hyperparameters"]["gamma"] == 0.99
    assert any("num_envs not applied" in n for n in comparison.spec.notes)


def test_a_comparison_sigkilled_mid_way_finishes_when_run_again(tmp_path):
    """SIGKILL the comparison's process once a run has finished; the same command run again keeps the
    finished runs, redoes the others (policygrad runs resume from their checkpoints, SB3 runs restart)
    and ends with the rows an uninterrupted comparison gives (policygrad and random exactly)."""
    import os
    import signal
    import subprocess

    # one seed a method (three runs, two at a time): what is tested is the kill and the resume, not the seeds
    args = ["compare", "--env", "CartPole-v1", "--methods", "ppo,sb3:a2c,random", "--seeds", "1",
            "--total-steps", "4096", "--eval-every", "1024", "--eval-episodes", "2", "--workers", "2"]
    reference = main([*args, "--out-dir", str(tmp_path / "reference")])
    assert reference == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "policygrad.cli", *args, "--out-dir", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while not list((killed / "compare_CartPole-v1" / "runs").glob("*/eval.json")):  # one run finished
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert main([*args, "--out-dir", str(killed)]) == 0
    drop = ("wall_seconds",)
    again = [{k: v for k, v in r.items() if k not in drop}
             for r in read_csv(killed / "compare_CartPole-v1" / "results.csv")]
    expected = [{k: v for k, v in r.items() if k not in drop}
                for r in read_csv(tmp_path / "reference" / "compare_CartPole-v1" / "results.csv")]
    assert [r["run_id"] for r in again] == [r["run_id"] for r in expected]
    assert all(r["status"] == "done" for r in again)
    assert [r for r in again if r["method"] != "sb3:a2c"] == [r for r in expected if r["method"] != "sb3:a2c"]
