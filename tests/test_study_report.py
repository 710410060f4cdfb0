"""A study's report, plots and ``policygrad report``/``policygrad plot`` on synthetic study directories
with known numbers (no training: fast), and the HTML in a real browser (headless Chromium)."""

import csv
import json
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

import policygrad as pg
from policygrad.cli import main
from policygrad.plots import group_runs
from policygrad.reporting.formatting import format_value
from policygrad.reporting.statistics import compare, summarize
from policygrad.studies import figures
from policygrad.studies.report import resolve_baseline, write_report
from policygrad.studies.results import load_study, parse_value, read_evals

CHROMIUM = Path("/usr/bin/chromium")
RESULT_COLUMNS = ["run_id", "seed", "status", "final_eval", "auc", "steps_to_threshold", "wall_seconds", "error"]


def write_run(run_dir: Path, final: float, offset: float, evals: int = 5, config: dict | None = None) -> None:
    """A run directory: evals.csv (5 evaluations at shared steps, rising to ``final``), episodes.csv,
    metrics.csv and config.json."""
    run_dir.mkdir(parents=True)
    with open(run_dir / "evals.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["global_step", "wall_seconds", "eval_mean", "eval_std", "eval_min", "eval_max", "episodes"])
        for k in range(evals):
            w.writerow([250 * k, 0.5 * k, final * k / 4, 1.0, final * k / 4 - 1, final * k / 4 + 1, 3])
    with open(run_dir / "episodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["global_step", "wall_time", "return", "length"])
        step = 0
        for k in range(40):
            ret = 10 + k * final / 100 + offset
            step += int(ret)
            w.writerow([step, f"{0.01 * k:.3f}", ret, int(ret)])
    (run_dir / "metrics.csv").write_text("global_step,wall_time,losses/policy\n100,0.1,0.5\n")
    (run_dir / "config.json").write_text(json.dumps({"config": config or {}}))


def make_study(root: Path, vary: dict, finals: dict, failed: frozenset = frozenset(), threshold: float | None = 150.0,
               cell=lambda v: repr(v)) -> Path:
    """A study directory: ``finals`` maps each grid point (a tuple of values) to its seeds' final scores;
    auc = final / 2; ``failed``: (point, seed index) pairs that failed; ``cell`` spells a value in
    results.csv."""
    seeds = len(next(iter(finals.values())))
    spec = {"format": 1, "name": root.name, "algo": "ppo", "env_id": "CartPole-v1", "vary": vary,
            "seeds": list(range(seeds)), "total_steps": 1000, "eval_every": 250, "eval_episodes": 3,
            "threshold": threshold, "fixed": {"num_envs": 4}, "preset": "auto",
            "adjust": [{"if": {list(vary)[0]: list(vary.values())[0][0]}, "set": {"norm_adv": False}}],
            "notes": ["a note for the reader"]}
    root.mkdir(parents=True)
    (root / "study.json").write_text(json.dumps(spec))
    rows = []
    for point, scores in finals.items():
        for seed, final in enumerate(scores):
            run_id = "__".join(f"{f}={cell(v)}" for f, v in zip(vary, point)).replace(" ", "") + f"__seed{seed}"
            bad = (point, seed) in failed
            write_run(root / "runs" / run_id, final, seed, evals=2 if bad else 5)
            rows.append({"run_id": run_id, **{f: cell(v) for f, v in zip(vary, point)}, "seed": seed,
                         "status": "failed" if bad else "done", "final_eval": "" if bad else final,
                         "auc": "" if bad else final / 2,
                         "steps_to_threshold": 500 if not bad and threshold is not None and final >= threshold else "",
                         "wall_seconds": 1.0 + seed, "error": "ValueError: non-finite loss" if bad else ""})
    with open(root / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS[:1] + list(vary) + RESULT_COLUMNS[1:])
        writer.writeheader()
        writer.writerows(rows)
    return root


LR_FINALS = {(0.001,): [100.0, 110.0, 120.0, 130.0, 140.0],
             (0.01,): [200.0, 210.0, 220.0, 230.0, 240.0],
             (0.1,): [105.0, 145.0, 115.0, 125.0, 160.0]}


@pytest.fixture
def lr_study(tmp_path):
    # seed 4 of 0.1 failed: its 160 never reaches results.csv
    return make_study(tmp_path / "lr", {"learning_rate": [0.001, 0.01, 0.1]}, LR_FINALS,
                      failed=frozenset({((0.1,), 4)}))


def test_values_read_back_however_results_csv_spells_them():
    assert parse_value("0.001") == 0.001 and parse_value("3e-4") == 3e-4 and parse_value("64") == 64
    assert parse_value("[64, 64]") == (64, 64) == parse_value("(64, 64)") == parse_value("64x64")
    assert parse_value("True") is True and parse_value("true") is True and parse_value("tanh") == "tanh"


def test_report_numbers_are_the_statistics_of_the_results(lr_study):
    out = write_report(lr_study)
    assert out == lr_study / "report.html"
    md = (lr_study / "report.md").read_text()
    for section in ("# Study lr: ppo on CartPole-v1, varying learning_rate", "## Spec", "## Results per value",
                    "## Tests against the baseline (learning_rate = 0.001)", "### Final evaluation",
                    "### Area under the curve", "## Failed runs", "## Plots"):
        assert section in md, section
    assert "15 runs (3 values x seeds), 14 finished, 1 failed" in md
    assert "| vary | learning_rate = 0.001, 0.01, 0.1 |" in md
    assert "| adjust | where learning_rate=0.001: norm_adv=false |" in md and "| preset | auto |" in md
    assert "- a note for the reader" in md and "| format |" not in md

    results = md.split("## Results per value")[1].split("## Tests")[0]
    table = {line.split(" | ")[0].lstrip("| "): line for line in results.splitlines() if line.startswith("| 0.")}
    assert set(table) == {"0.001 (baseline)", "0.01", "0.1"}
    done_01 = [105.0, 145.0, 115.0, 125.0]
    s = summarize(done_01, failed=1)
    cells = table["0.1"].split(" | ")
    assert cells[1:3] == ["5", "1"]  # runs, failed
    assert cells[3] == f"{s.mean:.4g} [{s.mean_ci[0]:.4g}, {s.mean_ci[1]:.4g}]"
    assert cells[4] == f"{s.iqm:.4g} [{s.iqm_ci[0]:.4g}, {s.iqm_ci[1]:.4g}]"
    assert cells[-1].rstrip(" |") == "0/5"  # none of 0.1's finished runs reached 150
    assert table["0.01"].rstrip(" |").endswith("5/5, 500")

    welch = {c.value: c for c in compare({"0.001": LR_FINALS[(0.001,)], "0.01": LR_FINALS[(0.01,)],
                                         "0.1": done_01})}
    assert welch["0.01"].significant and not welch["0.1"].significant
    assert "learning_rate = 0.01: significantly higher than the baseline at 0.05 after Holm correction" in md
    assert (f"learning_rate = 0.1: not distinguishable from the baseline at 0.05 after Holm correction (difference "
            f"{welch['0.1'].difference:+.4g}") in md
    assert (f"detecting a difference of 1 standard deviation with 80% power needs {welch['0.1'].seeds_needed} seeds "
            "per value under this Holm correction") in md
    assert "Mann-Whitney p / Holm (primary) | Welch p / Holm (sensitivity)" in md
    assert "learning_rate=0.1__seed4 (0.1, seed 4): ValueError: non-finite loss" in md
    assert "fewer than 5 finished seeds (0.1): a bootstrap interval cannot be wider" in md
    for name in ("learning_curves", "sensitivity", "episode_rewards"):
        assert f"](report_files/{name}.svg)" in md
        assert (lr_study / "report_files" / f"{name}.svg").read_text().lstrip().startswith("<?xml")


def test_html_is_self_contained_and_the_report_reproducible(lr_study):
    html = write_report(lr_study).read_text()
    assert html.count("<svg") >= 3 and html.count("<figure>") == 3
    assert "<script" not in html and "<img" not in html and "<link" not in html
    # nothing fetched: no src/href to a URL, no url(...) or @import in the style
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import", html)
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html and "<metadata>" not in html
    md = (lr_study / "report.md").read_bytes()
    svgs = {p.name: p.read_bytes() for p in (lr_study / "report_files").iterdir()}
    assert write_report(lr_study).read_text() == html  # same results, same report, byte for byte
    assert (lr_study / "report.md").read_bytes() == md
    assert {p.name: p.read_bytes() for p in (lr_study / "report_files").iterdir()} == svgs
    assert "wall" not in md.decode()  # wall times differ between identical studies: not in the report


def test_tuple_values_categorical_axis_and_a_chosen_baseline(tmp_path):
    finals = {((64, 64),): [100.0, 120.0, 110.0], ((256, 256),): [300.0, 330.0, 310.0], ((32,),): [90.0, 95.0, 99.0]}
    study = make_study(tmp_path / "arch", {"hidden_sizes": [[64, 64], [256, 256], [32]]}, finals, threshold=None,
                       cell=lambda v: "x".join(map(str, v)))
    loaded = load_study(study)
    assert [loaded.label(p) for p in loaded.points] == ["64x64", "256x256", "32"]  # the spec's order
    assert resolve_baseline(loaded, "hidden_sizes=[256, 256]") == "256x256" == resolve_baseline(loaded, "256x256")
    assert main(["report", str(study), "--baseline", "256x256"]) == 0
    md = (study / "report.md").read_text()
    assert "## Tests against the baseline (hidden_sizes = 256x256)" in md
    assert "| 256x256 (baseline) |" in md and "reached" not in md  # no threshold: no column
    # 3 seeds each: Mann-Whitney (the default primary test) cannot reach 0.05; the report says so
    assert "hidden_sizes = 64x64: not distinguishable from the baseline" in md
    assert "with 3 seeds the power is 0%" in md
    assert not figures.log_scale([(64, 64), (256, 256)]) and figures.log_scale([1e-4, 1e-3, 1e-2])
    assert not figures.log_scale([0.9, 0.99]) and not figures.log_scale([0.0, 1.0, 100.0])
    assert figures.log_scale([1e-3, 1e-2]) and not figures.log_scale([16, 128])


def test_results_csv_as_python_writes_tuples(tmp_path):
    finals = {((64, 64),): [1.0, 2.0], ((8,),): [3.0, 4.0]}
    study = make_study(tmp_path / "py", {"hidden_sizes": [[64, 64], [8]]}, finals, threshold=None,
                       cell=lambda v: str(tuple(v)))  # "(64, 64)", "(8,)"
    loaded = load_study(study)
    assert [p for p in loaded.points] == [((64, 64),), ((8,),)]
    assert all(len(loaded.runs_of(p)) == 2 for p in loaded.points)


def test_two_fields_one_seed_and_constant_scores(tmp_path):
    finals = {(0.9, 0.0): [500.0], (0.9, 0.01): [500.0], (0.99, 0.0): [480.0], (0.99, 0.01): [470.0]}
    study = make_study(tmp_path / "two", {"gamma": [0.9, 0.99], "ent_coef": [0.0, 0.01]}, finals)
    assert main(["report", str(study)]) == 0
    md = (study / "report.md").read_text()
    assert "varying gamma x ent_coef" in md
    assert "| gamma=0.9, ent_coef=0 (baseline) | 1 | 0 | 500 | 500 |" in md  # one seed: no interval
    assert "no verdict possible: 1 and 1 finished seeds, fewer than the 3 per value a verdict needs" in md
    assert "one seed: no confidence interval" in md
    assert "against gamma (one line per value of the other fields)" in md  # the sensitivity plot's x: gamma


def test_cli_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not a study directory (study.json is missing)" in capsys.readouterr().err
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study.json").write_text(json.dumps({"name": "s", "vary": {"gamma": [0.9]}}))
    assert main(["report", str(tmp_path / "s")]) == 2
    assert "no results.csv yet" in capsys.readouterr().err


def test_study_plots_draw_from_run_directories(lr_study, tmp_path):
    groups = {"0.001": sorted((lr_study / "runs").glob("learning_rate=0.001__*"))}
    assert read_evals(groups["0.001"][0])[0].tolist() == [0, 250, 500, 750, 1000]
    for draw, name in ((figures.learning_curves, "curves.svg"), (figures.episode_rewards, "episodes.png")):
        out = draw(groups, tmp_path / name)
        assert out.stat().st_size > 1000
    no_evals = figures.learning_curves({"x": [tmp_path / "missing"]}, tmp_path / "empty.svg")
    assert "no evaluations during training" in no_evals.read_text()  # matplotlib keeps text as a comment
    no_episodes = figures.episode_rewards({"x": [tmp_path / "missing"]}, tmp_path / "no_episodes.svg")
    assert "no finished training episode" in no_episodes.read_text()
    out = figures.sensitivity("learning_rate", [0.001, 0.01], {"final_eval": [[1.0, 2.0], [3.0]]},
                                  tmp_path / "sens.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run_dirs_with_configs(root: Path) -> list[Path]:
    """Two learning rates x two seeds, as run directories with config.json and episodes.csv."""
    dirs = []
    for lr in (0.001, 0.01):
        for seed in (1, 2):
            d = root / f"lr{lr}_s{seed}"
            write_run(d, final=100 * lr * 1000, offset=seed,
                      config={"algo": "ppo", "learning_rate": lr, "seed": seed, "run_dir": str(d), "gamma": 0.99})
            dirs.append(d)
    return dirs


def test_plot_groups_runs_by_their_differing_fields(tmp_path):
    dirs = run_dirs_with_configs(tmp_path)
    groups = group_runs(dirs)
    assert groups == {"learning_rate=0.001": dirs[:2], "learning_rate=0.01": dirs[2:]}
    assert list(group_runs(dirs[:2])) == [""]  # differing only in seed (and run_dir): one group, as before
    out = pg.plot_runs(dirs, tmp_path / "grouped.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", *map(str, dirs), "--out", str(tmp_path / "cli.svg")]) == 0
    svg = (tmp_path / "cli.svg").read_text()
    assert "learning_rate=0.001 (2 seeds)" in svg and "learning_rate=0.01 (2 seeds)" in svg
    assert main(["plot", str(dirs[0]), "--out", str(tmp_path / "one.png")]) == 0


def test_the_plot_of_one_run_draws_its_deterministic_evaluations(tmp_path):
    dirs = run_dirs_with_configs(tmp_path)
    steps, means = read_evals(dirs[0])
    assert len(steps) > 1
    assert main(["plot", str(dirs[0]), "--out", str(tmp_path / "one.svg")]) == 0
    svg = (tmp_path / "one.svg").read_text()
    assert "deterministic evaluation" in svg and "diamonds: deterministic evaluations" in svg
    (dirs[1] / "evals.csv").unlink()  # a run without periodic evaluations: no diamonds promised
    assert main(["plot", str(dirs[1]), "--out", str(tmp_path / "other.svg")]) == 0
    assert "deterministic evaluation" not in (tmp_path / "other.svg").read_text()


def test_mean_ci_band_is_the_bootstrap_per_point():
    from policygrad.reporting.statistics import mean_ci_band

    curves = np.array([[1.0, 10.0, 5.0], [2.0, 10.0, 7.0], [3.0, 10.0, 9.0], [4.0, 10.0, 11.0]])
    mean, low, high = mean_ci_band(curves)
    assert mean.tolist() == [2.5, 10.0, 8.0]
    assert low[1] == high[1] == 10.0  # a constant point: its interval is the point
    assert np.all(low <= mean) and np.all(mean <= high) and low[0] < 2.5 < high[0]
    one = mean_ci_band(curves[:1])
    assert one[0].tolist() == [1.0, 10.0, 5.0] and np.all(np.isnan(one[1]))


# -------------------------------------------------------------------------------------------- the browser

def browser_or_skip():
    """Playwright driving Debian's /usr/bin/chromium; skip (locally) when either is missing, fail when
    POLICYGRAD_REQUIRE_BROWSER=1 (.ci/run sets it: CI must not skip this test)."""
    required = os.environ.get("POLICYGRAD_REQUIRE_BROWSER") == "1"
    problem = None
    if not CHROMIUM.is_file():
        problem = f"no browser: {CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "no browser driver: the playwright package is missing (pip install -e '.[dev]')"
    if problem:
        if required:
            pytest.fail(f"{problem}; POLICYGRAD_REQUIRE_BROWSER=1 forbids skipping")
        pytest.skip(problem)


class Rendered(NamedTuple):
    """What Chromium showed of a report: per figure its box and shape count (``boxes``) and its text
    labels as laid out (``figures``: one list of :class:`Label` per figure), the count of tables, the
    console errors, the requests made, a full-page screenshot and the headings in order."""
    boxes: list[dict]
    tables: int
    errors: list[str]
    requests: list[str]
    screenshot: Path
    headings: list[str]
    figures: list[list["Label"]]


class Label(NamedTuple):
    """One matplotlib text (a tick label, axis label, title, legend entry): its string, from the comment
    matplotlib writes into the SVG, and its box in the figure's pixels (text is drawn as glyph paths,
    so the box is that of what a reader sees)."""
    text: str
    x: float
    y: float
    w: float
    h: float


# matplotlib groups each text's glyphs in <g id="text_N"> and puts the string in a comment inside it
LAYOUT_JS = """() => Array.from(document.querySelectorAll('figure > svg')).map(svg => {
    const s = svg.getBoundingClientRect();
    const label = g => Array.from(g.childNodes).filter(n => n.nodeType === 8).map(n => n.textContent.trim())[0];
    return Array.from(svg.querySelectorAll('g[id^="text_"]')).map(g => {
        const r = g.getBoundingClientRect();
        return [label(g) || '', r.left - s.left, r.top - s.top, r.width, r.height, s.width, s.height];
    }).filter(t => t[3] > 0 && t[4] > 0);
})"""


def render_in_chromium(html: Path, tmp_path: Path) -> Rendered:
    """Open ``html`` in headless Chromium: what :class:`Rendered` holds."""
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(html.as_uri(), wait_until="load")
            boxes = page.evaluate("""() => Array.from(document.querySelectorAll('figure > svg')).map(svg => {
                const r = svg.getBoundingClientRect();
                return {width: r.width, height: r.height, shapes: svg.querySelectorAll('path, use, text').length};
            })""")
            tables = page.evaluate("() => document.querySelectorAll('table').length")
            headings = page.evaluate("() => Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
            layout = page.evaluate(LAYOUT_JS)
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    figures_seen = []
    for figure, box in zip(layout, boxes):
        labels = [Label(t[0], *t[1:5]) for t in figure]
        for label in labels:  # inside the figure: nothing cut off at its edges
            assert label.x >= -1 and label.y >= -1 and label.x + label.w <= box["width"] + 1 \
                and label.y + label.h <= box["height"] + 1, f"{html.name}: {label} runs off its figure ({box})"
        figures_seen.append(labels)
    return Rendered(boxes, tables, errors, requests, screenshot, headings, figures_seen)


def overlapping(labels: list[Label], tolerance: float = 1.0) -> list[tuple[str, str]]:
    """The pairs of labels whose boxes overlap by more than ``tolerance`` pixels both ways."""
    pairs = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            dx = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
            dy = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
            if dx > tolerance and dy > tolerance:
                pairs.append((a.text, b.text))
    return pairs


def assert_readable(rendered: Rendered, shown: list[list[str]], first_heading: str = "Conclusion") -> None:
    """The report as a reader meets it: ``first_heading`` is the first section, no two labels of a figure
    overprint each other, and figure i shows every label of ``shown[i]`` (a method, a value: in a legend
    or on an axis), each as a whole label or the start of one (``ppo`` in ``ppo (5 seeds)``)."""
    assert rendered.headings and rendered.headings[0] == first_heading, rendered.headings
    assert len(rendered.figures) == len(shown), (len(rendered.figures), shown)
    for number, (labels, expected) in enumerate(zip(rendered.figures, shown)):
        assert overlapping(labels) == [], f"figure {number + 1}: overlapping labels {overlapping(labels)}"
        texts = [label.text for label in labels]
        missing = [name for name in expected if not any(t == name or t.startswith(f"{name} ") for t in texts)]
        assert missing == [], f"figure {number + 1} does not show {missing}; its labels: {texts}"


def test_report_html_renders_in_headless_chromium(lr_study, tmp_path):
    rendered = render_in_chromium(write_report(lr_study), tmp_path)
    boxes, tables, errors, requests, screenshot = rendered[:5]
    assert len(boxes) == 3, boxes
    # curves, sensitivity (both scores), episodes: each shows every value, no label over another
    values = ["0.001", "0.01", "0.1"]
    assert_readable(rendered, [values, values, values])
    for box in boxes:
        assert box["width"] > 100 and box["height"] > 100 and box["shapes"] > 10, box
    assert tables == 4  # spec, results, two test tables
    assert errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


def test_compare_report_html_renders_in_headless_chromium(tmp_path):
    """A comparison's report (policygrad compare): methods, ranking, pairwise matrix, curves vs seconds."""
    finals = {("ppo",): [480.0, 500.0, 490.0], ("sb3:ppo",): [470.0, 500.0, 420.0], ("random",): [20.0, 22.0, 19.0]}
    root = make_study(tmp_path / "cmp", {"method": ["ppo", "sb3:ppo", "random"]}, finals, threshold=None)
    spec = json.loads((root / "study.json").read_text())
    spec.update({"algo": "compare", "fixed": {}, "adjust": [], "kind": "compare", "shared": {},
                 "methods": {"ppo": {"kind": "policygrad", "source": "policygrad preset", "config": {"gamma": 0.98}},
                             "sb3:ppo": {"kind": "sb3", "source": "RL Baselines3 Zoo hyperparams/ppo.yml",
                                         "hyperparameters": {"n_envs": 8, "gamma": 0.98}},
                             "random": {"kind": "random", "source": "a uniform random policy"}}})
    (root / "study.json").write_text(json.dumps(spec))
    html = write_report(root)
    text = (root / "report.md").read_text()
    assert "Grouping and pairwise tests" in text and "RL Baselines3 Zoo hyperparams/ppo.yml" in text
    assert "(baseline)" not in text
    rendered = render_in_chromium(html, tmp_path)
    boxes, tables, errors, requests, screenshot = rendered[:5]
    assert len(boxes) == 4, boxes  # curves vs steps, vs seconds, sensitivity, episodes
    methods = ["ppo", "sb3:ppo", "random"]
    assert_readable(rendered, [methods, methods, methods, methods])
    for box in boxes:
        assert box["width"] > 100 and box["height"] > 100 and box["shapes"] > 10, box
    assert tables == 9  # spec, methods, results, and per score: ranking, matrix, pairs
    assert errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests
    assert screenshot.stat().st_size > 10_000


def test_the_spec_declares_the_primary_test_and_the_minimum_effect(tmp_path):
    from policygrad.studies.spec import StudySpec, make_spec

    default = make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-3, 1e-2]}, seeds=3, total_steps=1000)
    assert default.test == "mannwhitney" and default.min_effect == 1.0
    welch = make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-3, 1e-2]}, seeds=3, total_steps=1000,
                      test="Welch", min_effect=0.5)
    assert welch.to_dict()["test"] == "welch" and welch.to_dict()["min_effect"] == 0.5
    assert welch.identity() == default.identity()  # about the report only: the same study, the same runs
    old = default.to_dict()
    del old["test"], old["min_effect"]  # a study.json written before the fields: the defaults
    assert StudySpec.from_dict(old).test == "mannwhitney"
    with pytest.raises(ValueError, match="test='t' is not a test: expected one of mannwhitney, welch"):
        make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-3]}, test="t")
    with pytest.raises(ValueError, match="min_effect=0 is invalid: expected a number > 0"):
        make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-3]}, min_effect=0)

    # the report follows the declared test: 3 seeds, Welch separates what Mann-Whitney cannot
    finals = {((64, 64),): [100.0, 120.0, 110.0], ((256, 256),): [300.0, 330.0, 310.0]}
    study = make_study(tmp_path / "arch", {"hidden_sizes": [[64, 64], [256, 256]]}, finals, threshold=None,
                       cell=lambda v: "x".join(map(str, v)))
    spec = json.loads((study / "study.json").read_text())
    (study / "study.json").write_text(json.dumps({**spec, "test": "welch", "min_effect": 2.0, "baseline": [64, 64]}))
    write_report(study)
    md = (study / "report.md").read_text()
    assert "| baseline | 64x64 |" in md  # as the varied field spells it, not "64, 64"
    assert "Welch p / Holm (primary) | Mann-Whitney p / Holm (sensitivity)" in md
    assert "hidden_sizes = 256x256: significantly higher than the baseline" in md
    assert "The Mann-Whitney test disagrees: treat this as not settled." in md
    assert "seeds for 80% power at 2 SD" in md


