"""What a study is: :class:`StudySpec` (an algorithm, an environment, the config fields it varies and
the values of each, seeds, a budget) and its record on disk, ``STUDY_DIR/study.json``.

A spec is checked in two steps, both before any run starts: :meth:`StudySpec.check` here (names,
types, duplicates, an empty grid) and :func:`policygrad.studies.grid.expand`, which builds every grid
point's config with ``make_config`` (so an invalid combination is caught too). Every problem is a
UserInputError (a ValueError) with a one-line message naming it; the command line turns it into exit code 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policygrad.algos import algorithm
from policygrad.core.config import Config, check_field_names, user_fields
from policygrad.core.errors import UserInputError
from policygrad.reporting.choices import DEFAULT_MIN_EFFECT, DEFAULT_TEST, check_test
from policygrad.reporting.formatting import format_value
from policygrad.run.files import holds_visible_files, write_text_atomic

STUDY_FILE, RESULTS_FILE, RUNS_DIR = "study.json", "results.csv", "runs"
SPEC_FORMAT = 1
DEFAULT_EVAL_EPISODES = 10
DEFAULT_CURVE_POINTS = 20  # eval_every defaults to total_steps // this
# Config fields a study sets itself, never through vary or fixed: what to use instead (None: nothing)
RESERVED = {"seed": "the study's seeds (--seeds)", "env_id": "the study's env_id (--env)",
            "total_steps": "the study's total_steps (--total-steps)", "eval_every": "the study's eval_every "
            "(--eval-every)", "eval_episodes": "the study's eval_episodes (--eval-episodes)",
            "preset": "the study's preset (--preset)", "run_dir": None, "progress": None}
REPORT_ONLY = ("notes", "test", "min_effect", "baseline")  # keys that change no run: not a study's identity
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+,-]*")


def field_kind(config_cls: type[Config], name: str) -> str:
    """``int``, ``float``, ``bool``, ``str`` or ``tuple`` (of ints: hidden_sizes): a field's type."""
    annotation = str({f.name: f for f in user_fields(config_cls)}[name].type)
    return "tuple" if annotation.startswith("tuple") else annotation


