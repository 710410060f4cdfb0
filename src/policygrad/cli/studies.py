"""The commands of studies: ``sweep`` (a grid you choose), ``study`` (a named grid), ``report``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policygrad.cli.flags import (
    MANY_RUNS_FIELDS,
    add_algorithm_parsers,
    add_backend_flags,
    add_config_flags,
    add_dry_run_flag,
    add_env_flag,
    add_resume_dir_flag,
    add_resume_flag,
    add_seeds_flag,
    add_statistics_flags,
    add_study_dir_flags,
    add_workers_flag,
    config_values,
)
from policygrad.cli.parsing import EXIT_FAILED, Parser, add_command, parse_bool, parse_count, set_runner
from policygrad.core.errors import UserInputError

STUDY_DEFAULTS = ("In a study, --eval-every defaults to total_steps // 20 and --eval-episodes to 10; other flags fix "
                  "a field for every run.")


def register(commands: Any) -> None:
    sweep = add_command(commands, "sweep", run_sweep, "train every combination of values x seeds in parallel: "
                        "a study directory with results.csv and a report",
                        "Train every combination of the --vary values times the seeds, in parallel, into one study "
                        "directory (OUT_DIR/NAME: study.json, runs/, results.csv). Running the same command again "
                        "finishes a stopped study; so does policygrad sweep --resume STUDY_DIR. policygrad sweep ALGO "
                        "--help lists every flag.")
    add_resume_dir_flag(sweep, "study")
    add_workers_flag(sweep)
    add_backend_flags(sweep)
    add_algorithm_parsers(sweep, add_sweep_flags, required=False, description=(
        "Train every combination of the --vary values times the seeds, in parallel, into one study directory "
        "(OUT_DIR/NAME: study.json, runs/, results.csv). Running the same command again finishes a stopped study. "
        + STUDY_DEFAULTS))

    from policygrad.studies.named import KINDS

    study = add_command(commands, "study", None, "a named study: the grid that answers one question about an "
                        "algorithm, around its current values",
                        "A named study: a grid that answers one question for the algorithm, around its current "
                        "values (the grids: policygrad.studies.named). policygrad study STUDY --algo ALGO --help "
                        "lists every flag.")
    kinds = study.add_subparsers(dest="kind", metavar="STUDY", required=True, help=f"one of {', '.join(KINDS)}")
    for kind in KINDS:  # --algo ALGO decides the other flags: run_named_study parses them
        named = kinds.add_parser(kind, add_help=False)
        set_runner(named, run_named_study, takes_extras=True)

    report = add_command(commands, "report", run_report, "(re)write a study's report, or aggregate comparisons "
                         "across environments",
                         "(Re)write a study's report: STUDY_DIR/report.md and a self-contained report.html (the "
                         "spec, the results per value, the tests against the baseline, the plots). With --aggregate "
                         "OUT_DIR and several comparison directories (one per environment, each with the random "
                         "method): OUT_DIR/aggregate.md and aggregate.html, the methods' normalized scores across "
                         "environments (IQM, optimality gap, performance profiles).")
    report.add_argument("study_dir", type=Path, nargs="+")
    report.add_argument("--baseline", default=None, metavar="VALUE",
                        help="the value the others are tested against, e.g. 0.001, learning_rate=0.001, 64x64 "
                             "(default: the grid's first)")
    report.add_argument("--aggregate", default=None, type=Path, metavar="OUT_DIR",
                        help="aggregate the comparison directories across environments into OUT_DIR")


def add_study_flags(parser: argparse.ArgumentParser, seeds: int, inherited: bool = False) -> None:
    """The flags ``sweep ALGO`` and ``study STUDY`` share; with the algorithm's config flags (for the
    fixed fields and ``--total-steps``, ``--eval-every``, ``--eval-episodes``, ``--preset``)."""
    add_env_flag(parser)
    add_seeds_flag(parser, seeds)
    add_workers_flag(parser, inherited=inherited)
    add_study_dir_flags(parser, "study", "from the algorithm, the environment and what varies")
    parser.add_argument("--threshold", type=float, default=None,
                        help="report the first evaluation step whose mean return reaches this (steps_to_threshold)")
    add_statistics_flags(parser)
    add_dry_run_flag(parser)
    add_backend_flags(parser, inherited=inherited)


def add_sweep_flags(parser: argparse.ArgumentParser, algo_cls: Any) -> None:
    parser.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2,...",
                        help="a config field and its values (any field; hidden_sizes as 64x64,256x256); repeat "
                             "for a grid")
    add_resume_flag(parser, "study")
    add_study_flags(parser, seeds=3, inherited=True)  # sweep --resume STUDY_DIR has them too
    add_config_flags(parser, algo_cls.Config)


def study_options(args: argparse.Namespace, config_cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """The study's options (seeds, total_steps, ..., threshold) and its fixed fields (the other config
    flags given), from parsed ``add_study_flags`` arguments."""
    from policygrad.studies.spec import DEFAULT_EVAL_EPISODES

    given = config_values(args, config_cls, without=("env_id",))
    defaults = {**MANY_RUNS_FIELDS, "eval_episodes": DEFAULT_EVAL_EPISODES}
    options = {key: given.pop(key, default) for key, default in defaults.items()}
    return {**options, "seeds": args.seeds, "name": args.name, "threshold": args.threshold, "test": args.test,
            "min_effect": args.min_effect}, given


def parse_field_text(config_cls: type, name: str, text: str, where: str) -> Any:
    """``text`` as config field ``name`` takes it, typed as ``train``'s flags type it (``64x64`` for
    hidden_sizes); UserInputError ``WHERE NAME=TEXT: expected ...`` otherwise."""
    from policygrad.core.config import check_field_names
    from policygrad.studies.spec import field_kind

    check_field_names(config_cls, {name: None})
    kind = field_kind(config_cls, name)
    try:
        if kind == "tuple":
            return tuple(int(v) for v in text.lower().split("x"))
        if kind == "int":
            return parse_count(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            return parse_bool(text)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        expected = {"tuple": "expected widths such as 64x64", "float": "expected a number"}.get(kind, str(exc))
        raise UserInputError(f"{where} {name}={text!r}: {expected}") from None
    return text


def parse_vary(config_cls: type, items: Sequence[str]) -> dict[str, list[Any]]:
    """``--vary FIELD=V1,V2,...`` (repeatable) as ``{field: [typed values]}``, in the order given."""
    vary: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not name:
            raise UserInputError(f"--vary {item!r}: expected FIELD=V1,V2,... (e.g. learning_rate=1e-3,3e-3)")
        if name in vary:
            raise UserInputError(f"--vary {name} is given twice: list every value in one --vary")
        texts = [v.strip() for v in values.split(",") if v.strip()]
        if not texts:
            raise UserInputError(f"vary {name} has no values: the grid is empty")
        vary[name] = [parse_field_text(config_cls, name, text, "--vary") for text in texts]
    return vary


def run_study_command(spec: Any, args: argparse.Namespace, resume: bool = False) -> int:
    """Run (or with ``--dry-run``, list) the study ``spec`` as ``sweep`` and ``study`` do."""
    from policygrad.studies.backends import open_backend
    from policygrad.studies.grid import expand
    from policygrad.studies.runner import run_study

    if args.dry_run:  # the real run's checks, in its order, and nothing written
        from policygrad.studies.backends.scheduler import check_workers
        from policygrad.studies.spec import check_same_study

        runs = expand(spec)
        if args.workers is not None:
            check_workers(args.workers)
        existed = check_same_study(Path(args.out_dir) / spec.name, spec)
        if resume and not existed:
            raise UserInputError(f"{Path(args.out_dir) / spec.name}: no study to resume (no study.json there)")
        print(f"study {args.out_dir / spec.name}: {len(runs)} runs of {spec.algo} on {spec.env_id}, "
              f"{spec.total_steps} steps each, evaluated every {spec.eval_every or 'end only'}"
              + ("; the directory holds this study already: its finished runs would be kept" if existed else ""))
        for note in spec.notes:
            print(f"  note: {note}")
        for run in runs:
            print(f"  {run.run_id}")
        return 0
    started = time.time()
    with open_backend(args.backend, args.address) as backend:
        result = run_study(spec, args.out_dir, args.workers, resume=resume, backend=backend)
    return study_exit_code(result, started)


def study_exit_code(result: Any, started: float | None = None) -> int:
    """EXIT_FAILED where a run failed, or where the report was not (re)written since ``started``."""
    if started is not None:
        report = Path(result.study_dir) / "report.html"
        if not report.is_file() or report.stat().st_mtime < started - 1:
            print(f"the report was not written: the runs and {Path(result.study_dir) / 'results.csv'} are complete; "
                  f"policygrad report {result.study_dir} tries again")
            return EXIT_FAILED
    if result.failed:
        print(f"{len(result.failed)} run(s) failed: see the error column of {result.study_dir / 'results.csv'}")
        return EXIT_FAILED
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from policygrad.algos import ALGORITHMS, algorithm
    from policygrad.studies.backends import open_backend
    from policygrad.studies.runner import resume_study
    from policygrad.studies.spec import make_spec

    if args.algo is None:
        if args.resume_dir is None:
            raise UserInputError(f"sweep needs an algorithm first (one of {' | '.join(ALGORITHMS)}), "
                                 "or --resume STUDY_DIR")
        with open_backend(args.backend, args.address) as backend:
            started = time.time()
            result = resume_study(args.resume_dir, args.workers, backend=backend)
        return study_exit_code(result, started)
    if args.resume_dir is not None:
        raise UserInputError(f"--resume STUDY_DIR continues the study recorded there: give it without ALGO "
                             f"({args.algo}), or use sweep {args.algo} ... --resume")
    config_cls = algorithm(args.algo).Config
    vary = parse_vary(config_cls, args.vary)
    options, fixed = study_options(args, config_cls)
    spec = make_spec(args.algo, args.env_id, vary, fixed=fixed, **options)
    return run_study_command(spec, args, resume=args.resume)


def named_study_parser(kind: str, algo: str | None) -> Parser:
    """``study KIND --algo ALGO``'s flags: the study flags and ALGO's config flags (without --algo: the
    study flags only, for ``--help`` and to say --algo is needed)."""
    from policygrad.algos import ALGORITHMS, algorithm

    parser = Parser(prog=f"policygrad study {kind}",
                    description=f"The {kind} study of {algo or 'ALGO'} (the grids: policygrad.studies.named); "
                                f"--dry-run lists its runs. {STUDY_DEFAULTS}"
                                + ("" if algo else f" policygrad study {kind} --algo ALGO --help lists ALGO's "
                                                   "fields."))
    parser.add_argument("--algo", required=True, choices=list(ALGORITHMS), metavar="ALGO",
                        help=f"the algorithm: one of {', '.join(ALGORITHMS)}")
    add_study_flags(parser, seeds=5)
    if algo is not None:
        add_config_flags(parser, algorithm(algo).Config)
    return parser


def run_named_study(args: argparse.Namespace) -> int:
    from policygrad.studies.named import named_spec

    probe = Parser(prog=f"policygrad study {args.kind}", add_help=False)
    probe.add_argument("--algo", default=None)
    algo = probe.parse_known_args(args.cli_extras)[0].algo
    from policygrad.algos import ALGORITHMS

    parser = named_study_parser(args.kind, algo if algo in ALGORITHMS else None)
    values = parser.parse_args(args.cli_extras)
    config_cls = ALGORITHMS[values.algo].Config
    options, fixed = study_options(values, config_cls)
    spec = named_spec(args.kind, values.algo, values.env_id, options.pop("seeds"), options.pop("total_steps"),
                      fixed=fixed, **options)
    return run_study_command(spec, values)


def run_report(args: argparse.Namespace) -> int:
    if args.aggregate is not None:
        if args.baseline is not None:
            raise UserInputError("--baseline is for one study's report, not with --aggregate")
        from policygrad.studies.aggregate import write_aggregate_report

        out = write_aggregate_report(args.study_dir, args.aggregate)
        print(f"wrote {out.with_name('aggregate.md')} and {out}")
        return 0
    if len(args.study_dir) > 1:
        raise UserInputError("one STUDY_DIR (several only with --aggregate OUT_DIR)")
    study_dir = args.study_dir[0]
    if (study_dir / "tune.json").is_file():  # a tuning (policygrad tune): its own report
        from policygrad.tuning.report import write_report as write_tune_report

        if args.baseline is not None:
            raise UserInputError("--baseline is for a study's report, not a tuning's")
        out = write_tune_report(study_dir)
    else:
        from policygrad.studies.report import write_report

        out = write_report(study_dir, baseline=args.baseline)
    print(f"wrote {out.with_name('report.md')} and {out}")
    return 0
