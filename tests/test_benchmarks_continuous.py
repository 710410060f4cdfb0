"""benchmarks/continuous.py without its hours of training: the Markdown it renders from result records (the
per-library summary, targets and gaps, references by preset source), what --resume keeps, how a preset's source
is read, and that SB3's policies are scored on the very episodes policygrad's evaluation plays."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

import policygrad as pg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import continuous  # noqa: E402
from sb3_same_seeds import ZOO, evaluate_as_policygrad, zoo_as_policygrad  # noqa: E402

SOURCES = {"ppo:Hopper-v5": "cleanrl", "ppo:HalfCheetah-v5": "zoo", "ppo:Walker2d-v5": "zoo"}


def run(algo: str, env_id: str, seed: int, mean: float, lib: str = "policygrad", wall: float = 300.0) -> dict:
    """A fabricated record, shaped as the driver writes them."""
    return {"kind": "learn", "lib": lib, "algo": algo, "env_id": env_id, "seed": seed, "steps": 1_000_000,
            "mean": mean, "std": 10.0, "returns": [mean - 5, mean + 5], "global_step": 1_000_448,
            "wall_seconds": wall, "train_seconds": wall - 5, "sps": 3000.0, "commit": "abc1234"}


def table(markdown: str, heading: str) -> list[list[str]]:
    """The rows of the table under ``## heading``, as cells (header and rule left out)."""
    part = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in part.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in rows[1:]]


def test_target_gaps():
    hopper = continuous.Target(mean=3200, each=2500)
    assert hopper.gaps([3400.0, 3300.0, 3000.0]) == []
    assert hopper.gaps([3400.0, 3300.0, 2400.0]) == ["mean by 166.7", "1 seed below 2,500, the worst by 100.0"]
    walker = continuous.Target(each=3400)
    assert walker.gaps([3500.0, 3399.0, 3300.0]) == ["2 seeds below 3,400, the worst by 100.0"]
    assert walker.describe() == "every seed >= 3,400" and hopper.describe() == "mean >= 3,200, every seed >= 2,500"


def test_render_summary_and_per_seed_tables():
    rows = [run("ppo", "Hopper-v5", s, m, wall=w) for s, m, w in ((1, 3400.0, 300), (2, 3300.0, 320), (3, 2400.0, 340))]
    rows += [run("ppo", "HalfCheetah-v5", s, m) for s, m in ((1, 5600.0), (2, 5500.0), (3, 5400.0))]
    rows += [run("ppo", "HalfCheetah-v5", s, m, lib="sb3", wall=600) for s, m in ((1, 5000.0), (2, 4400.0))]
    rows += [{**run("ppo", "HalfCheetah-v5", 3, 0.0, lib="sb3"), "error": "MemoryError"}]
    rows += [run("ppo", "Walker2d-v5", 2, 3500.0)]
    markdown = continuous.render(list(reversed(rows)), SOURCES, total=12, command="continuous.py", here="abc1234")
    assert "(partial: 10 of 12 runs finished)" in markdown
    summary = table(markdown, "Summary")
    # job order of LEARNING, SB3's line right under policygrad's
    assert [(r[1], r[2]) for r in summary] == [("HalfCheetah-v5", "policygrad"), ("HalfCheetah-v5", "SB3"),
                                             ("Walker2d-v5", "policygrad"), ("Hopper-v5", "policygrad")]
    cheetah, cheetah_sb3, walker, hopper = summary
    # columns: algorithm, environment, library, preset, seeds, mean, worst seed, target, result, wall s, reference
    assert cheetah[4:10] == ["3 of 3", "5,500.0", "5,400.0", "mean >= 5,300, every seed >= 4,500", "met", "300"]
    assert cheetah[10].startswith("5,819 (RL Baselines3 Zoo")
    assert cheetah_sb3[4:10] == ["2 of 3 (1 failed)", "4,700.0", "4,400.0", "mean >= 5,300, every seed >= 4,500",
                                 "so far **missed**: mean by 600.0; 1 seed below 4,500, the worst by 100.0", "600"]
    assert walker[4] == "1 of 3" and walker[8] == "so far met"
    assert hopper[3] == "CleanRL's defaults" and hopper[9] == "320"
    assert hopper[8] == "**missed**: mean by 166.7; 1 seed below 2,500, the worst by 100.0"
    assert hopper[10] == "2,383 +- 272 (CleanRL's ppo_continuous_action.py, Hopper-v4, 1M steps, 3 seeds)"
    per_seed = table(markdown, "Per seed")
    assert [(r[1], r[2], r[3]) for r in per_seed][:6] == [
        ("HalfCheetah-v5", "policygrad", "1"), ("HalfCheetah-v5", "policygrad", "2"),
        ("HalfCheetah-v5", "policygrad", "3"), ("HalfCheetah-v5", "SB3", "1"), ("HalfCheetah-v5", "SB3", "2"),
        ("HalfCheetah-v5", "SB3", "3")]
    assert per_seed[5][4] == "failed: MemoryError"
    hopper_seeds = [r for r in per_seed if r[1] == "Hopper-v5"]
    # columns: ..., env steps, eval mean +- std, worst episode, every-seed floor, wall s, steps/s
    assert [r[5:9] for r in hopper_seeds] == [["3,400.0 +- 10.0", "3,395.0", "met", "300"],
                                              ["3,300.0 +- 10.0", "3,295.0", "met", "320"],
                                              ["2,400.0 +- 10.0", "2,395.0", "**missed by 100.0**", "340"]]