def typed_value(config_cls: type[Config], name: str, value: Any, where: str) -> Any:
    """``value`` as field ``name`` holds it (ints for float fields become floats, lists and ``64x64``
    strings for tuple fields become tuples); UserInputError ``WHERE NAME=VALUE: expected ...`` otherwise."""
    kind = field_kind(config_cls, name)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "tuple" and isinstance(value, str) and re.fullmatch(r"\d+(x\d+)*", value):
        value = tuple(int(v) for v in value.split("x"))
    if (kind == "int" and is_int or kind == "bool" and isinstance(value, bool)
            or kind == "str" and isinstance(value, str)):
        return value
    if kind == "float" and (is_int or isinstance(value, float)):
        return float(value)
    if kind.startswith("dict") and isinstance(value, dict):  # env_kwargs: the config checks its values
        return value
    if kind == "tuple" and isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    expected = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                "tuple": "widths such as 64x64 (a list of integers)"}.get(kind, kind)
    raise UserInputError(f"{where} {name}={value!r}: expected {expected}, not {type(value).__name__}")


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass
class StudySpec:
    """A study: the grid of every ``vary`` field's values (in the order given) times ``seeds``, each
    point trained for ``total_steps`` with ``fixed`` (and ``adjust``) applied, evaluated every
    ``eval_every`` steps on ``eval_episodes`` episodes. Build one with :func:`make_spec`.

    ``adjust``: rules ``{"if": {field: value, ...}, "set": {field: value, ...}}`` changing other fields
    at the grid points where every ``if`` holds (a field that must change with a varied one, e.g.
    ``norm_adv`` false where ``reward_norm`` is ``standardize``). ``notes``: what whoever built the
    spec (a named study) wants the reader to know; neither changes run ids.

    ``test``: the report's primary test (``mannwhitney``, the default, or ``welch``; the other one is
    shown as a sensitivity column); ``min_effect``: the smallest difference of interest, in standard
    deviations of the seeds' scores, that the report's power and "seeds needed" are for. Both are
    about the report only: they change no run, and a study is the same study whatever they are.
    ``baseline``: the value of the (one) varied field the report tests the others against (a named
    study: the current value, the preset's); None: the first value. Report-only too."""

    name: str
    algo: str
    env_id: str
    vary: dict[str, list[Any]]
    seeds: list[int]
    total_steps: int
    eval_every: int
    eval_episodes: int = DEFAULT_EVAL_EPISODES
    threshold: float | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    preset: str = "auto"
    adjust: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    test: str = DEFAULT_TEST
    min_effect: float = DEFAULT_MIN_EFFECT
    baseline: Any = None

    @property
    def config_class(self) -> type[Config]:
        return algorithm(self.algo).Config

    def environment_kwargs(self) -> dict[str, Any]:
        """The environment's keyword arguments every run gets (a fixed ``env_kwargs``; {} without)."""
        return dict(self.fixed.get("env_kwargs") or {})

    def check(self) -> None:
        """Names, types, duplicates and emptiness (one-line UserInputErrors); values are coerced to the
        fields' types in place. :func:`policygrad.studies.grid.expand` then builds every config."""
        if not isinstance(self.name, str) or not NAME.fullmatch(self.name):
            raise UserInputError(f"study name {self.name!r} is invalid: expected letters, digits and . _ = + , - "
                                 "(it names the study's directory)")
        config_cls = self.config_class  # ValueError naming the algorithms if unknown
        if not isinstance(self.env_id, str) or not self.env_id:
            raise UserInputError(f"env_id={self.env_id!r} is invalid: expected a Gymnasium id such as CartPole-v1")
        for key in ("total_steps", "eval_episodes"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserInputError(f"{key}={value!r} is invalid: expected an integer > 0")
        if not isinstance(self.eval_every, int) or isinstance(self.eval_every, bool) or self.eval_every < 0:
            raise UserInputError(f"eval_every={self.eval_every!r} is invalid: expected an integer >= 0 (0: only the "
                                 "final evaluation, no learning curves)")
        if self.threshold is not None:
            if not isinstance(self.threshold, (int, float)) or isinstance(self.threshold, bool) or \
                    self.threshold != self.threshold:
                raise UserInputError(f"threshold={self.threshold!r} is invalid: expected a number")
            self.threshold = float(self.threshold)
        if not isinstance(self.seeds, list) or not self.seeds:
            raise UserInputError(f"seeds={self.seeds!r}: the grid is empty (no seeds): expected a count N (seeds 1..N) "
                                 "or a list of seeds")
        for seed in self.seeds:
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise UserInputError(f"seeds: {seed!r} is not a seed (an integer >= 0)")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserInputError(f"seeds={self.seeds}: a seed is listed twice")
        if not isinstance(self.vary, dict) or not isinstance(self.fixed, dict):
            raise UserInputError("vary and fixed must map field names to values")
        self._check_fields(config_cls, self.vary, "vary")
        self._check_fields(config_cls, self.fixed, "fixed")
        both = sorted(set(self.vary) & set(self.fixed))
        if both:
            raise UserInputError(f"{both[0]} is both varied and fixed: give it once")
        for name, values in self.vary.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise UserInputError(f"vary {name}={values!r}: expected a list of values")
            if not values:
                raise UserInputError(f"vary {name} has no values: the grid is empty")
            typed = [typed_value(config_cls, name, v, "vary") for v in values]
            seen = [format_value(v) for v in typed]
            twice = next((s for i, s in enumerate(seen) if s in seen[:i]), None)
            if twice is not None:
                raise UserInputError(f"vary {name} lists {twice} twice")
            self.vary[name] = typed
        for name, value in self.fixed.items():
            self.fixed[name] = typed_value(config_cls, name, value, "fixed")
        self._check_adjust(config_cls)
        self.test = check_test(self.test)
        if not isinstance(self.min_effect, (int, float)) or isinstance(self.min_effect, bool) or \
                not self.min_effect > 0 or self.min_effect == float("inf"):
            raise UserInputError(f"min_effect={self.min_effect!r} is invalid: expected a number > 0 (the smallest "
                                 "difference of interest, in standard deviations of the seeds' scores)")
        self.min_effect = float(self.min_effect)
        if self.baseline is not None:
            if len(self.vary) != 1:
                raise UserInputError(f"baseline={self.baseline!r}: a baseline value needs exactly one varied field, "
                                     f"not {len(self.vary)}")
            (name, values), = self.vary.items()
            typed = typed_value(config_cls, name, self.baseline, "baseline")
            if format_value(typed) not in [format_value(v) for v in values]:
                raise UserInputError(f"baseline {name}={format_value(typed)} is not one of its values: "
                                     f"{', '.join(format_value(v, short=True) for v in values)}")
            self.baseline = typed

    @staticmethod
    def _check_fields(config_cls: type[Config], values: Mapping[str, Any], where: str) -> None:
        for name in values:
            if not isinstance(name, str):
                raise UserInputError(f"{where}: {name!r} is not a field name")
            if name in RESERVED:
                instead = f"; use {RESERVED[name]}" if RESERVED[name] else ""
                raise UserInputError(f"{where} {name}: a study sets {name} itself{instead}")
            try:
                check_field_names(config_cls, {name: None})
            except ValueError as exc:
                raise UserInputError(f"{where}: {exc}") from None

    def _check_adjust(self, config_cls: type[Config]) -> None:
        if not isinstance(self.adjust, list):
            raise UserInputError("adjust must be a list of {'if': {...}, 'set': {...}} rules")
        for rule in self.adjust:
            if not isinstance(rule, dict) or set(rule) != {"if", "set"} or not all(
                    isinstance(rule[k], dict) and rule[k] for k in ("if", "set")):
                raise UserInputError(f"adjust rule {rule!r}: expected "
                                     "{'if': {field: value}, 'set': {field: value}}")
            for name, value in rule["if"].items():
                if name not in self.vary:
                    raise UserInputError(f"adjust rule {rule!r}: {name!r} is not a varied field")
                typed = typed_value(config_cls, name, value, "adjust if")
                if format_value(typed) not in [format_value(v) for v in self.vary[name]]:
                    raise UserInputError(f"adjust rule {rule!r}: {name}={format_value(typed)} is not one of its values")
                rule["if"][name] = typed
            self._check_fields(config_cls, rule["set"], "adjust set")
            for name, value in rule["set"].items():
                if name in self.vary:
                    raise UserInputError(f"adjust rule {rule!r}: {name} is varied; it cannot be set too")
                rule["set"][name] = typed_value(config_cls, name, value, "adjust set")

    # -- the record ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the spec's order (the order of ``vary`` is the grid's)."""
        return {"format": SPEC_FORMAT, "name": self.name, "algo": self.algo, "env_id": self.env_id,
                "vary": {k: [_jsonable(v) for v in vs] for k, vs in self.vary.items()},
                "seeds": list(self.seeds), "total_steps": self.total_steps, "eval_every": self.eval_every,
                "eval_episodes": self.eval_episodes, "threshold": self.threshold,
                "fixed": {k: _jsonable(v) for k, v in self.fixed.items()}, "preset": self.preset,
                "adjust": [{"if": {k: _jsonable(v) for k, v in r["if"].items()},
                            "set": {k: _jsonable(v) for k, v in r["set"].items()}} for r in self.adjust],
                "notes": list(self.notes), "test": self.test, "min_effect": self.min_effect,
                "baseline": _jsonable(self.baseline)}

    @classmethod
    def from_dict(cls, data: Any, source: str = STUDY_FILE) -> StudySpec:
        """The spec a file recorded, checked (:meth:`check`)."""
        if not isinstance(data, dict):
            raise UserInputError(f"{source}: expected a JSON object")
        data = dict(data)
        if data.pop("format", SPEC_FORMAT) != SPEC_FORMAT:
            raise UserInputError(f"{source}: written by another version of policygrad (format {data.get('format')!r})")
        names = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - names)
        missing = sorted(n for n in ("name", "algo", "env_id", "vary", "seeds", "total_steps", "eval_every")
                         if n not in data)
        if unknown or missing:
            problems = ([f"unknown keys {', '.join(unknown)}"] if unknown else []) + (
                [f"missing {', '.join(missing)}"] if missing else [])
            raise UserInputError(f"{source}: not a study spec ({'; '.join(problems)})")
        spec = cls(**data)
        try:
            spec.check()
        except ValueError as exc:
            raise UserInputError(f"{source}: {exc}") from None
        return spec

    def identity(self) -> list[tuple[str, Any]]:
        """What makes two specs the same study (``vary``'s order included: it orders the grid)."""
        data = self.to_dict()
        data["vary"] = list(data["vary"].items())
        return [(k, v) for k, v in data.items() if k not in REPORT_ONLY]


