"""benchmarks/preset_candidates.py: a candidate read from a sweep's results.csv and one read from
benchmarks/continuous.py's result log land in the same table, seed by seed, with the comparison."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "preset_candidates.py"


def sweep(path: Path, scores: dict[int, float]) -> Path:
    path.mkdir()
    (path / "study.json").write_text(json.dumps({"fixed": {"num_envs": 1}, "preset": "none"}))
    with open(path / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["run_id", "seed", "status", "final_eval", "wall_seconds"])
        writer.writeheader()
        for seed, score in scores.items():
            writer.writerow({"run_id": f"seed={seed}", "seed": seed, "status": "done", "final_eval": score,
                             "wall_seconds": 300})
        writer.writerow({"run_id": "seed=9", "seed": 9, "status": "failed", "final_eval": "", "wall_seconds": 1})
    return path


def log_entry(seed: int, mean: float, **extra) -> str:
    return json.dumps({"kind": "learn", "lib": "policygrad", "algo": "ppo", "env_id": "Walker2d-v5", "seed": seed,
                       "mean": mean, "wall_seconds": 600.0, "commit": "abc1234", **extra})


def test_a_continuous_log_row_is_a_candidate_beside_a_sweep(tmp_path):
    log = tmp_path / "CONTINUOUS.jsonl"
    log.write_text("\n".join([
        json.dumps({"kind": "speed", "commit": "abc1234"}),
        log_entry(2, 4000.0), log_entry(1, 3500.0), log_entry(3, 3000.0),
        log_entry(1, 9999.0, lib="sb3"),  # SB3's runs of the row are not the preset's
        log_entry(1, 9999.0, env_id="Hopper-v5"),  # nor another row's
    ]) + "\n")
    other = sweep(tmp_path / "cleanrl", {1: 1000.0, 2: 1100.0, 3: 1200.0})
    out = tmp_path / "candidates.md"
    subprocess.run([sys.executable, str(SCRIPT), "--env", "Walker2d-v5", "--out", str(out),
                    f"zoo preset={log}#ppo:Walker2d-v5", f"CleanRL defaults={other}"], check=True,
                   capture_output=True)
    text = out.read_text()
    assert "| zoo preset | 1, 2, 3 | 3,500.0, 4,000.0, 3,000.0 | 3,500.0 | 3,000.0 | 600, 600, 600 |" in text
    assert "| CleanRL defaults | 1, 2, 3 | 1,000.0, 1,100.0, 1,200.0 | 1,100.0 | 1,000.0 | 300, 300, 300 |" in text
    assert "| CleanRL defaults | -2,400.0 |" in text
    assert "`ppo:Walker2d-v5` in" in text and "commit abc1234" in text


def test_a_log_without_the_row_is_a_one_line_error(tmp_path):
    log = tmp_path / "CONTINUOUS.jsonl"
    log.write_text(log_entry(1, 3500.0) + "\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "--env", "Hopper-v5", "--out", str(tmp_path / "x.md"),
                           f"preset={log}#ppo:Hopper-v5"], capture_output=True, text=True)
    assert done.returncode != 0 and "no finished policygrad run of ppo:Hopper-v5" in done.stderr
    assert not (tmp_path / "x.md").exists()