def test_reference_follows_the_preset_source():
    assert continuous.reference_for("ppo", "Hopper-v5", "zoo").startswith("2,410 (RL Baselines3 Zoo")
    assert continuous.reference_for("ppo", "Hopper-v5", "cleanrl").startswith("2,383 +- 272 (CleanRL")
    # a preset of our own: the zoo's number, said to be another setting's
    assert continuous.reference_for("ppo", "Swimmer-v5", "own").endswith("for zoo's setting, not this preset")
    assert continuous.reference_for("ppo", "Pendulum-v1", "own") == ""


def test_sb3_rows_only_where_the_preset_is_the_zoos():
    jobs = continuous.selected(["ppo:HalfCheetah-v5", "ppo:Hopper-v5"])
    specs = continuous.learning_specs(jobs, {"ppo:HalfCheetah-v5": "zoo", "ppo:Hopper-v5": "cleanrl"}, quick=True,
                                      sb3=True)
    assert [(s["env_id"], s["lib"], s["seed"], s["steps"]) for s in specs] == [
        ("HalfCheetah-v5", lib, seed, 2048) for lib in ("policygrad", "sb3") for seed in (1, 2, 3)] + [
        ("Hopper-v5", "policygrad", seed, 2048) for seed in (1, 2, 3)]
    no_sb3 = continuous.learning_specs(jobs, {"ppo:HalfCheetah-v5": "zoo"}, quick=False, sb3=False)
    assert {s["lib"] for s in no_sb3} == {"policygrad"} and {s["steps"] for s in no_sb3} == {1_000_000}
    # a preset with another environment's zoo entry: SB3 runs that entry's values, named in the spec
    other = continuous.learning_specs(continuous.selected(["a2c:HalfCheetah-v5"]),
                                      {"a2c:HalfCheetah-v5": "zoo:HalfCheetahBulletEnv-v0"}, quick=True, sb3=True)
    assert [(s["lib"], s.get("source")) for s in other] == [("policygrad", None)] * 3 + [
        ("sb3", "zoo:HalfCheetahBulletEnv-v0")] * 3