def make_spec(algo: str, env_id: str, vary: Mapping[str, Sequence[Any]] | None = None, seeds: int | Sequence[int] = 3,
              total_steps: int = 100_000, *, name: str | None = None, eval_every: int | None = None,
              eval_episodes: int = DEFAULT_EVAL_EPISODES, threshold: float | None = None,
              fixed: Mapping[str, Any] | None = None, preset: str = "auto",
              adjust: Sequence[Mapping[str, Mapping[str, Any]]] | None = None,
              notes: Sequence[str] = (), test: str = DEFAULT_TEST,
              min_effect: float = DEFAULT_MIN_EFFECT, baseline: Any = None) -> StudySpec:
    """A checked :class:`StudySpec`. ``seeds``: a count N (seeds 1..N) or the seeds themselves;
    ``eval_every``: default ``total_steps // 20``; ``name``: default ``ALGO_ENV_FIELD...``."""
    vary_lists: dict[str, Any] = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in (vary or {}).items()}
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds <= 0:
            raise UserInputError(f"seeds={seeds}: the grid is empty (no seeds): expected a count >= 1")
        seed_list = list(range(1, seeds + 1))
    elif isinstance(seeds, Sequence) and not isinstance(seeds, str):
        seed_list = list(seeds)
    else:
        raise UserInputError(f"seeds={seeds!r} is invalid: expected a count N (seeds 1..N) or a list of seeds")
    if eval_every is None:
        eval_every = total_steps // DEFAULT_CURVE_POINTS if isinstance(total_steps, int) else 0
    spec = StudySpec(name=name or default_name(algo, env_id, list(vary_lists)), algo=algo, env_id=env_id,
                     vary=vary_lists,
                     seeds=seed_list, total_steps=total_steps, eval_every=eval_every, eval_episodes=eval_episodes,
                     threshold=threshold, fixed=dict(fixed or {}), preset=preset,
                     adjust=[{"if": dict(r.get("if", {})), "set": dict(r.get("set", {}))} for r in adjust or []],
                     notes=list(notes), test=test, min_effect=min_effect, baseline=baseline)
    spec.check()
    return spec


