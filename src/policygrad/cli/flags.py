"""The flags several commands share, each defined here once, and the config flags: one per field of
an algorithm's config (``learning_rate`` -> ``--learning-rate``), typed from the dataclass and helped
by the field's help.

A flag that a parent command also has (``sweep --resume STUDY_DIR --workers K`` and
``sweep ALGO --workers K``) is added to the ALGO level with ``inherited=True``: the parent holds the
default, so the flag may be given before or after ALGO.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policygrad.cli.parsing import flag_name, parse_bool, parse_count, parse_seeds, parse_widths, set_runner

# The options of many runs (a study's, a tuning's) among the config flags, and their defaults there; the
# other config flags given fix a field for every run.
MANY_RUNS_FIELDS = {"total_steps": 100_000, "eval_every": None, "preset": "auto"}
DEFAULT_ENV_HELP = "Gymnasium id, or module:Class / module:make_fn (default: CartPole-v1)"


def _default(value: Any, inherited: bool) -> Any:
    return argparse.SUPPRESS if inherited else value


def add_env_flag(parser: argparse.ArgumentParser, default: Any = "CartPole-v1", *, required: bool = False,
                 help: str = DEFAULT_ENV_HELP) -> None:
    """``--env`` (or ``--env-id``): the environment, as ``env_id``."""
    given: dict[str, Any] = {"required": True} if required else {"default": default}
    parser.add_argument("--env", "--env-id", dest="env_id", help=help, **given)


def add_workers_flag(parser: argparse.ArgumentParser, default: int | None = None, *, unit: str = "runs",
                     inherited: bool = False) -> None:
    """``--workers``: how many runs (or trials) at a time; None: the machine's cores (the cluster's CPUs)."""
    shown = "the number of cores; with --backend ray, the cluster's CPUs" if default is None else default
    parser.add_argument("--workers", type=parse_count, default=_default(default, inherited), metavar="K",
                        help=f"{unit} at a time, each run in its own process with one torch thread (default: {shown})")


def add_backend_flags(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """``--backend`` and ``--address``: where the runs of a study execute."""
    parser.add_argument("--backend", choices=("local", "ray"), default=_default("local", inherited),
                        help="where the runs execute: local (worker processes on this machine) or ray (each run a "
                             "Ray task on a cluster; pip install 'policygrad[ray]') (default: local)")
    parser.add_argument("--address", default=_default(None, inherited), metavar="HOST:PORT",
                        help="with --backend ray: the Ray cluster's address (as `ray start --head` printed it); "
                             "default: a Ray instance started on this machine for the study")


def add_seeds_flag(parser: argparse.ArgumentParser, default: int) -> None:
    """``--seeds``: a count N (seeds 1..N) or a list of seeds."""
    parser.add_argument("--seeds", type=parse_seeds, default=default,
                        help=f"N (seeds 1..N) or a list such as 1,2,7 (default: {default})")


def add_total_steps_flag(parser: argparse.ArgumentParser, default: int | None, help: str) -> None:
    """``--total-steps`` where it is not a config field's flag (``resume``, ``compare``)."""
    shown = f" (default: {default})" if default is not None else ""
    parser.add_argument("--total-steps", type=parse_count, default=default, metavar="N",
                        help=f"{help}: a count such as 200000, 2e5 or 200k{shown}")


def add_study_dir_flags(parser: argparse.ArgumentParser, what: str, default_name: str) -> None:
    """``--name`` and ``--out-dir``: the study's directory is OUT_DIR/NAME."""
    parser.add_argument("--name", default=None,
                        help=f"the {what}'s name: its directory is OUT_DIR/NAME (default: {default_name})")
    parser.add_argument("--out-dir", type=Path, default=Path("studies"), help="where studies go (default: studies)")


def add_resume_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--resume`` (no value): the study given by the other flags must exist already."""
    parser.add_argument("--resume", action="store_true", help=f"the {what} must exist already: continue it")


def add_resume_dir_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--resume STUDY_DIR``: continue the study in STUDY_DIR, as recorded there (``sweep``, ``tune``)."""
    parser.add_argument("--resume", dest="resume_dir", type=Path, default=None, metavar="STUDY_DIR",
                        help=f"continue the stopped {what} in STUDY_DIR as it was started (then no ALGO)")


def add_statistics_flags(parser: argparse.ArgumentParser) -> None:
    """``--test`` and ``--min-effect``: the report's primary test and smallest difference of interest
    (recorded in study.json; they change no run)."""
    parser.add_argument("--test", default="mannwhitney", metavar="TEST",
                        help="the report's primary test: mannwhitney (default: no shape assumed, exact for few "
                             "seeds, robust to scores piled at a ceiling) or welch; the other is a sensitivity column")
    parser.add_argument("--min-effect", type=float, default=1.0, metavar="SD",
                        help="the smallest difference worth detecting, in standard deviations of the seeds' scores "
                             "(default 1): the report's power and seeds needed are for it")


def add_dry_run_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="check the study and list its runs; run nothing")


def add_check_env_flag(parser: argparse.ArgumentParser) -> None:
    """``--no-check-env``: ``train`` and ``resume`` check the environment before training."""
    parser.add_argument("--no-check-env", dest="check_env", action="store_false",
                        help="skip the environment check that runs before training")


def add_trust_env_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-env", action="store_true",
                        help="allow a checkpoint whose env_id names a Python module (module:Class) to import it")