def test_a_preset_from_another_environments_zoo_entry_is_named_and_gets_its_own_sb3_values():
    """A2C's HalfCheetah preset carries the zoo's HalfCheetahBulletEnv-v0 values: its source names that entry,
    SB3's row runs those values (not the zoo's HalfCheetah entry), and the zoo's HalfCheetah score is said to
    be another setting's."""
    zoo_own, bullet = continuous.zoo_settings("a2c", "HalfCheetah-v5").values()
    bullet_values = zoo_as_policygrad("a2c", "HalfCheetah-v5", bullet)
    assert bullet_values["distribution"] == "gsde" and bullet_values["num_envs"] == 4
    config = pg.make_config("a2c", env_id="HalfCheetah-v5", preset="none", **bullet_values)
    assert continuous.source_of(config) == "zoo:HalfCheetahBulletEnv-v0"
    own = pg.make_config("a2c", env_id="HalfCheetah-v5", preset="none",
                         **zoo_as_policygrad("a2c", "HalfCheetah-v5", zoo_own))
    assert continuous.source_of(own) == "zoo"
    assert continuous.source_name("zoo:HalfCheetahBulletEnv-v0") == "the zoo's HalfCheetahBulletEnv-v0 entry"
    assert continuous.reference_for("a2c", "HalfCheetah-v5", "zoo:HalfCheetahBulletEnv-v0").endswith(
        "for zoo's setting, not this preset")
    # the shipped preset is that entry (run/presets/a2c.yaml), so SB3's row digests its values
    assert continuous.preset_source("a2c", "HalfCheetah-v5") == "zoo:HalfCheetahBulletEnv-v0"
    assert continuous.setting("sb3", "a2c", "HalfCheetah-v5") == continuous.digest(
        {k: v for k, v in vars(bullet).items() if k != "entry"})
    assert continuous.setting("sb3", "a2c", "HalfCheetah-v5") != continuous.digest(
        {k: v for k, v in vars(zoo_own).items() if k != "entry"})


SETTINGS = {("policygrad", "ppo", "Hopper-v5"): "hop1", ("policygrad", "ppo", "HalfCheetah-v5"): "pgcheetah",
            ("sb3", "ppo", "HalfCheetah-v5"): "zoocheetah"}


def recorded(record: dict, setting: object, code: str = "code1") -> dict:
    return {**record, "code": code, "setting": setting}


def test_resume_keeps_both_libraries_with_the_same_code_and_setting():
    old = {k: v for k, v in run("ppo", "Hopper-v5", 1, 3000.0).items() if k != "lib"}  # before "lib" was recorded
    records = [recorded(old, "hop1"), recorded(run("ppo", "HalfCheetah-v5", 1, 5000.0, lib="sb3"), "zoocheetah"),
               recorded({**run("ppo", "HalfCheetah-v5", 2, 0.0, lib="sb3"), "error": "killed"}, "zoocheetah"),
               recorded(run("ppo", "HalfCheetah-v5", 3, 5000.0, lib="sb3"), "zoocheetah", code="code0"),  # other src/
               recorded(run("ppo", "HalfCheetah-v5", 1, 5000.0), "pgcheetah-before"),  # its preset changed since
               run("ppo", "HalfCheetah-v5", 2, 5000.0),  # recorded before code and setting were
               recorded({"kind": "speed", "policygrad": [1.0], "sb3": [1.0]},
                        {"policygrad": "pgcheetah", "sb3": "zoocheetah"})]
    done, speed = continuous.resumable([json.dumps(r) for r in records], "code1", SETTINGS)
    assert sorted(continuous.run_key(d) for d in done) == [("policygrad", "ppo", "Hopper-v5", 1, 1_000_000),
                                                          ("sb3", "ppo", "HalfCheetah-v5", 1, 1_000_000)]
    assert speed is not None and speed["kind"] == "speed"
    changed = {**SETTINGS, ("policygrad", "ppo", "HalfCheetah-v5"): "pgcheetah2"}
    assert continuous.resumable([json.dumps(r) for r in records], "code1", changed)[1] is None  # speed reruns
    assert continuous.resumable([json.dumps(r) for r in records], "code1+dirty", SETTINGS) == ([], None)