def test_every_study_report_opens_with_a_conclusion_the_tables_support(lr_study, tmp_path):
    write_report(lr_study)
    md = (lr_study / "report.md").read_text()
    head = md.split("## Spec")[0]
    conclusion = head.split("## Conclusion")[1]
    # 0.01 beats the baseline (Mann-Whitney, Holm); 0.1 does not; the seeds a 1 SD difference needs
    assert "Use learning_rate = 0.01: its final evaluation is higher than that of the baseline, learning_rate = 0.001" \
        in conclusion
    assert "Not established: learning_rate = 0.1 cannot be told apart from learning_rate = 0.001" in conclusion
    need = compare({"0.001": LR_FINALS[(0.001,)], "0.01": LR_FINALS[(0.01,)], "0.1": [105.0, 145.0, 115.0, 125.0]})
    assert f"takes {need[0].seeds_needed} seeds per value; this study has 4, so about " \
           f"{need[0].seeds_needed - 4} more" in conclusion

    # a comparison: the best method and those no test separates from it, not a ranking
    finals = {("ppo",): [480.0, 500.0, 490.0, 495.0, 470.0], ("a2c",): [470.0, 500.0, 420.0, 480.0, 460.0],
              ("random",): [20.0, 22.0, 19.0, 25.0, 21.0], ("dqn",): [100.0, 300.0]}
    root = make_study(tmp_path / "cmp", {"method": ["ppo", "a2c", "random", "dqn"]}, finals, threshold=None)
    spec = json.loads((root / "study.json").read_text())
    (root / "study.json").write_text(json.dumps({**spec, "kind": "compare", "algo": "compare", "fixed": {},
                                                 "adjust": []}))
    write_report(root)
    text = (root / "report.md").read_text().split("## Spec")[0]
    assert ("Use ppo or a2c: ppo has the highest IQM of the final evaluation, but Mann-Whitney's test after Holm "
            "correction does not separate the two") in text
    assert "Established: random is worse than ppo." in text
    assert "No verdict is possible for dqn: fewer than 3 finished seeds." in text


