"""What the long benchmark scripts share: a run in a fresh process, and the code version a result belongs to.

``continuous.py`` and ``sb3_same_seeds.py`` both use these; they live here so that neither script imports
the other (``continuous.py`` reuses ``sb3_same_seeds.py``'s zoo values and SB3 runner).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def spawn(spec: dict, script: str | Path) -> dict:
    """Run ``script --worker SPEC`` in a fresh process; its last ``RESULT {json}`` line, or the error."""
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]}
    return json.loads(lines[-1][len("RESULT "):])


def commit() -> str:
    """HEAD's short hash, with ``+dirty`` when src/ has uncommitted changes: results recorded under the
    same value ran the same library code."""
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
    return proc.stdout.strip() + dirty_mark()


def dirty_mark() -> str:
    """``+dirty`` when src/ has uncommitted changes, else nothing."""
    dirty = subprocess.run(["git", "status", "--porcelain", "--", ":/src"], capture_output=True, text=True,
                           cwd=HERE).stdout.strip()
    return "+dirty" if dirty else ""


PRESETS = "src/policygrad/run/presets/"


def code_version() -> str:
    """The library code a result ran with, the presets aside: a digest of the blob ids of src/'s tracked
    files outside run/presets/, with ``+dirty`` when src/ has uncommitted changes. Two commits that differ
    only in presets (or in their comments) share it, so a long benchmark resumed after one preset changed
    keeps every row whose own setting did not change; each row records its setting beside this."""
    return code_digest(tracked_src()) + dirty_mark()


def tracked_src() -> list[str]:
    """``git ls-files -s`` of src/, paths from the repository's root (as PRESETS is written), wherever the
    script runs from."""
    return subprocess.run(["git", "ls-files", "-s", "--full-name", "--", ":/src"], capture_output=True, text=True,
                          cwd=HERE, check=True).stdout.splitlines()


def code_digest(listing: list[str]) -> str:
    """The digest of ``git ls-files -s`` lines ("MODE BLOB STAGE\tPATH") outside the presets."""
    kept = [line for line in listing if not line.split("\t", 1)[1].startswith(PRESETS)]
    return hashlib.sha1("\n".join(kept).encode()).hexdigest()[:12]


def digest(values: object) -> str:
    """A short digest of JSON-able values (a run's setting), stable across processes and machines."""
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]