def test_a_row_setting_follows_its_preset_and_the_code_version_ignores_presets():
    """The policygrad setting is the preset's values (another environment's differ); SB3's is the zoo's
    entry; the code version is a digest of src/'s files without the presets."""
    hopper = continuous.setting("policygrad", "ppo", "Hopper-v5")
    assert hopper == continuous.setting("policygrad", "ppo", "Hopper-v5")
    assert hopper != continuous.setting("policygrad", "ppo", "Walker2d-v5")
    assert continuous.setting("sb3", "ppo", "HalfCheetah-v5") != continuous.setting("sb3", "ppo", "Walker2d-v5")
    assert continuous.setting("sb3", "ppo", "Hopper-v5") == "none"  # CleanRL's preset: SB3 runs no row there
    import benchtools

    listing = ["100644 aaaa 0\tsrc/policygrad/core/ppo.py", "100644 bbbb 0\tsrc/policygrad/run/presets/ppo.yaml"]
    preset_edited = [listing[0], "100644 cccc 0\tsrc/policygrad/run/presets/ppo.yaml"]
    code_edited = ["100644 dddd 0\tsrc/policygrad/core/ppo.py", listing[1]]
    assert benchtools.code_digest(listing) == benchtools.code_digest(preset_edited)
    assert benchtools.code_digest(listing) != benchtools.code_digest(code_edited)
    real = benchtools.tracked_src()  # this checkout's listing: its preset lines are the ones left out
    presets = [line for line in real if line.split("\t", 1)[1].startswith(benchtools.PRESETS)]
    assert {line.rsplit("/", 1)[1] for line in presets} >= {"ppo.yaml", "a2c.yaml"}
    assert benchtools.code_digest(real) == benchtools.code_digest([line for line in real if line not in presets])
    version = benchtools.code_version()  # this checkout's
    assert len(version.split("+")[0]) == 12 and version == benchtools.code_version()


def test_preset_source_is_read_from_the_values():
    """A config with the zoo's values translated is the zoo's, one changed value makes it ours, CleanRL's
    defaults are CleanRL's (Pendulum: no MuJoCo needed)."""
    zoo = zoo_as_policygrad("a2c", "Pendulum-v1")
    assert zoo["vf_coef"] == 2 * ZOO["a2c"]["Pendulum-v1"].kwargs["vf_coef"] and zoo["distribution"] == "gsde"
    config = pg.make_config("a2c", env_id="Pendulum-v1", preset="none", **zoo)
    assert continuous.source_of(config) == "zoo"
    changed = pg.make_config("a2c", env_id="Pendulum-v1", preset="none", **{**zoo, "learning_rate": 1e-3})
    assert continuous.source_of(changed) == "own"
    cleanrl = pg.make_config("ppo", env_id="Pendulum-v1", preset="none", **continuous.CLEANRL_PPO)
    assert continuous.source_of(cleanrl) == "cleanrl"
    assert continuous.source_of(pg.make_config("ppo", env_id="Pendulum-v1", preset="none")) == "own"