def test_a_named_study_tests_against_the_current_value(tmp_path):
    from policygrad.run.configure import make_config
    from policygrad.studies.named import named_spec

    spec = named_spec("lr", "ppo", "CartPole-v1", seeds=3, total_steps=1000)
    current = make_config("ppo", env_id="CartPole-v1").learning_rate
    values = spec.vary["learning_rate"]
    assert spec.baseline == current and values.index(current) == 2  # the third of four, not the smallest
    entropy = named_spec("entropy", "ppo", "CartPole-v1", seeds=3, total_steps=1000)
    assert entropy.baseline == make_config("ppo", env_id="CartPole-v1").ent_coef
    # the report reads it from study.json: the current value is the baseline and is named so
    finals = {(v,): [100.0 + 10 * i + s for s in range(3)] for i, v in enumerate(values)}
    study = make_study(tmp_path / "lr", {"learning_rate": values}, finals, threshold=None)
    data = json.loads((study / "study.json").read_text())
    (study / "study.json").write_text(json.dumps({**data, "baseline": current, "adjust": []}))
    write_report(study)
    md = (study / "report.md").read_text()
    label = format_value(current, short=True)
    assert f"## Tests against the baseline (learning_rate = {label})" in md
    assert f"| {label} (baseline) |" in md and f"the current value, learning_rate = {label}" in md