def default_name(algo: str, env_id: str, fields: Sequence[str], prefix: str = "") -> str:
    """``[PREFIX_]ALGO_ENV_FIELD1_FIELD2`` (``..._seeds`` when nothing varies), safe as a directory name."""
    env = re.sub(r"[^A-Za-z0-9._-]", "_", env_id)
    parts = ([prefix] if prefix else []) + [algo, env] + (list(fields) if fields or prefix else ["seeds"])
    return "_".join(parts)


def read_study_file(study_dir: str | Path, name: str, what: str) -> Any:
    """The JSON in ``STUDY_DIR/NAME``; UserInputError in one line when there is no ``what`` there or the file
    is not JSON."""
    path = Path(study_dir) / name
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UserInputError(f"{study_dir}: no {what} here ({name}: {exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: not valid JSON ({exc})") from None


def read_spec(study_dir: Path) -> StudySpec:
    data = read_study_file(study_dir, STUDY_FILE, "study")
    return StudySpec.from_dict(data, source=str(Path(study_dir) / STUDY_FILE))


def write_spec(study_dir: Path, spec: StudySpec) -> None:
    """``STUDY_DIR/study.json``, written atomically, keys in the spec's order."""
    write_text_atomic(Path(study_dir) / STUDY_FILE, json.dumps(spec.to_dict(), indent=2) + "\n")


def check_same_study(study_dir: Path, spec: StudySpec) -> bool:
    """Whether ``study_dir`` already holds this study (True), or nothing (False); UserInputError naming the
    first difference when it holds another one, or when it is not a study directory."""
    path = Path(study_dir) / STUDY_FILE
    if not path.exists():
        if holds_visible_files(Path(study_dir)):  # its locks, or a study.json being written, are not a study
            raise UserInputError(f"{study_dir} exists and holds no {STUDY_FILE}: not a study directory; choose another "
                                 "--name or --out-dir")
        return False
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        data = None
    if isinstance(data, dict) and "kind" in data:  # a comparison's record: compared as written
        mine_data = json.loads(json.dumps(spec.to_dict()))
        absent: dict[str, Any] = {"env_kwargs": {}}  # what a record written before the key existed meant by its absence
        pairs = [((k, v), (k, data.get(k, absent.get(k)))) for k, v in mine_data.items() if k not in REPORT_ONLY]
    else:
        pairs = list(zip(spec.identity(), read_spec(study_dir).identity()))
    for (key, mine), (_, theirs) in pairs:
        if mine != theirs:
            how = ("repeat the command that started it" if isinstance(data, dict) and "kind" in data
                   else f"continue that one with policygrad sweep --resume {study_dir}")
            raise UserInputError(f"{study_dir} holds a different study ({key}: {_short(theirs)} there, {_short(mine)} "
                                 f"here): choose another --name, or {how}")
    return True


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
