"""docs/guide.md: every ```python block runs on its own, and every quick `policygrad` command line works.

Each Python block is compiled with its line numbers in the guide (a failure points at the guide's line)
and run in a fresh namespace with a temporary working directory. In ```bash blocks, the lines that
start with ``policygrad `` run through ``policygrad.cli.main`` in one temporary directory per block,
in order; a block containing ``# not run in tests`` is skipped (it takes minutes).
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from policygrad.cli import main
from policygrad.cli.parsing import parse_count

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"
SKIP_MARK = "# not run in tests"
# The seed's questions this release answers: all 30.
QUESTIONS = list(range(1, 31))
# The questions answered by a study committed under docs/studies/ (named study, its directory)
STUDIES = {25: "lr_ppo_CartPole-v1", 26: "gamma_ppo_CartPole-v1", 27: "architecture_ppo_CartPole-v1",
           28: "batch_reinforce_CartPole-v1", 29: "reward-norm_ppo_Pendulum-v1", 30: "entropy_ppo_Pendulum-v1"}
STUDY_DIR = GUIDE.parent / "studies"
LADDER = "## Beyond REINFORCE: the actor-critic ladder"
# Each rung of the ladder: its subsection's heading starts with this, and names the code that implements it.
RUNGS = {
    "Baseline subtraction": ("algos/reinforce.py", "`none`", "`mean`", "`value`"),
    "One-step actor-critic": ("returns.td_errors", "algos/actor_critic.py"),
    "A2C": ("returns.nstep_returns", "returns.gae", "estimate_advantages", "algos/a2c.py"),
    "A3C": ("algos/a3c.py", "share_optimizer_state", "WorkerFailed", "--num-workers"),
    "PPO": ("losses.ppo_clip_loss", "algos/ppo.py", "update_epochs", "num_minibatches", "target_kl",
            "diag/approx_kl", "diag/clipfrac"),
}


@dataclass(frozen=True)
class Block:
    index: int
    lang: str
    heading: str
    first_line: int  # 1-based line of the guide where the block's code starts
    code: str

    @property
    def id(self) -> str:
        question = re.match(r"Q\d+", self.heading)
        label = question.group(0) if question else re.sub(r"\W+", "-", self.heading).strip("-")[:24]
        return f"{self.index:02d}-{label}"


def read_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    heading, lang, start, lines = "", None, 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        if lang is None:
            if line.startswith("#") and not line.startswith("#!"):
                heading = line.lstrip("#").strip()
            fence = re.match(r"^```(\w*)\s*$", line)
            if fence:
                lang, start, lines = fence.group(1), number + 1, []
        elif line.strip() == "```":
            blocks.append(Block(len(blocks), lang, heading, start, "\n".join(lines) + "\n"))
            lang = None
        else:
            lines.append(line)
    assert lang is None, f"unclosed code fence opened before line {start} of {GUIDE}"
    return blocks


def command_lines(code: str) -> list[str]:
    """The ``policygrad ...`` commands of a bash block, continuation lines joined."""
    joined = code.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("policygrad ")]


BLOCKS = read_blocks(GUIDE.read_text())
PYTHON = [b for b in BLOCKS if b.lang == "python"]
COMMANDS = [b for b in BLOCKS if b.lang == "bash" and command_lines(b.code)]


def test_guide_answers_every_question_of_this_release():
    text = GUIDE.read_text()
    found = [int(n) for n in re.findall(r"^### Q(\d+)\. \S", text, flags=re.MULTILINE)]
    missing = [q for q in QUESTIONS if q not in found]
    assert not missing, f"docs/guide.md has no '### Qn. ...' heading for {missing}"
    assert len(found) == len(set(found)), f"a question heading appears twice: {sorted(found)}"
    assert found == sorted(found), f"questions out of order: {found}"
    for question in QUESTIONS:  # each answer comes with at least one runnable snippet
        assert any(b.heading.startswith(f"Q{question}.") for b in PYTHON + COMMANDS), f"Q{question} has no snippet"


def test_guide_has_theory_with_the_policy_gradient():
    text = GUIDE.read_text()
    assert "## Theory in one page" in text
    assert r"\nabla_\theta \log \pi_\theta(a_t | s_t) \, G_t" in text
    for name in ("reward_to_go", "policy_gradient_loss", "algos/reinforce.py"):
        assert name in text


def section(text: str, heading: str) -> str:
    """The lines from the first heading that starts with ``heading`` up to the next heading of its level
    or above (``#`` lines inside code blocks are comments, not headings)."""
    level = len(heading) - len(heading.lstrip("#"))
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        is_heading = not in_code and re.match(rf"#{{1,{level}}} ", line) is not None
        if out and is_heading:
            break
        if out or (is_heading and line.startswith(heading)):
            out.append(line)
    assert out, f"no heading starting with {heading!r}"
    return "\n".join(out)


def test_guide_climbs_the_actor_critic_ladder():
    text = GUIDE.read_text()
    ladder = section(text, LADDER)
    for rung, names in RUNGS.items():
        part = section(ladder, f"### {rung}")
        assert "$$" in part, f"the {rung!r} subsection has no formula"
        for name in names:
            assert name in part, f"the {rung!r} subsection does not mention {name}"
        blocks = [b for b in PYTHON + COMMANDS if b.heading.startswith(rung)]
        assert {b.lang for b in blocks} == {"python", "bash"}, f"{rung!r} needs a Python snippet and a CLI line"
    # The seed's formulas, as it writes them.
    assert r"(G_t - V(s_t))" in ladder
    assert r"\text{clip}(r_t(\theta), 1 - \epsilon, 1 + \epsilon) A(s_t, a_t)" in ladder


@pytest.mark.parametrize("question,name", sorted(STUDIES.items()))
def test_study_answers_quote_their_committed_study_and_the_command_that_made_it(question, name):
    """Each study answer quotes the results table of the report committed in docs/studies/NAME, and
    its `policygrad study ...` command builds exactly the spec that study.json holds."""
    from policygrad.studies.named import named_spec
    from policygrad.studies.spec import read_spec

    answer = section(GUIDE.read_text(), f"### Q{question}.")
    report = (STUDY_DIR / name / "report.md").read_text()
    table = report[report.index("## Results per value"):report.index("## Tests")]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) >= 4, f"{name}/report.md has no results table"
    for row in rows:
        assert row in answer, f"Q{question} does not quote this row of {name}/report.md: {row}"
    conclusion = report.split("## Conclusion")[1].split("## ")[0].strip()
    assert conclusion.split(": ")[0] in answer, f"Q{question} does not quote {name}'s conclusion: {conclusion}"
    for figure in re.findall(r"\]\((studies/[^)]+)\)", answer):
        assert (GUIDE.parent / figure).is_file(), f"Q{question} shows {figure}, which is not committed"
    commands = [line for line in answer.splitlines() if line.startswith("policygrad study ")]
    assert len(commands) == 1, f"Q{question} should give the one command that made {name}"
    argv = shlex.split(commands[0], comments=True)
    kind, options = argv[2], dict(zip(argv[3::2], argv[4::2]))
    spec = named_spec(kind, options["--algo"], options["--env"], int(options["--seeds"]),
                      parse_count(options["--total-steps"]))
    # the same study: the same runs (the report-only keys, baseline, test, min_effect, notes, aside)
    assert spec.identity() == read_spec(STUDY_DIR / name).identity(), f"Q{question}'s command does not make {name}"
    assert options["--out-dir"] == "docs/studies" and spec.name == name