def _drawn(monkeypatch, draw, *args, **kwargs):
    """The figure ``draw`` makes, drawn (text laid out), before it is closed."""
    import matplotlib.pyplot as plt

    from policygrad.reporting import figures as reporting_figures

    kept = {}

    def keep(fig, out):
        fig.canvas.draw()
        kept["fig"] = fig
        return Path(out)

    monkeypatch.setattr(figures, "save", keep)
    monkeypatch.setattr(reporting_figures, "save", keep)
    draw(*args, **kwargs)
    fig = kept["fig"]
    monkeypatch.undo()
    return fig, plt


def _boxes_overlap(texts, renderer):
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text().strip()]
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


def test_sensitivity_ticks_are_legible_and_categories_not_joined(monkeypatch, tmp_path):
    lrs = [0.00025, 0.0003, 0.0008, 0.0025, 0.0079]  # 1.5 decades: log axis, whose minor labels overprinted
    scores = {"final_eval": [[100.0 + i, 110.0 + i, 120.0] for i in range(5)],
              "auc": [[50.0 + i, 55.0, 60.0] for i in range(5)]}
    fig, plt = _drawn(monkeypatch, figures.sensitivity, "learning_rate", lrs, scores, tmp_path / "s.svg")
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        labels = [t for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True) if t.get_text().strip()]
        # every value has its tick; 0.0003, too close to 0.00025 on this axis, goes without a label
        assert list(ax.get_xticks()) == lrs
        assert [t.get_text() for t in labels] == ["0.00025", "0.0008", "0.0025", "0.0079"]
        assert _boxes_overlap(labels, renderer) == []
    assert "faint dots are single seeds" in fig._suptitle.get_text()
    plt.close(fig)

    cats = ["none", "scale", "standardize", "popart"]
    fig, plt = _drawn(monkeypatch, figures.sensitivity, "reward_norm", cats, scores | {
        "final_eval": scores["final_eval"][:4], "auc": scores["auc"][:4]}, tmp_path / "c.svg")
    for ax in fig.axes:
        means = [line for line in ax.get_lines() if line.get_marker() == "o"]
        assert means and all(line.get_linewidth() == 0 for line in means)  # markers only: categories unordered
        assert _boxes_overlap(ax.get_xticklabels(), fig.canvas.get_renderer()) == []
    plt.close(fig)


