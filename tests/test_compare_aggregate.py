"""Comparisons aggregated across environments (issue 14): normalization, IQM, optimality gap and
performance profiles with stratified bootstrap intervals, the report and its CLI."""

import json
import math

import numpy as np
import pytest
from test_study_report import assert_readable, make_study, render_in_chromium

from policygrad.cli import main
from policygrad.reporting.statistics import letters, pairwise
from policygrad.studies.aggregate import TAUS, aggregate, aggregate_method, normalize, write_aggregate_report
from policygrad.studies.results import load_study

# env A: random mean 10, best ppo mean 110 (span 100); env B: random mean -500, best a2c mean -100 (span 400)
ENV_A = {("ppo",): [100.0, 110.0, 120.0], ("a2c",): [60.0, 60.0, 60.0], ("random",): [0.0, 10.0, 20.0]}
ENV_B = {("ppo",): [-100.0, -200.0, -300.0], ("a2c",): [-50.0, -100.0, -150.0],
         ("random",): [-500.0, -500.0, -500.0]}
N = 999  # resamples: enough for the tests, fast


def comparison(root, env_id, finals):
    methods = [p[0] for p in finals]
    path = make_study(root, {"method": methods}, finals, threshold=None)
    spec = json.loads((path / "study.json").read_text())
    spec.update({"kind": "compare", "env_id": env_id, "algo": "compare", "fixed": {}, "adjust": []})
    (path / "study.json").write_text(json.dumps(spec))
    return path


@pytest.fixture
def two_envs(tmp_path):
    return [comparison(tmp_path / "compare_A", "CartPole-v1", ENV_A),
            comparison(tmp_path / "compare_B", "Acrobot-v1", ENV_B)]