@pytest.mark.parametrize("name", ["compare_CartPole-v1", "compare_Pendulum-v1"])
def test_q24_quotes_its_committed_comparisons_and_the_commands_that_made_them(name):
    answer = section(GUIDE.read_text(), "### Q24.")
    report = (STUDY_DIR / name / "report.md").read_text()
    table = report[report.index("## Results per value"):report.index("## Grouping")]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) >= 4 and all(row in answer for row in rows), f"Q24 does not quote {name}'s results table"
    assert "| rank |" not in answer.split("**Pendulum-v1")[0] and "rank = 1 +" not in answer
    # its grouping by the final evaluation (letters, not ranks), and its conclusion
    final = report.split("### Final evaluation")[1]
    letters = [line for line in final[:final.index("P(row better")].splitlines() if line.startswith("| ")]
    assert letters[0].startswith("| group | method |") and all(row in answer for row in letters), \
        f"Q24 does not quote {name}'s grouping by the final evaluation"
    conclusion = report.split("## Conclusion")[1].split("## ")[0].strip()
    assert conclusion.split(". ")[0] in " ".join(answer.split()), f"Q24 does not quote {name}'s conclusion"
    spec = json.loads((STUDY_DIR / name / "study.json").read_text())
    env = spec["env_id"]
    [command] = [line for line in answer.splitlines() if line.startswith(f"policygrad compare --env {env} ")
                 and "--out-dir docs/studies" in line]
    options = dict(zip(*[iter(shlex.split(command, comments=True)[2:])] * 2))
    assert options["--methods"].split(",") == spec["vary"]["method"]
    assert int(options["--seeds"]) == len(spec["seeds"])
    assert parse_count(options["--total-steps"]) == spec["total_steps"]
    assert parse_count(options["--eval-every"]) == spec["eval_every"]
    assert int(options["--eval-episodes"]) == spec["eval_episodes"]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """A temporary working directory, and tempfile.mkdtemp() inside it (nothing is left behind)."""
    monkeypatch.chdir(tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return tmp_path


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_snippet_runs(block: Block, in_tmp, capsys):
    # Leading newlines make the guide's own line numbers appear in any traceback.
    code = compile("\n" * (block.first_line - 1) + block.code, str(GUIDE), "exec")
    exec(code, {"__name__": "__guide__"})  # noqa: S102 (our own documentation, not user input)
    assert capsys.readouterr().out.strip(), f"the snippet under {block.heading!r} prints nothing"


@pytest.mark.parametrize("block", COMMANDS, ids=[b.id for b in COMMANDS])
def test_command_lines_run(block: Block, in_tmp, capsys):
    if SKIP_MARK in block.code:
        pytest.skip("marked '# not run in tests' (a long run)")
    for line in command_lines(block.code):
        argv = shlex.split(line, comments=True)
        assert main(argv[1:]) == 0, f"`{line}` failed: {capsys.readouterr().err}"


CONTINUOUS_RESULTS = GUIDE.parents[1] / "benchmarks" / "results" / "CONTINUOUS.jsonl"
ZOO_PRESETS_RUN = CONTINUOUS_RESULTS.parent / "continuous_f5d1b3e.jsonl"  # the zoo's presets, before issue 32


def runs_of(path: Path, lib: str) -> dict[tuple, float]:
    """(algo, env_id, seed) -> evaluation mean of one library's learning runs in a continuous.py JSON-lines file."""
    return {(r["algo"], r["env_id"], r["seed"]): r["mean"] for r in map(json.loads, path.read_text().splitlines())
            if r["kind"] == "learn" and r.get("lib", "policygrad") == lib and "error" not in r}


def scores_in(cell: str) -> list[float]:
    """The one-decimal scores of a table cell; "(+- 2,264.2 over its 20 episodes)" is not a score."""
    return [float(n.replace(",", "")) for n in re.findall(r"-?[\d,]+\.\d", re.sub(r"\([^)]*\)", "", cell))]


def test_continuous_control_section_quotes_the_benchmark_run():
    """Every score in the guide's table of the presets at their budgets is the one benchmarks/continuous.py
    recorded for that algorithm, environment, seed and library (re-run it, re-quote it), the mean column is
    policygrad's mean over those seeds, and every run is quoted."""
    part = section(GUIDE.read_text(), "### Continuous control at the published budgets")
    recorded = {lib: runs_of(CONTINUOUS_RESULTS, lib) for lib in ("policygrad", "sb3")}
    quoted: dict[str, set] = {"policygrad": set(), "sb3": set()}
    for line in part.splitlines():
        row = re.match(r"\| (PPO|A2C)(?: \(gSDE\))? (\S+), \S+ \| ([\d, -]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|",
                       line)
        if row is None:
            continue
        algo, env_id, seeds = row.group(1).lower(), row.group(2), row.group(3)
        first, _, last = seeds.partition("-")
        seeds = list(range(int(first), int(last) + 1)) if last else [int(s) for s in seeds.split(", ")]
        ours = [round(recorded["policygrad"][(algo, env_id, s)], 1) for s in seeds]
        assert scores_in(row.group(4)) == ours, line
        theirs = [(algo, env_id, s) for s in seeds if (algo, env_id, s) in recorded["sb3"]]
        assert scores_in(row.group(5)) == [round(recorded["sb3"][k], 1) for k in theirs], line
        assert scores_in(row.group(6)) == [round(sum(recorded["policygrad"][(algo, env_id, s)] for s in seeds)
                                                 / len(seeds), 1)], line
        quoted["policygrad"] |= {(algo, env_id, s) for s in seeds}
        quoted["sb3"] |= set(theirs)
    for lib in quoted:
        missing = set(recorded[lib]) - quoted[lib]
        assert not missing, f"{lib}'s runs of {CONTINUOUS_RESULTS.name} the guide does not quote: {missing}"


CANDIDATES = CONTINUOUS_RESULTS.parent


def candidate_scores(source: str) -> list[float]:
    """Seeds 1-3 of a candidate: a sweep's results.csv, or ``LOG.jsonl#algo:env_id`` (continuous.py's runs)."""
    if "#" in source:
        path, key = source.split("#")
        algo, env_id = key.split(":")
        runs = runs_of(CANDIDATES / path, "policygrad")
        return [runs[(algo, env_id, seed)] for seed in (1, 2, 3)]
    with (CANDIDATES / source / "results.csv").open() as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["seed"]))
    return [float(r["final_eval"]) for r in rows]