def test_plot_legends_of_different_algorithms_are_short(tmp_path):
    dirs = []
    for algo, extra in (("ppo", {"num_steps": 128, "optimizer": "adam", "return_type": None}),
                        ("reinforce", {"num_steps": None, "optimizer": None, "return_type": "reward_to_go"})):
        for seed in (1, 2):
            d = tmp_path / f"{algo}_{seed}"
            write_run(d, final=100.0, offset=seed, config={"algo": algo, "seed": seed, "run_dir": str(d),
                                                            "learning_rate": 0.001, **extra})
            dirs.append(d)
    assert list(group_runs(dirs)) == ["ppo", "reinforce"]  # not "num_steps=None, optimizer=None, ..."
    d = tmp_path / "ppo_lr"
    write_run(d, final=100.0, offset=3, config={"algo": "ppo", "seed": 3, "run_dir": str(d), "learning_rate": 0.01,
                                                "num_steps": 128, "optimizer": "adam", "return_type": None})
    assert list(group_runs([*dirs, d])) == ["ppo, learning_rate=0.001", "reinforce", "ppo, learning_rate=0.01"]


def test_the_episodes_figure_says_which_methods_it_leaves_out(tmp_path):
    finals = {("ppo",): [480.0, 500.0, 490.0], ("sb3:ppo",): [470.0, 500.0, 420.0], ("random",): [20.0, 22.0, 19.0]}
    root = make_study(tmp_path / "cmp", {"method": ["ppo", "sb3:ppo", "random"]}, finals, threshold=None)
    for run in (root / "runs").iterdir():
        if "sb3" in run.name or "random" in run.name:
            (run / "episodes.csv").unlink()
    spec = json.loads((root / "study.json").read_text())
    (root / "study.json").write_text(json.dumps({**spec, "kind": "compare", "algo": "compare", "fixed": {},
                                                 "adjust": []}))
    write_report(root)
    md = (root / "report.md").read_text()
    assert ("Not drawn: sb3:ppo, random (a random policy does not train; Stable-Baselines3's runs record evaluations "
            "only).") in md