def test_normalization_by_hand(two_envs):
    a = normalize(load_study(two_envs[0]))
    assert (a.env, a.random_mean, a.best_method, a.best_mean) == ("CartPole-v1", 10.0, "ppo", 110.0)
    np.testing.assert_allclose(a.normalized["ppo"], [0.9, 1.0, 1.1])
    np.testing.assert_allclose(a.normalized["a2c"], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(a.normalized["random"], [-0.1, 0.0, 0.1])
    b = normalize(load_study(two_envs[1]))
    assert (b.random_mean, b.best_method, b.best_mean) == (-500.0, "a2c", -100.0)
    np.testing.assert_allclose(b.normalized["ppo"], [1.0, 0.75, 0.5])
    np.testing.assert_allclose(b.normalized["a2c"], [1.125, 1.0, 0.875])
    auc = normalize(load_study(two_envs[1]), "auc")  # auc = final / 2: the same normalized scores
    np.testing.assert_allclose(auc.normalized["ppo"], [1.0, 0.75, 0.5])


def test_iqm_gap_and_profile_by_hand(two_envs):
    envs, results = aggregate(two_envs, n_resamples=N)
    assert [e.env for e in envs] == ["CartPole-v1", "Acrobot-v1"]
    by = {r.method: r for r in results}
    ppo, a2c, rnd = by["ppo"], by["a2c"], by["random"]
    # ppo pooled: 0.9 1.0 1.1 | 1.0 0.75 0.5 -> sorted 0.5 [0.75 0.9 1.0 1.0] 1.1
    assert ppo.iqm == pytest.approx((0.75 + 0.9 + 1.0 + 1.0) / 4)
    assert ppo.gap == pytest.approx((0.1 + 0.25 + 0.5) / 6)
    # a2c pooled: 0.5 0.5 0.5 | 1.125 1.0 0.875 -> sorted 0.5 [0.5 0.5 0.875 1.0] 1.125
    assert a2c.iqm == pytest.approx((0.5 + 0.5 + 0.875 + 1.0) / 4)
    assert a2c.gap == pytest.approx((0.5 * 3 + 0.125) / 6)
    assert (ppo.envs, ppo.runs) == (2, 6)

    def at(r, tau):
        return r.profile[int(np.argmin(np.abs(TAUS - tau)))]

    assert TAUS[0] == 0.0 and TAUS[-1] == pytest.approx(1.2) and len(TAUS) == 25
    assert at(ppo, 0.0) == 1.0 and at(ppo, 0.5) == pytest.approx(5 / 6) and at(ppo, 1.0) == pytest.approx(1 / 6)
    assert at(ppo, 1.2) == 0.0
    assert at(a2c, 0.5) == pytest.approx(3 / 6) and at(a2c, 1.0) == pytest.approx(1 / 6)
    assert at(rnd, 0.0) == pytest.approx(1 / 6)  # only 0.1 is strictly above 0
    for r in results:
        assert r.iqm_ci[0] <= r.iqm <= r.iqm_ci[1]
        assert r.gap_ci[0] <= r.gap <= r.gap_ci[1]
        assert np.all(r.profile_ci[0] <= r.profile + 1e-12) and np.all(r.profile <= r.profile_ci[1] + 1e-12)
    # the same data, the same intervals (a fixed seed)
    again = {r.method: r for r in aggregate(two_envs, n_resamples=N)[1]}
    assert again["ppo"].iqm_ci == ppo.iqm_ci


def test_bootstrap_is_stratified_by_environment():
    """Env one all 0, env two all 1: resampled within each environment every resample is the same, so
    the intervals are points; resampling the pooled runs would move them."""
    r = aggregate_method([np.zeros(4), np.ones(4)], "m", n_resamples=N)
    assert r.iqm == 0.5 and r.iqm_ci == (0.5, 0.5)
    assert r.gap == 0.5 and r.gap_ci == (0.5, 0.5)
    i = int(np.argmin(np.abs(TAUS - 0.5)))
    assert r.profile[i] == 0.5 and r.profile_ci[0][i] == 0.5 and r.profile_ci[1][i] == 0.5
    one = aggregate_method([np.array([0.3])], "m", n_resamples=N)  # one run: no interval
    assert math.isnan(one.iqm_ci[0]) and one.iqm == pytest.approx(0.3)


def test_missing_random_refused_in_one_line(tmp_path, capsys):
    ok = comparison(tmp_path / "compare_A", "CartPole-v1", ENV_A)
    bad = comparison(tmp_path / "compare_B", "Acrobot-v1", {k: v for k, v in ENV_B.items() if k != ("random",)})
    with pytest.raises(ValueError, match="no finished 'random' run") as info:
        aggregate([ok, bad], n_resamples=N)
    assert "\n" not in str(info.value)
    assert main(["report", "--aggregate", str(tmp_path / "out"), str(ok), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compare_B" in err and "random" in err
    assert main(["report", str(ok), str(bad)]) == 2  # several directories only with --aggregate
    assert capsys.readouterr().err.count("\n") == 1


def test_aggregate_report_renders_in_headless_chromium(two_envs, tmp_path, capsys):
    out = tmp_path / "agg"
    assert main(["report", "--aggregate", str(out), *map(str, two_envs)]) == 0
    assert "aggregate.html" in capsys.readouterr().out
    text = (out / "aggregate.md").read_text()
    assert "Aggregate comparison over 2 environment(s)" in text and "CartPole-v1" in text and "Acrobot-v1" in text
    assert "| a | ppo | 2 | 6 | 0.912 |" in text  # IQM of ppo's final evaluation (0.9125 to 3 digits)
    assert (out / "aggregate_files" / "performance_profiles.svg").is_file()
    html = out / "aggregate.html"
    assert "<svg" in html.read_text() and "http://" not in html.read_text().replace("http://www.w3.org", "")
    first = html.read_text()
    write_aggregate_report(two_envs, out)
    assert html.read_text() == first  # reproducible, byte for byte
    rendered = render_in_chromium(html, tmp_path)
    boxes, tables, errors, requests, screenshot = rendered[:5]
    assert len(boxes) == 1, boxes
    assert_readable(rendered, [["ppo", "a2c", "random"]])
    assert boxes[0]["width"] > 100 and boxes[0]["height"] > 100 and boxes[0]["shapes"] > 10, boxes
    assert tables == 5  # environments, and per score: aggregate, profile at a few taus
    assert errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests
    assert screenshot.stat().st_size > 10_000


def test_aggregate_groups_only_methods_run_on_every_environment(two_envs, tmp_path):
    # a third comparison where sac also ran: sac is on 1 of 3 environments, listed apart, not grouped
    env_c = {("ppo",): [100.0, 110.0, 120.0], ("sac",): [130.0, 140.0, 150.0], ("a2c",): [60.0, 65.0, 70.0],
             ("random",): [0.0, 10.0, 20.0]}
    dirs = [*two_envs, comparison(tmp_path / "compare_C", "Pendulum-v1", env_c)]
    out = tmp_path / "agg3"
    write_aggregate_report(dirs, out, n_resamples=N)
    text = (out / "aggregate.md").read_text()
    section = text.split("## Aggregate: final evaluation")[1].split("## ")[0]
    grouped, apart = section.split("Methods run on only some of the environments")
    assert "| sac |" not in grouped and "| sac | 1 of 3 |" in apart
    rows = {line.split(" | ")[1]: line.split(" | ")[0].lstrip("| ") for line in grouped.splitlines()
            if line.startswith("| ") and " | 3 | " in line}
    assert set(rows) == {"ppo", "a2c", "random"}
    # the letters are the primary test's (Mann-Whitney, Holm) on the pooled normalized scores
    envs, _ = aggregate(dirs, "final_eval", N)
    pooled = {m: np.concatenate([e.normalized[m] for e in envs]) for m in ("ppo", "a2c", "random")}
    expected = {label: mark for mark, label in letters(pooled, pairwise(pooled))}
    assert rows == expected and rows["random"] != rows["ppo"]
    assert "not distinguishable by Mann-Whitney's test" in section
    conclusion = text.split("## Conclusion")[1].split("## ")[0]
    assert "Not compared: sac, run on only some of the 3 environments" in conclusion
    assert "Established: random is worse than ppo." in conclusion and "sac" not in conclusion.split("Not compared")[0]