# The guide's table of candidates: its first cell, and where each side's runs are.
CANDIDATE_ROWS = {
    "PPO Hopper-v5": ("hopper_candidates/cleanrl_ppo_Hopper-v5", "hopper_candidates/zoo_ppo_Hopper-v5"),
    "PPO HalfCheetah-v5": ("CONTINUOUS.jsonl#ppo:HalfCheetah-v5", "halfcheetah_candidates/cleanrl_ppo_HalfCheetah-v5"),
    "PPO Walker2d-v5": ("walker2d_candidates/zoo_ppo_Walker2d-v5", "walker2d_candidates/cleanrl_ppo_Walker2d-v5"),
    "PPO LunarLanderContinuous-v3": ("lunarlandercontinuous_candidates/zoo_ppo_LunarLanderContinuous-v3",
                                     "lunarlandercontinuous_candidates/cleanrl_ppo_LunarLanderContinuous-v3"),
    "A2C HalfCheetah-v5": ("a2c_halfcheetah_candidates/zoobullet_a2c_HalfCheetah-v5",
                           "a2c_halfcheetah_candidates/zoo_a2c_HalfCheetah-v5"),
}


def test_continuous_control_section_quotes_the_candidate_sweeps():
    """The table of candidates: each side's seeds 1-3 as its sweep recorded them, the preset first."""
    part = section(GUIDE.read_text(), "### Continuous control at the published budgets")
    found = {}
    for line in part.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in CANDIDATE_ROWS and len(cells) == 7:  # not the same-seed table's rows, which start alike
            found[cells[0]] = (scores_in(cells[2]), scores_in(cells[4]))
    assert found == {name: tuple([round(v, 1) for v in candidate_scores(side)] for side in sides)
                     for name, sides in CANDIDATE_ROWS.items()}