def test_a_report_printed_to_the_terminal_has_no_markdown_escapes():
    from policygrad.reporting.document import Heading, Paragraph, Table, markdown_for_terminal, to_markdown

    md = to_markdown([Heading("Estimators"), Paragraph("One policy."),
                      Table(["estimator", "noise |g|"], [["total", "1.5"], ["td (reference)", "0.25"]])], Path("."))
    text = markdown_for_terminal(md)
    assert "\\|" not in text and "|---" not in text and "## " not in text
    assert text.splitlines()[:2] == ["Estimators", "-" * len("Estimators")]
    rows = text.splitlines()[-4:]
    assert rows[0] == "estimator       noise |g|" and rows[3] == "td (reference)  0.25"


def test_a_comparison_report_groups_what_its_test_cannot_separate(tmp_path):
    # the old rule (1 + methods significantly better) ranked mid 1 and low 2 although no test separates them
    finals = {("top",): [20.0, 21.0, 22.0, 23.0, 24.0, 25.0], ("mid",): [5.0, 9.0, 14.0, 18.0, 22.0, 25.0],
              ("low",): [4.0, 5.0, 6.0, 7.0, 9.0, 10.0]}
    root = make_study(tmp_path / "cmp", {"method": ["top", "mid", "low"]}, finals, threshold=None)
    spec = json.loads((root / "study.json").read_text())
    (root / "study.json").write_text(json.dumps({**spec, "kind": "compare", "algo": "compare", "fixed": {},
                                                 "adjust": []}))
    write_report(root)
    md = (root / "report.md").read_text()
    final = md.split("### Final evaluation")[1].split("P(row better")[0]
    groups = {line.split(" | ")[1]: line.split(" | ")[0].lstrip("| ") for line in final.splitlines()
              if line.startswith("| ") and not line.startswith("| group")}
    assert groups == {"top": "a", "mid": "ab", "low": "b"}
    assert "| rank |" not in md
    assert "Use top or mid: top has the highest IQM of the final evaluation, but Mann-Whitney's test" in md
    assert "Established: low is worse than top." in md