def shown_default(config_cls: type, f: dataclasses.Field) -> tuple[str, str]:
    """A field's default as ``train`` (and ``make_config``) apply it, and a note explaining it if needed:
    ``preset`` is ``auto`` there; the config classes' own ``none`` is for configs built directly."""
    if f.name == "preset":
        from policygrad.run.presets import available

        envs = available(getattr(config_cls, "algo", ""))
        where = ", ".join(envs) or "none yet"
        return "auto", f"auto: the env's tuned values if it has some (here: {where}); config.json records which"
    default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    if isinstance(default, tuple):  # widths, written as a study writes them
        return "x".join(str(v) for v in default), ""
    return str(default), ""


def parse_mapping(token: str) -> dict[str, Any]:
    """One ``--env-kwargs`` token: a JSON object (``'{"continuous": true}'``) or ``key=value``, the
    value read as JSON where it is JSON (``true``, ``-9.8``, ``"text"``, ``[1, 2]``), else as the text."""
    if token.lstrip().startswith("{"):
        try:
            value = json.loads(token)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"{token!r} is not a JSON object ({exc})") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"{token!r} is not a JSON object")
        return value
    key, sep, text = token.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{token!r}: expected KEY=VALUE (e.g. continuous=true) or a JSON object")
    try:
        return {key: json.loads(text)}
    except json.JSONDecodeError:
        return {key: text}


class MappingAction(argparse.Action):
    """Merge the tokens of a mapping flag (:func:`parse_mapping`) into one dict, later keys winning."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        merged: dict[str, Any] = {}
        for token in values:
            try:
                merged.update(parse_mapping(token))
            except argparse.ArgumentTypeError as exc:
                parser.error(f"{option_string}: {exc}")
        setattr(namespace, self.dest, merged)


ENV_KWARGS_HELP = ("keyword arguments of the environment (gymnasium.make(env_id, **env_kwargs)): a JSON object such "
                   "as '{\"continuous\": true}', or KEY=VALUE pairs (each value read as JSON where it is JSON)")


def add_env_kwargs_flag(parser: argparse.ArgumentParser, help: str = ENV_KWARGS_HELP, *, dest: str = "env_kwargs",
                        flag: str = "--env-kwargs", default: Any = argparse.SUPPRESS) -> None:
    """``--env-kwargs``: the one parser of environment arguments every command shares (train's config
    flag, compare, check-env, diagnose gradients): a JSON object or KEY=VALUE tokens, merged
    (:class:`MappingAction`); anything else is one line naming the flag, exit 2. Nothing is evaluated."""
    parser.add_argument(flag, dest=dest, nargs="+", action=MappingAction, metavar="JSON|KEY=VALUE", default=default,
                        help=help)


class FlattenAction(argparse.Action):
    """The tokens of a list-of-widths flag as one list: ``64 64``, ``64x64`` and ``64 64x64`` alike."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, [width for token in values for width in token])


def add_config_flags(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """One flag per user-settable field, typed from its annotation, helped by its metadata. A flag not
    given is absent from the parsed arguments (``make_config`` then applies the preset and default);
    ``config_values`` reads them back."""
    from policygrad.core.config import user_fields

    skip = {"env_id", "run_dir"}  # spelled --env and --run-dir
    for f in user_fields(config_cls):
        if f.name in skip:
            continue
        kind = str(f.type)
        default, note = shown_default(config_cls, f)
        # argparse %-formats help texts: a literal % in a field's help ("6% more time") must be doubled
        help_text = f"{f.metadata.get('help', '')} (default: {note or default})".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if kind.startswith("dict"):  # env_kwargs: JSON or key=value pairs, merged
            add_env_kwargs_flag(parser, help_text, dest=f.name, flag=flag_name(f.name))
        elif kind.startswith("tuple"):
            # "*": a flag with no number is an empty list (hidden_sizes with a recurrent core reading the obs)
            parser.add_argument(flag_name(f.name), nargs="*", type=parse_widths, action=FlattenAction,
                                metavar="N", **kwargs)
        elif kind == "bool":
            parser.add_argument(flag_name(f.name), type=parse_bool, metavar="BOOL", **kwargs)
        elif kind in ("int", "float"):
            parser.add_argument(flag_name(f.name), type=parse_count if kind == "int" else float,
                                metavar=kind.upper(), **kwargs)
        else:
            parser.add_argument(flag_name(f.name), type=str, metavar="TEXT", **kwargs)


def config_values(args: argparse.Namespace, config_cls: type, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The config fields given on the command line (``add_config_flags``, ``--env``, ``--run-dir``),
    but ``without``, as config values (a list of ints as the tuple the field holds)."""
    from policygrad.core.config import user_fields

    names = {f.name for f in user_fields(config_cls)} - set(without)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items() if k in names}


def add_algorithm_parsers(parser: argparse.ArgumentParser, build: Callable[[argparse.ArgumentParser, Any], None], *,
                          required: bool = True, description: str | None = None) -> None:
    """ALGO as the next word: one sub-parser per algorithm, its flags added by ``build(sub_parser,
    algo_cls)``; ``policygrad CMD --help`` lists the algorithms, ``policygrad CMD ALGO --help`` their
    flags. ``description``: the sub-parsers' (default: the algorithm's docstring)."""
    from policygrad.algos import ALGORITHMS

    algos = parser.add_subparsers(dest="algo", metavar="ALGO", required=required,
                                  help=f"the algorithm ({parser.prog} ALGO --help lists its flags)")
    for name, algo_cls in ALGORITHMS.items():
        doc = (algo_cls.__doc__ or "").strip()
        sub = algos.add_parser(name, help=summary(doc).replace("%", "%%"), description=description or doc)
        set_runner(sub, None)  # its unknown flags are reported with suggestions from its own flags
        build(sub, algo_cls)


def summary(doc: str) -> str:
    """A docstring's first sentence, on one line."""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    return re.split(r"\.\s+(?=[A-Z])", paragraph, maxsplit=1)[0].rstrip(".") + "." if paragraph else ""
