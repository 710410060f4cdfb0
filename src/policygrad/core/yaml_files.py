"""Reading a user's YAML file (a preset, a search space): ``yaml.safe_load`` only, so data and never
code, and every failure one line that names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from policygrad.core.errors import UserInputError


def read_yaml(path: str | Path, what: str) -> Any:
    """The data in the YAML file ``path``; UserInputError ``"{what} {path}: ..."`` when it cannot be read or
    parsed (with the line of the first syntax error)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UserInputError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserInputError(f"{what} {path}: not valid YAML{where}") from None