def test_continuous_control_section_quotes_sb3_on_the_same_seeds():
    """The same-seed table of the zoo's presets as they were at f5d1b3e: policygrad's score from that run of
    continuous.py, SB3's from sb3_same_seeds_ALGO.jsonl."""
    part = section(GUIDE.read_text(), "### Continuous control at the published budgets")
    ours = runs_of(ZOO_PRESETS_RUN, "policygrad")
    rows = 0
    for line in part.splitlines():
        row = re.match(r"\| (PPO|A2C) (\S+) \| (\d) \| (-?[\d,]+\.\d)[^|]* \| (-?[\d,]+\.\d) \|", line)
        if row is None:
            continue
        algo, env_id, seed = row.group(1).lower(), row.group(2), int(row.group(3))
        sb3_runs = CONTINUOUS_RESULTS.parent / f"sb3_same_seeds_{algo}.jsonl"
        sb3 = {(r["env_id"], r["seed"]): sum(e["return"] for e in r["episodes"]) / len(r["episodes"])
               for r in map(json.loads, sb3_runs.read_text().splitlines()) if r["lib"] == "sb3"}
        assert float(row.group(4).replace(",", "")) == round(ours[(algo, env_id, seed)], 1), line
        assert float(row.group(5).replace(",", "")) == round(sb3[(env_id, seed)], 1), line
        rows += 1
    assert rows == 6


def test_a2c_halfcheetah_table_quotes_its_runs():
    """The A2C HalfCheetah seeds table: policygrad before the statistics' prior (continuous_before_prior.jsonl's
    seeds 1-2 and sb3_same_seeds_a2c.jsonl's 3-6), the reverted statistics experiment
    (a2c_halfcheetah_stats_after_update.jsonl), the prior (a2c_halfcheetah_prior.jsonl) and SB3's."""
    part = section(GUIDE.read_text(), "### Continuous control at the published budgets")
    bench = CONTINUOUS_RESULTS.parent

    def means(path: Path, lib: str) -> dict[int, float]:
        return {r["seed"]: sum(e["return"] for e in r["episodes"]) / len(r["episodes"])
                for r in map(json.loads, path.read_text().splitlines())
                if r["lib"] == lib and r["env_id"] == "HalfCheetah-v5"}

    old_run = (bench / "continuous_before_prior.jsonl").read_text().splitlines()
    before = {r["seed"]: r["mean"] for r in map(json.loads, old_run)
              if r["kind"] == "learn" and r["algo"] == "a2c" and r["env_id"] == "HalfCheetah-v5"}
    expected = {"policygrad, statistics from nothing (before 769b15a)":
                    {**before, **means(bench / "sb3_same_seeds_a2c.jsonl", "policygrad")},
                "policygrad, statistics after the update (5b50f06, reverted)":
                    means(bench / "a2c_halfcheetah_stats_after_update.jsonl", "policygrad"),
                "policygrad, statistics from VecNormalize's prior (769b15a)":
                    means(bench / "a2c_halfcheetah_prior.jsonl", "policygrad"),
                "Stable-Baselines3 2.9.2": means(bench / "sb3_same_seeds_a2c.jsonl", "sb3")}
    found = {}
    for line in part.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in expected:
            found[cells[0]] = {seed: float(c.replace(",", "")) for seed, c in enumerate(cells[1:], 1) if c}
    assert found == {name: {s: round(v, 1) for s, v in runs.items()} for name, runs in expected.items()}