def test_evaluate_as_policygrad_plays_policygrads_episodes():
    """SB3's evaluation in continuous.py: the same episode starts as policygrad's own evaluation (8 copies, copy i
    from seed + i, later episodes after unseeded resets), checked with a policygrad agent through both."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = pg.make_config("ppo", env_id="Pendulum-v1", preset="none", total_steps=512, num_envs=2, num_steps=256,
                             normalize_obs=True, eval_episodes=10, eval_seed=12345, progress=False, tensorboard=False,
                             checkpoint_every=0)
        result = pg.train(cfg, run_dir=Path(tmp) / "run")
        agent = pg.load(Path(tmp) / "run")
        episodes = evaluate_as_policygrad("Pendulum-v1", lambda obs: agent.act(obs, deterministic=True),
                                          lambda obs: obs, seed=12345, episodes=10)  # agent.act normalizes
    assert len(set(result.evaluation.returns)) == 10  # ten different episodes, so the match below means something
    assert sorted(e["return"] for e in episodes) == pytest.approx(sorted(result.evaluation.returns), rel=1e-6)


def test_a_resumed_invocation_names_the_commits_its_rows_ran_at():
    rows = [run("ppo", "Hopper-v5", 1, 3000.0), {**run("ppo", "Hopper-v5", 2, 3100.0), "commit": "def5678"}]
    markdown = continuous.render(rows, SOURCES, command="continuous.py", here="def5678")
    assert "Commit def5678 (resumed: abc1234 ran the runs recorded before" in markdown
    alone = continuous.render(rows[1:], SOURCES, command="continuous.py", here="def5678")
    assert "Commit def5678, started" in alone


def test_policygrad_against_sb3_on_the_same_values_says_whether_the_seeds_tell_a_gap():
    """One line per row both libraries ran: the means, their difference and Welch's p; a wide gap over
    tight seeds is a gap, an overlap of scattered seeds is not, a row SB3 did not run has no line."""
    rows = [run("ppo", "HalfCheetah-v5", s, m) for s, m in ((1, 5600.0), (2, 5500.0), (3, 5400.0))]
    rows += [run("ppo", "HalfCheetah-v5", s, m, lib="sb3") for s, m in ((1, 4000.0), (2, 4100.0), (3, 3900.0))]
    rows += [run("ppo", "Walker2d-v5", s, m) for s, m in ((1, 3000.0), (2, 4000.0), (3, 1000.0))]
    rows += [run("ppo", "Walker2d-v5", s, m, lib="sb3") for s, m in ((1, 2500.0), (2, 3900.0), (3, 1500.0))]
    rows += [run("ppo", "Hopper-v5", s, 3000.0) for s in (1, 2, 3)]
    markdown = continuous.render(rows, SOURCES, command="continuous.py", here="abc1234")
    lines = table(markdown, "policygrad against SB3: the same values on the same seeds")
    assert [(r[1], r[2:6]) for r in lines] == [
        ("HalfCheetah-v5", ["3 and 3", "5,500.0", "4,000.0", "+1,500.0"]),
        ("Walker2d-v5", ["3 and 3", "2,666.7", "2,633.3", "+33.3"])]
    cheetah, walker = lines
    assert cheetah[6].startswith("<") or float(cheetah[6]) < 0.001
    assert cheetah[8] == "yes" and walker[8] == "no" and float(walker[6]) > 0.5


def test_no_same_values_section_without_sb3_rows():
    rows = [run("ppo", "Hopper-v5", s, 3000.0) for s in (1, 2, 3)]
    markdown = continuous.render(rows, SOURCES, command="continuous.py", here="abc1234")
    assert "## policygrad against SB3" not in markdown


def test_render_only_rewrites_the_table_from_its_records_and_refuses_mixed_code(tmp_path, monkeypatch):
    """--render-only runs nothing: the runs of the .jsonl (the last record of each) are shown with the commits
    they ran at; records of two library code versions are one table no longer, so it refuses them."""
    out = tmp_path / "CONTINUOUS.md"
    log = out.with_suffix(".jsonl")
    records = [{**run("ppo", "Hopper-v5", 1, 10.0), "code": "c0de"},
               {**run("ppo", "Hopper-v5", 1, 3000.0), "code": "c0de", "commit": "def5678"},
               {**run("ppo", "Hopper-v5", 2, 3100.0), "code": "c0de"}]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setattr(sys, "argv", ["continuous.py", "--render-only", "--out", str(out)])
    continuous.main()
    markdown = out.read_text()
    assert "the runs ran at commits abc1234, def5678, every one with library code c0de" in markdown
    jobs = continuous.LEARNING
    whole = len(continuous.learning_specs(list(jobs), {job.key: job.source for job in jobs}, False, True))
    assert f"(partial: 2 of {whole} runs finished)" in markdown
    assert [r[3:6] for r in table(markdown, "Per seed")] == [["1", "1,000,448", "3,000.0 +- 10.0"],
                                                           ["2", "1,000,448", "3,100.0 +- 10.0"]]
    assert log.read_text().count("\n") == 3  # the records are read, never rewritten
    log.write_text(log.read_text() + json.dumps({**run("ppo", "Hopper-v5", 3, 3200.0), "code": "other"}) + "\n")
    before = out.read_text()
    with pytest.raises(SystemExit) as exit_info:
        continuous.main()
    assert exit_info.value.code == 2 and out.read_text() == before