def test_at_a_ceiling_the_conclusion_is_on_the_area_under_the_curve_and_otherwise_ends_with_it(lr_study, tmp_path):
    # every run ends at 500: the final score separates nothing, so the conclusion is on how fast (auc)
    finals = {(32,): [500.0] * 4, (64,): [500.0] * 4}
    study = make_study(tmp_path / "ceiling", {"width": [32, 64]}, finals, threshold=None)
    with open(study / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # width 32 learns more slowly: its auc is lower on every seed
        row["auc"] = str((300.0 if row["width"] == "32" else 400.0) + float(row["seed"]))
    with open(study / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_report(study)
    conclusion = (study / "report.md").read_text().split("## Conclusion")[1].split("## ")[0].strip()
    assert conclusion.startswith("Every run ended at the same final evaluation, 500: the final score cannot tell the "
                                 "values apart, so this conclusion is on the area under the curve"), conclusion
    assert "Use width = 64: its area under the curve is higher than that of the baseline, width = 32" in conclusion
    # otherwise the final evaluation decides, and one sentence says how fast (auc = final / 2 here: the same verdict)
    write_report(lr_study)
    conclusion = (lr_study / "report.md").read_text().split("## Conclusion")[1].split("## ")[0].strip()
    assert conclusion.endswith("By the area under the curve (how fast each learns): learning_rate = 0.01 learns "
                               "faster than learning_rate = 0.001 (Mann-Whitney's test, Holm-corrected)."), conclusion


def test_a_conclusion_names_every_method_no_test_separates_from_the_best_as_alternatives():
    from policygrad.reporting.conclusions import among_methods
    from policygrad.reporting.statistics import pairwise

    groups = {"a": [10.0, 12.0, 14.0], "b": [9.0, 13.0, 11.0], "c": [8.0, 15.0, 10.0]}
    text = among_methods(pairwise(groups), {m: float(np.mean(v)) for m, v in groups.items()})
    assert text.startswith("Use a, b or c: a has the highest IQM"), text


def test_the_episodes_figure_draws_cumulative_return_against_episodes_only(lr_study, tmp_path, monkeypatch):
    # Against steps, a cumulative return is the step count wherever each step pays the same (CartPole's +1):
    # the same straight line for every method. Against episodes its slope is the return, so it shows learning.
    drawn = []
    real_save = figures.save
    monkeypatch.setattr(figures, "save", lambda fig, out: drawn.append(fig) or real_save(fig, out))
    groups = {"0.001": sorted((lr_study / "runs").glob("learning_rate=0.001__*"))}
    figures.episode_rewards(groups, tmp_path / "episodes.png")
    axes = drawn[0].axes
    assert len(axes) == 3
    labels = sorted((ax.get_xlabel(), ax.get_ylabel()) for ax in axes)
    assert ("episode", "cumulative return") in labels
    assert not any(x == "environment steps" and y == "cumulative return" for x, y in labels)


def test_a_study_of_one_value_says_so_in_the_singular(tmp_path):
    study = make_study(tmp_path / "one", {"learning_rate": [0.001]}, {(0.001,): [100.0, 110.0, 120.0]})
    write_report(study)
    md = (study / "report.md").read_text()
    assert "3 runs (1 value x seeds), 3 finished, 0 failed" in md
