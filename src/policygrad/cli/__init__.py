"""The ``policygrad`` command: train, resume, eval, plot, report, sweep, study, compare, tune, diagnose,
list, check-env.

Every config field is a flag named after it (``learning_rate`` -> ``--learning-rate``), typed from the
dataclass and documented by the field's help. Bad input ends with a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from policygrad.core.errors import RunWriteError, TrainingError

EXIT_USAGE = 2  # bad input: nothing ran
EXIT_FAILED = 1  # training started and failed


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An argparse parser that reports in one line and never matches a flag by its prefix
    (``--learning-rat`` is an unknown flag with a suggestion, not ``--learning-rate``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # argparse prints usage + message; we want one line
        if message.startswith("unrecognized arguments"):
            message += self._suggestions(message)
        raise UsageError(message)

    def _suggestions(self, message: str) -> str:
        import difflib

        known = [flag for action in self._actions for flag in action.option_strings]
        hints = []
        for word in message.split(":", 1)[1].split():
            if word.startswith("--"):
                hints += difflib.get_close_matches(word.split("=", 1)[0], known, n=2, cutoff=0.6)
        return f" (did you mean {', '.join(hints)}?)" if hints else " (policygrad list shows every field)"


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


COUNT_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9}


def parse_count(text: str) -> int:
    """An integer as people type step counts: ``20000``, ``20_000``, ``2e4``, ``20k``, ``1M``, ``1.5M``
    (k, M, G: thousand, million, billion). A value that is not a whole number is refused."""
    import decimal

    cleaned = text.strip()
    scale = COUNT_SUFFIXES.get(cleaned[-1:].lower(), 1)
    number = cleaned[:-1] if scale != 1 else cleaned
    try:
        value = decimal.Decimal(number) * scale
    except decimal.DecimalException:  # not a number, or one too large for the decimal context
        value = None
    if value is None or not number or not value.is_finite() or abs(value) >= 10**18:
        raise argparse.ArgumentTypeError(f"expected a whole number such as 20000, 20_000, 2e4, 20k or 1.5M, "
                                         f"got {text!r}")
    if value != value.to_integral_value():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r} (= {value.normalize():f})")
    return int(value)


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def shown_default(config_cls: type, f: dataclasses.Field) -> tuple[str, str]:
    """A field's default as ``train`` (and ``make_config``) apply it, and a note explaining it if needed:
    ``preset`` is ``auto`` there; the config classes' own ``none`` is for configs built directly."""
    if f.name == "preset":
        from policygrad.run.presets import available

        envs = available(getattr(config_cls, "algo", ""))
        where = ", ".join(envs) or "none yet"
        return "auto", f"auto: the env's tuned values if it has some (here: {where}); config.json records which"
    default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    return str(default), ""


def add_config_flags(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """One flag per user-settable field, typed from its annotation, helped by its metadata."""
    from policygrad.core.config import user_fields

    skip = {"env_id", "run_dir"}  # spelled --env and --run-dir below
    for f in user_fields(config_cls):
        if f.name in skip:
            continue
        kind = str(f.type)
        default, note = shown_default(config_cls, f)
        # argparse %-formats help texts: a literal % in a field's help ("6% more time") must be doubled
        help_text = f"{f.metadata.get('help', '')} (default: {note or default})".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if kind.startswith("tuple"):
            parser.add_argument(flag_name(f.name), nargs="+", type=int, metavar="N", **kwargs)
        elif kind == "bool":
            parser.add_argument(flag_name(f.name), type=parse_bool, metavar="BOOL", **kwargs)
        elif kind in ("int", "float"):
            parser.add_argument(flag_name(f.name), type=parse_count if kind == "int" else float,
                                metavar=kind.upper(), **kwargs)
        else:
            parser.add_argument(flag_name(f.name), type=str, metavar="TEXT", **kwargs)


def cmd_train(argv: Sequence[str]) -> int:
    from policygrad.algos import ALGORITHMS, algorithm
    from policygrad.run.configure import make_config
    from policygrad.training import train

    if not argv or argv[0].startswith("-"):
        raise UsageError(f"train needs an algorithm first: one of {' | '.join(ALGORITHMS)}")
    algo_name, rest = argv[0], argv[1:]
    algo_cls = algorithm(algo_name)
    parser = Parser(prog=f"policygrad train {algo_name}", description=(algo_cls.__doc__ or "").strip())
    parser.add_argument("--env", "--env-id", dest="env_id", default=argparse.SUPPRESS,
                        help="Gymnasium id, or module:Class / module:make_fn (default: CartPole-v1)")
    parser.add_argument("--run-dir", dest="run_dir", default=argparse.SUPPRESS,
                        help="where the run is written (default: runs/ENV__ALGO__SEED__TIME)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_check_env_flag(parser)
    add_config_flags(parser, algo_cls.Config)
    args = vars(parser.parse_args(rest))
    overwrite, check_env = args.pop("overwrite"), args.pop("check_env")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    config = make_config(algo_name, **values)
    result = train(config, overwrite=overwrite, check_env=check_env)
    print(f"run: {result.run_dir}  ({result.global_step} steps in {result.seconds:.1f} s)")
    print(result.evaluation)
    return 0


def add_check_env_flag(parser: argparse.ArgumentParser) -> None:
    """``--no-check-env``, shared by ``train`` and ``resume``, which both check the env before training."""
    parser.add_argument("--no-check-env", dest="check_env", action="store_false",
                        help="skip the environment check that runs before training")


def cmd_resume(argv: Sequence[str]) -> int:
    from policygrad.run.checkpoint import CHECKPOINTS_DIR, STEP_NAME
    from policygrad.run.resume import find_resume_point
    from policygrad.training import train

    parser = Parser(prog="policygrad resume", description="Continue a stopped run from its latest checkpoint, "
                    "in its own directory (exactly as if it had never stopped, on the CPU).")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", metavar="NAME", default=None,
                        help="resume from RUN_DIR/checkpoints/NAME (e.g. step_000200000) instead of the latest; "
                             "newer checkpoints are deleted")
    parser.add_argument("--total-steps", type=parse_count, default=None,
                        help="train to this many steps instead (e.g. 200000, 2e5, 200k)")
    parser.add_argument("--progress", type=parse_bool, default=None, metavar="BOOL", help="show a progress bar")
    parser.add_argument("--trust-env", action="store_true",
                        help="allow a checkpoint whose env_id names a Python module (module:Class) to import it")
    add_check_env_flag(parser)
    args = parser.parse_args(argv)
    if args.checkpoint is not None and not STEP_NAME.fullmatch(args.checkpoint):
        raise UsageError(f"--checkpoint {args.checkpoint!r} is not a checkpoint name (step_NNNNNNNNN: see "
                         f"RUN_DIR/{CHECKPOINTS_DIR}/)")
    source = args.run_dir / CHECKPOINTS_DIR / args.checkpoint if args.checkpoint else args.run_dir
    if args.checkpoint and not (source / "checkpoint.json").is_file():
        raise ValueError(f"{source}: no such checkpoint")
    point = find_resume_point(source, args.trust_env)
    changes = {k: v for k, v in (("total_steps", args.total_steps), ("progress", args.progress)) if v is not None}
    config = point.config.replace(**changes) if changes else None
    print(f"resuming {point.run_dir} from {point.folder.name} (step {point.global_step})")
    result = train(config, resume_from=point.folder, check_env=args.check_env, trust_env=args.trust_env)
    print(f"run: {result.run_dir}  ({result.global_step} steps, {result.seconds:.1f} s in this session)")
    print(result.evaluation)
    return 0


def cmd_check_env(argv: Sequence[str]) -> int:
    from policygrad.core.envs import check_env_id
    from policygrad.env_check import check_env

    parser = Parser(prog="policygrad check-env", description="Check an environment for what would make training "
                    "silently wrong: API, spaces, non-finite values, unbounded actions, seeding.")
    parser.add_argument("env_id", help="Gymnasium id, or module:Class / module:make_fn")
    parser.add_argument("--steps", type=parse_count, default=300, help="random steps to play (default: 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the check (default: 0)")
    args = parser.parse_args(argv)
    if args.steps <= 0:
        raise ValueError(f"--steps={args.steps} is invalid: expected an integer > 0")
    check_env_id(args.env_id)
    findings = check_env(args.env_id, steps=args.steps, seed=args.seed)
    for finding in findings:
        print(finding)
    errors = sum(f.severity == "error" for f in findings)
    print(f"{args.env_id}: {errors} error(s), {len(findings) - errors} warning(s)" if findings
          else f"{args.env_id}: no problems found in {args.steps} steps")
    return EXIT_FAILED if errors else 0


def eval_output(folder: Path, deterministic: bool, episodes: int, seed: int) -> Path:
    """Where ``policygrad eval`` writes by default: the run's ``evals/``, under a name that holds the
    settings (``eval_stochastic_10ep_seed7.json``, plus ``_step_N`` for a periodic checkpoint), so that
    no evaluation replaces another, nor the ``eval.json`` that training wrote."""
    from policygrad.run.checkpoint import CHECKPOINT_DIR, CHECKPOINTS_DIR

    if folder.name == CHECKPOINT_DIR:
        root, suffix = folder.parent, ""
    elif folder.parent.name == CHECKPOINTS_DIR:
        root, suffix = folder.parent.parent, f"_{folder.name}"
    else:  # a checkpoint folder outside a run directory: beside it
        root, suffix = folder.parent, f"_{folder.name}"
    kind = "deterministic" if deterministic else "stochastic"
    return root / "evals" / f"eval_{kind}_{episodes}ep_seed{seed}{suffix}.json"


def cmd_eval(argv: Sequence[str]) -> int:
    from policygrad.agent import load
    from policygrad.evaluation import evaluate
    from policygrad.run.checkpoint import checkpoint_to_load, read_manifest
    from policygrad.run.files import write_json_atomic

    parser = Parser(prog="policygrad eval", description="Evaluate a trained run (its final checkpoint/, or a "
                    "checkpoint folder such as RUN_DIR/checkpoints/step_N) and write the result to "
                    "RUN_DIR/evals/eval_<deterministic|stochastic>_<N>ep_seed<S>.json (or --out); the "
                    "eval.json training wrote is left as it is.")
    parser.add_argument("run_dir", type=Path, help="a run directory, or one of its checkpoint folders")
    parser.add_argument("--episodes", type=int, default=20, help="episodes to play (default: 20)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    parser.add_argument("--seed", type=int, default=10_000, help="evaluation seed (default: 10000)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps (default: cpu)")
    parser.add_argument("--video", type=Path, default=None, metavar="DIR",
                        help="also record --video-episodes episodes as MP4 files into DIR")
    parser.add_argument("--video-episodes", type=int, default=3, help="episodes to record (default: 3)")
    parser.add_argument("--trust-env", action="store_true",
                        help="allow a checkpoint whose env_id names a Python module (module:Class) to import it")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE.json",
                        help="write the result here (default: RUN_DIR/evals/eval_<deterministic|stochastic>_"
                             "<N>ep_seed<S>.json)")
    args = parser.parse_args(argv)
    folder = checkpoint_to_load(args.run_dir)  # a killed run: says which periodic checkpoint to pass
    agent = load(folder, device=args.device, trust_env=args.trust_env)
    result = evaluate(agent, episodes=args.episodes, deterministic=not args.stochastic, seed=args.seed)
    out = args.out or eval_output(folder, result.deterministic, args.episodes, args.seed)
    global_step = read_manifest(folder)["counters"].get("global_step")
    print(result)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, {**result.to_dict(), "episodes": args.episodes, "checkpoint": str(folder),
                         "global_step": global_step, "device": args.device})
    except (OSError, RunWriteError) as exc:  # write_json_atomic reports a full disk as RunWriteError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ValueError(f"cannot write {out} ({reason}): pass --out FILE.json somewhere writable") from None
    print(f"wrote {out}")
    if args.video is not None:
        from policygrad.video import record_video

        files = record_video(agent, args.video, args.video_episodes, not args.stochastic, args.seed)
        print(f"videos: {', '.join(str(f) for f in files)}")
    return 0


def cmd_plot(argv: Sequence[str]) -> int:
    from policygrad.plots import plot_runs

    parser = Parser(prog="policygrad plot", description="Learning curves of one or more runs on one plot. Runs "
                    "whose configs differ in fields other than the seed are grouped by those values: one colour "
                    "per group, the mean over its seeds with a 95% bootstrap band.")
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="PNG file (default: RUN_DIR/learning_curve.png "
                                                               "for one run, learning_curves.png for several)")
    parser.add_argument("--window", type=int, default=20, help="episodes in the smoothing window (default: 20)")
    args = parser.parse_args(argv)
    out = args.out or (args.run_dirs[0] / "learning_curve.png" if len(args.run_dirs) == 1
                       else Path("learning_curves.png"))
    print(f"wrote {plot_runs(args.run_dirs, out, window=args.window)}")
    return 0


def cmd_report(argv: Sequence[str]) -> int:
    parser = Parser(prog="policygrad report", description="(Re)write a study's report: STUDY_DIR/report.md and a "
                    "self-contained report.html (the spec, the results per value, the tests against the baseline, "
                    "the plots). With --aggregate OUT_DIR and several comparison directories (one per environment, "
                    "each with the random method): OUT_DIR/aggregate.md and aggregate.html, the methods' normalized "
                    "scores across environments (IQM, optimality gap, performance profiles).")
    parser.add_argument("study_dir", type=Path, nargs="+")
    parser.add_argument("--baseline", default=None, metavar="VALUE",
                        help="the value the others are tested against, e.g. 0.001, learning_rate=0.001, 64x64 "
                             "(default: the grid's first)")
    parser.add_argument("--aggregate", default=None, type=Path, metavar="OUT_DIR",
                        help="aggregate the comparison directories across environments into OUT_DIR")
    args = parser.parse_args(argv)
    if args.aggregate is not None:
        if args.baseline is not None:
            raise UsageError("--baseline is for one study's report, not with --aggregate")
        from policygrad.studies.aggregate import write_aggregate_report

        out = write_aggregate_report(args.study_dir, args.aggregate)
        print(f"wrote {out.with_name('aggregate.md')} and {out}")
        return 0
    if len(args.study_dir) > 1:
        raise UsageError("one STUDY_DIR (several only with --aggregate OUT_DIR)")
    if (args.study_dir[0] / "tune.json").is_file():  # a tuning (policygrad tune): its own report
        from policygrad.studies import tune_report

        if args.baseline is not None:
            raise UsageError("--baseline is for a study's report, not a tuning's")
        out = tune_report.write_report(args.study_dir[0])
        print(f"wrote {out.with_name('report.md')} and {out}")
        return 0
    from policygrad.studies.report import write_report

    out = write_report(args.study_dir[0], baseline=args.baseline)
    print(f"wrote {out.with_name('report.md')} and {out}")
    return 0


def parse_seeds(text: str) -> int | list[int]:
    """``--seeds``: a count N (seeds 1..N) or a comma-separated list of seeds (``1,2,7``)."""
    try:
        return [int(v) for v in text.split(",")] if "," in text else parse_count(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count such as 5 or seeds such as 1,2,7, got {text!r}") from None


def parse_field_text(config_cls: type, name: str, text: str, where: str) -> Any:
    """``text`` as config field ``name`` takes it, typed as ``train``'s flags type it (``64x64`` for
    hidden_sizes); ValueError ``WHERE NAME=TEXT: expected ...`` otherwise."""
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
        raise ValueError(f"{where} {name}={text!r}: {expected}") from None
    return text


def parse_vary(config_cls: type, items: Sequence[str]) -> dict[str, list[Any]]:
    """``--vary FIELD=V1,V2,...`` (repeatable) as ``{field: [typed values]}``, in the order given."""
    vary: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not name:
            raise UsageError(f"--vary {item!r}: expected FIELD=V1,V2,... (e.g. learning_rate=1e-3,3e-3)")
        if name in vary:
            raise UsageError(f"--vary {name} is given twice: list every value in one --vary")
        texts = [v.strip() for v in values.split(",") if v.strip()]
        if not texts:
            raise ValueError(f"vary {name} has no values: the grid is empty")
        vary[name] = [parse_field_text(config_cls, name, text, "--vary") for text in texts]
    return vary


def add_study_flags(parser: argparse.ArgumentParser, config_cls: type, seeds: int) -> None:
    """The flags ``sweep`` and ``study`` share; with ``add_config_flags`` for the fixed fields."""
    parser.add_argument("--env", "--env-id", dest="env_id", default="CartPole-v1",
                        help="Gymnasium id, or module:Class / module:make_fn (default: CartPole-v1)")
    parser.add_argument("--seeds", type=parse_seeds, default=seeds,
                        help=f"N (seeds 1..N) or a list such as 1,2,7 (default: {seeds})")
    parser.add_argument("--workers", type=parse_count, default=None,
                        help="runs at a time, each in its own process with one torch thread (default: the number "
                             "of cores; with --backend ray, the cluster's CPUs)")
    parser.add_argument("--name", default=None, help="the study's name: its directory is OUT_DIR/NAME (default: "
                        "from the algorithm, the environment and what varies)")
    parser.add_argument("--out-dir", type=Path, default=Path("studies"), help="where studies go (default: studies)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="report the first evaluation step whose mean return reaches this (steps_to_threshold)")
    parser.add_argument("--dry-run", action="store_true", help="check the study and list its runs; run nothing")
    add_backend_flags(parser)
    add_config_flags(parser, config_cls)  # --total-steps, --eval-every, --eval-episodes, --preset and fixed fields


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--address``, shared by ``sweep``, ``study`` and ``compare``."""
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="where the runs execute: local (worker processes on this machine) or ray (each run a "
                             "Ray task on a cluster; pip install 'policygrad[ray]') (default: local)")
    parser.add_argument("--address", default=None, metavar="HOST:PORT",
                        help="with --backend ray: the Ray cluster's address (as `ray start --head` printed it); "
                             "default: a Ray instance started on this machine for the study")


def study_options(args: dict[str, Any]) -> dict[str, Any]:
    """Pop the study's own options out of parsed ``add_study_flags`` arguments (the rest are fixed fields)."""
    from policygrad.studies.spec import DEFAULT_EVAL_EPISODES

    options = {"seeds": args.pop("seeds"), "total_steps": args.pop("total_steps", 100_000),
               "name": args.pop("name"), "eval_every": args.pop("eval_every", None),
               "eval_episodes": args.pop("eval_episodes", DEFAULT_EVAL_EPISODES), "threshold": args.pop("threshold"),
               "preset": args.pop("preset", "auto")}
    return options


def run_study_command(spec: Any, args: dict[str, Any], resume: bool = False) -> int:
    from policygrad.studies.grid import expand
    from policygrad.studies.runner import open_backend, run_study

    if args["dry_run"]:
        runs = expand(spec)
        print(f"study {args['out_dir'] / spec.name}: {len(runs)} runs of {spec.algo} on {spec.env_id}, "
              f"{spec.total_steps} steps each, evaluated every {spec.eval_every or 'end only'}")
        for note in spec.notes:
            print(f"  note: {note}")
        for run in runs:
            print(f"  {run.run_id}")
        return 0
    with open_backend(args["backend"], args["address"]) as backend:
        result = run_study(spec, args["out_dir"], args["workers"], resume=resume, backend=backend)
    if result.failed:
        print(f"{len(result.failed)} run(s) failed: see the error column of {result.study_dir / 'results.csv'}")
        return EXIT_FAILED
    return 0


def cmd_sweep(argv: Sequence[str]) -> int:
    from policygrad.algos import ALGORITHMS, algorithm
    from policygrad.studies.runner import open_backend, resume_study
    from policygrad.studies.spec import make_spec

    if not argv:
        raise UsageError(f"sweep needs an algorithm first (one of {' | '.join(ALGORITHMS)}), or --resume STUDY_DIR")
    if argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        parser = Parser(prog="policygrad sweep --resume", description="Finish a stopped study: finished runs are "
                        "kept, the others resume from their last checkpoint or start over.")
        parser.add_argument("--resume", type=Path, required=True, metavar="STUDY_DIR")
        parser.add_argument("--workers", type=parse_count, default=None, help="runs at a time (default: cores)")
        add_backend_flags(parser)
        resume_args = parser.parse_args(argv)
        with open_backend(resume_args.backend, resume_args.address) as backend:
            result = resume_study(resume_args.resume, resume_args.workers, backend=backend)
        return EXIT_FAILED if result.failed else 0
    if argv[0] in ("-h", "--help"):
        print("usage: policygrad sweep ALGO --env ENV --vary FIELD=V1,V2,... [--vary ...] [--seeds N] "
              "[--total-steps S] [--workers K] [--backend local|ray [--address HOST:PORT]] [--FIELD VALUE ...]\n"
              "       policygrad sweep --resume STUDY_DIR [--workers K] [--backend local|ray [--address HOST:PORT]]"
              f"\n\nALGO: one of {' | '.join(ALGORITHMS)}; policygrad sweep ALGO --help lists every flag.")
        return 0
    algo_name, rest = argv[0], argv[1:]
    algo_cls = algorithm(algo_name)
    parser = Parser(prog=f"policygrad sweep {algo_name}", description="Train every combination of the --vary values "
                    "times the seeds, in parallel, into one study directory (OUT_DIR/NAME: study.json, runs/, "
                    "results.csv). Running the same command again finishes a stopped study. In a study, "
                    "--eval-every defaults to total_steps // 20 and --eval-episodes to 10; other flags fix a "
                    "field for every run.")
    parser.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2,...",
                        help="a config field and its values (any field; hidden_sizes as 64x64,256x256); repeat "
                             "for a grid")
    parser.add_argument("--resume", action="store_true", help="the study must exist already: finish it")
    add_study_flags(parser, algo_cls.Config, seeds=3)
    args = vars(parser.parse_args(rest))
    vary = parse_vary(algo_cls.Config, args.pop("vary"))
    resume, env_id, workers, out_dir, dry_run = (args.pop(k) for k in ("resume", "env_id", "workers", "out_dir",
                                                                       "dry_run"))
    where = {"backend": args.pop("backend"), "address": args.pop("address")}
    options = study_options(args)
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    spec = make_spec(algo_name, env_id, vary, fixed=fixed, **options)
    return run_study_command(spec, {"out_dir": out_dir, "workers": workers, "dry_run": dry_run, **where},
                             resume=resume)


def cmd_study(argv: Sequence[str]) -> int:
    from policygrad.algos import algorithm
    from policygrad.studies.named import KINDS, named_spec

    if not argv or argv[0] in ("-h", "--help") or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print(f"usage: policygrad study {'|'.join(KINDS)} --algo ALGO --env ENV [--seeds N] [--total-steps S] "
                  "[--workers K] [--dry-run] [--FIELD VALUE ...]\n\nA named study: a grid that answers one question "
                  "for the algorithm, around its current values (policygrad study KIND --algo ALGO --help).")
            return 0
        raise UsageError(f"study needs a study first: one of {' | '.join(KINDS)}")
    kind, rest = argv[0], list(argv[1:])
    if kind not in KINDS:
        raise UsageError(f"unknown study {kind!r}: expected one of {' | '.join(KINDS)}")
    first = Parser(prog=f"policygrad study {kind}", add_help=False)
    first.add_argument("--algo", default=None)
    known, _ = first.parse_known_args(rest)
    if known.algo is None:
        raise UsageError(f"study {kind} needs --algo ALGO")
    algo_cls = algorithm(known.algo)
    parser = Parser(prog=f"policygrad study {kind} --algo {known.algo}", description=f"The {kind} study of "
                    f"{known.algo} (the grids: policygrad.studies.named); --dry-run lists its runs. --eval-every "
                    "defaults to total_steps // 20 and --eval-episodes to 10; other flags fix a field for every run.")
    parser.add_argument("--algo", required=True)
    add_study_flags(parser, algo_cls.Config, seeds=5)
    values = vars(parser.parse_args(rest))
    algo_name, env_id, workers, out_dir, dry_run = (values.pop(k) for k in ("algo", "env_id", "workers", "out_dir",
                                                                            "dry_run"))
    where = {"backend": values.pop("backend"), "address": values.pop("address")}
    options = study_options(values)
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    spec = named_spec(kind, algo_name, env_id, options.pop("seeds"), options.pop("total_steps"), fixed=fixed,
                      **options)
    return run_study_command(spec, {"out_dir": out_dir, "workers": workers, "dry_run": dry_run, **where})


def cmd_compare(argv: Sequence[str]) -> int:
    from policygrad.studies.compare import make_comparison
    from policygrad.studies.runner import open_backend, run_study
    from policygrad.studies.spec import DEFAULT_EVAL_EPISODES

    parser = Parser(prog="policygrad compare", description="Compare methods on one environment under one protocol "
                    "(the same steps, the same deterministic evaluations at the same steps and seeds), into one "
                    "study directory (OUT_DIR/NAME) with a report: ranking, pairwise tests, curves against steps "
                    "and seconds. Methods: policygrad algorithms, sb3:dqn|ppo|a2c|sac|td3 (pip install "
                    "'policygrad[compare]'), random.")
    parser.add_argument("--env", "--env-id", dest="env_id", required=True, help="Gymnasium id")
    parser.add_argument("--methods", required=True, help="comma-separated, e.g. reinforce,a2c,ppo,sb3:dqn,random")
    parser.add_argument("--seeds", type=parse_seeds, default=5, help="N (seeds 1..N) or a list (default: 5)")
    parser.add_argument("--total-steps", type=parse_count, default=100_000, help="steps per run (default: 100k)")
    parser.add_argument("--eval-every", type=parse_count, default=None,
                        help="steps between evaluations (default: total_steps // 20)")
    parser.add_argument("--eval-episodes", type=parse_count, default=DEFAULT_EVAL_EPISODES,
                        help=f"episodes per evaluation (default: {DEFAULT_EVAL_EPISODES})")
    parser.add_argument("--workers", type=parse_count, default=None, help="runs at a time (default: cores)")
    parser.add_argument("--name", default=None, help="the comparison's name (default: compare_ENV)")
    parser.add_argument("--out-dir", type=Path, default=Path("studies"), help="where studies go (default: studies)")
    parser.add_argument("--shared", action="append", default=[], metavar="FIELD=VALUE",
                        help="a setting given to every method (policygrad config field; SB3 where it has the same "
                             "name: gamma, learning_rate, ent_coef, gae_lambda, vf_coef, max_grad_norm); repeat")
    parser.add_argument("--resume", action="store_true", help="the comparison must exist already: finish it")
    parser.add_argument("--dry-run", action="store_true", help="check the methods and list the runs; run nothing")
    add_backend_flags(parser)
    args = parser.parse_args(argv)
    shared: dict[str, Any] = {}
    for item in args.shared:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--shared {item!r}: expected FIELD=VALUE")
        import yaml

        shared[key.strip().replace("-", "_")] = yaml.safe_load(text)
    comparison = make_comparison(args.env_id, args.methods, args.seeds, args.total_steps, eval_every=args.eval_every,
                                 eval_episodes=args.eval_episodes, name=args.name, shared=shared)
    spec = comparison.spec
    if args.dry_run:
        print(f"compare {args.out_dir / spec.name}: {len(comparison.runs)} runs of {', '.join(spec.vary['method'])} "
              f"on {spec.env_id}, {spec.total_steps} steps each, evaluated every {spec.eval_every or 'end only'} on "
              f"{spec.eval_episodes} episodes")
        for note in spec.notes:
            print(f"  note: {note}")
        for method, info in spec.methods.items():
            print(f"  {method}: {info['source']}")
        for run in comparison.runs:
            print(f"  {run.run_id}")
        return 0
    with open_backend(args.backend, args.address) as backend:
        result = run_study(spec, args.out_dir, args.workers, resume=args.resume, runs=comparison.runs,
                           backend=backend)
    if result.failed:
        print(f"{len(result.failed)} run(s) failed: see the error column of {result.study_dir / 'results.csv'}")
        return EXIT_FAILED
    return 0


TUNE_USAGE = ("usage: policygrad tune ALGO --env ENV --trials N [--space SPACE.yaml] [--seeds-per-trial K] "
              "[--objective final|auc] [--pruner median|none] [--workers K] [--backend local|ray] [--address ADDR] "
              "[--storage URL] [--total-steps S] [--FIELD VALUE ...]\n       policygrad tune --resume STUDY_DIR "
              "[--trials N] [--workers K] [--backend local|ray] [--address ADDR]")


def cmd_tune(argv: Sequence[str]) -> int:
    from policygrad.algos import ALGORITHMS, algorithm
    from policygrad.studies.tune import resume_tune, tune

    if not argv:
        raise UsageError(f"tune needs an algorithm first (one of {' | '.join(ALGORITHMS)}), or --resume STUDY_DIR")
    if argv[0] in ("-h", "--help"):
        print(TUNE_USAGE + f"\n\nALGO: one of {' | '.join(ALGORITHMS)}; policygrad tune ALGO --help lists every flag.")
        return 0
    if argv[0].startswith("-"):
        parser = Parser(prog="policygrad tune --resume", description="Continue a stopped tuning (the same Optuna "
                        "study): its trials count toward --trials; a killed process's trials are continued.")
        parser.add_argument("--resume", type=Path, required=True, metavar="STUDY_DIR")
        parser.add_argument("--trials", type=parse_count, default=None, help="trials in all (default: as recorded)")
        parser.add_argument("--workers", type=parse_count, default=1, help="trials at a time (default: 1)")
        add_backend_flags(parser)
        known = parser.parse_args(argv)
        result = resume_tune(known.resume, known.trials, known.workers, backend=known.backend, address=known.address)
        return 0 if result.best is not None or result.handed_over or not result.trials else EXIT_FAILED
    algo_name, rest = argv[0], argv[1:]
    algo_cls = algorithm(algo_name)
    parser = Parser(prog=f"policygrad tune {algo_name}", description="Search hyperparameters with Optuna (TPE "
                    "sampler, median pruner between a trial's seeds): each trial trains its values on K seeds and "
                    "scores the mean; the top trials are re-evaluated on fresh seeds; the best config is written as "
                    "OUT_DIR/NAME/best_preset.yaml (policygrad train ALGO --preset FILE). Running the same command "
                    "again continues the tuning. Other flags fix a field for every trial (and take it out of the "
                    "space).")
    parser.add_argument("--env", "--env-id", dest="env_id", default="CartPole-v1",
                        help="Gymnasium id, or module:Class / module:make_fn (default: CartPole-v1)")
    parser.add_argument("--trials", type=parse_count, required=True, help="trials in all (a continued tuning counts "
                        "the ones it has)")
    parser.add_argument("--space", default=None, metavar="SPACE.yaml",
                        help="the search space (field: {low, high[, log]} | {choices: [...]} | {width, depth}); "
                             "default: the algorithm's (policygrad.studies.tune_space.DEFAULT_SPACES)")
    parser.add_argument("--seeds-per-trial", type=parse_count, default=2, help="seeds each trial trains (default: 2)")
    parser.add_argument("--objective", choices=("final", "auc"), default="final",
                        help="the mean over the seeds of the final evaluation or of the area under the evaluation "
                             "curve (default: final)")
    parser.add_argument("--pruner", choices=("median", "none"), default="median", help="default: median")
    parser.add_argument("--workers", type=parse_count, default=1, help="trials at a time (default: 1)")
    add_backend_flags(parser)
    parser.add_argument("--storage", default=None, metavar="URL", help="an Optuna database URL (e.g. "
                        "sqlite:///tune.db, postgresql://...) for processes on several machines (default: the "
                        "journal file OUT_DIR/NAME/optuna.journal)")
    parser.add_argument("--top", type=parse_count, default=3, help="trials re-evaluated on fresh seeds (default: 3)")
    parser.add_argument("--reeval-seeds", type=parse_count, default=3,
                        help="fresh seeds of the re-evaluation (default: 3)")
    parser.add_argument("--sampler-seed", type=parse_count, default=0, help="the TPE sampler's seed (default: 0)")
    parser.add_argument("--name", default=None, help="the tuning's name: its directory is OUT_DIR/NAME (default: "
                        "tune_ALGO_ENV)")
    parser.add_argument("--out-dir", type=Path, default=Path("studies"), help="where studies go (default: studies)")
    parser.add_argument("--resume", action="store_true", help="the tuning must exist already: continue it")
    add_config_flags(parser, algo_cls.Config)  # --total-steps, --eval-every, --eval-episodes, --preset and fixed
    args = vars(parser.parse_args(rest))
    own = ("env_id", "trials", "space", "seeds_per_trial", "objective", "pruner", "workers", "backend", "address",
           "storage", "top", "reeval_seeds", "sampler_seed", "name", "out_dir", "resume")
    options: dict[str, Any] = {k: args.pop(k) for k in own}
    for key, default in (("total_steps", 100_000), ("eval_every", None), ("eval_episodes", None), ("preset", "auto")):
        options[key] = args.pop(key, default)
    if options["eval_episodes"] is None:
        options.pop("eval_episodes")
    fixed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    env_id, trials = options.pop("env_id"), options.pop("trials")
    result = tune(algo_name, env_id, trials, **options, **fixed)
    return 0 if result.best is not None or result.handed_over or not result.trials else EXIT_FAILED


def cmd_diagnose(argv: Sequence[str]) -> int:
    import shlex

    from policygrad.diagnostics import DEFAULT_ESTIMATORS, diagnose_gradients

    if not argv or argv[0] != "gradients":
        if argv and argv[0] in ("-h", "--help"):
            print("usage: policygrad diagnose gradients --env ENV [--run RUN_DIR [--checkpoint step_N]] "
                  "[--estimators A,B,...] [--batches B] [--batch-episodes M] [--out DIR] [--seed S]\n\n"
                  "policygrad diagnose gradients --help explains it.")
            return 0
        raise UsageError("diagnose needs what to diagnose first: gradients")
    parser = Parser(prog="policygrad diagnose gradients", description="At a fixed policy (a run's checkpoint, or a "
                    "fresh network), play B independent batches of M episodes and compute every estimator's policy "
                    "gradient on the same episodes: the norm of the mean gradient, the trace of the covariance, "
                    "noise-to-signal, the cosine with a reference gradient, the bias, and the episodes needed for a "
                    "given cosine. Writes gradients.csv, report.md, report.html and figures to --out.")
    parser.add_argument("--env", "--env-id", dest="env_id", default=None,
                        help="Gymnasium id (default: the run's); alone: a fresh network, as train ppo builds it")
    parser.add_argument("--run", type=Path, default=None, metavar="RUN_DIR", help="diagnose this run's policy")
    parser.add_argument("--checkpoint", default=None, metavar="NAME[,NAME...]",
                        help="one of RUN_DIR/checkpoints/ (step_NNNNNNNNN) instead of the final checkpoint; several, "
                             "comma-separated: a report for each and a summary of how the estimators change over "
                             "training")
    parser.add_argument("--estimators", default=",".join(DEFAULT_ESTIMATORS),
                        help=f"comma-separated (default: {','.join(DEFAULT_ESTIMATORS)}; also any registered "
                             "advantage estimator)")
    parser.add_argument("--batches", type=parse_count, default=32, help="independent batches B (default: 32)")
    parser.add_argument("--batch-episodes", type=parse_count, default=8, help="episodes per batch M (default: 8)")
    parser.add_argument("--gamma", type=float, default=None, help="discount (default: the run's, or PPO's preset)")
    parser.add_argument("--cosine", type=float, default=0.9, help="target cosine of the episodes-needed column "
                        "(default: 0.9)")
    parser.add_argument("--critic", default="auto", help="auto (the run's critic if usable, else one fitted on "
                        "separate episodes) | run | fit (default: auto)")
    parser.add_argument("--critic-episodes", type=parse_count, default=None,
                        help="episodes to fit a critic on (default: batches * batch-episodes / 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the episodes and of a fresh network (default: 0)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where the report goes (default: diagnose/ENV)")
    parser.add_argument("--trust-env", action="store_true",
                        help="allow a checkpoint whose env_id names a Python module (module:Class) to import it")
    args = parser.parse_args(argv[1:])
    if args.run is None and args.checkpoint is not None:
        raise UsageError("--checkpoint needs --run RUN_DIR")
    options = dict(estimators=args.estimators, batches=args.batches, batch_episodes=args.batch_episodes,
                   seed=args.seed, gamma=args.gamma, cosine=args.cosine, critic=args.critic,
                   critic_episodes=args.critic_episodes, trust_env=args.trust_env)
    from policygrad.diagnostics.report import MD_FILE, write_report

    command = "policygrad diagnose " + shlex.join(argv)
    names = [n.strip() for n in args.checkpoint.split(",") if n.strip()] if args.checkpoint else []
    if len(names) > 1:  # several checkpoints of one run: a report each, and a summary over training
        from policygrad.diagnostics.training import diagnose_checkpoints, write_training_report

        diagnoses = diagnose_checkpoints(args.run, names, env_id=args.env_id, **options)
        out = args.out or Path("diagnose") / diagnoses[0].env_id.replace(":", "_")
        html = write_training_report(diagnoses, out, names, command=command)
        print((out / MD_FILE).read_text().split("## Figure")[0].strip())
        print(f"\nwrote {html} (and {out / MD_FILE}, one folder per checkpoint)")
        return 0
    diagnosis = diagnose_gradients(args.env_id, run=args.run, checkpoint=names[0] if names else None, **options)
    out = args.out or Path("diagnose") / diagnosis.env_id.replace(":", "_")
    html = write_report(diagnosis, out, command=command)
    print((out / MD_FILE).read_text().split("## Figures")[0].strip())
    print(f"\nwrote {html} (and {out / MD_FILE}, gradients.csv, report_files/)")
    return 0


def cmd_list(argv: Sequence[str]) -> int:
    from policygrad.algos import ALGORITHMS
    from policygrad.core.config import user_fields

    Parser(prog="policygrad list", description="Algorithms and their config fields.").parse_args(argv)
    for name, algo_cls in ALGORITHMS.items():
        summary = (algo_cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name}: {summary}")
        for f in user_fields(algo_cls.Config):
            default, note = shown_default(algo_cls.Config, f)
            print(f"  {flag_name(f.name):<24} {default:<14} {f.metadata.get('help', '')}"
                  + (f" [{note}]" if note else ""))
        print()
    return 0


COMMANDS = {"train": cmd_train, "resume": cmd_resume, "eval": cmd_eval, "plot": cmd_plot, "report": cmd_report,
            "sweep": cmd_sweep, "study": cmd_study, "compare": cmd_compare, "list": cmd_list,
            "check-env": cmd_check_env, "tune": cmd_tune, "diagnose": cmd_diagnose}

USAGE = """usage: policygrad COMMAND ...

  train ALGO --env ENV_ID [--total-steps N] [--seed S] [--device D] [--run-dir DIR] [--FIELD VALUE ...]
  resume RUN_DIR [--checkpoint step_N] [--total-steps N]   continue a stopped run from its latest checkpoint
  eval RUN_DIR [--episodes N] [--stochastic] [--seed S] [--out FILE.json]   writes RUN_DIR/evals/eval_*.json
  check-env ENV_ID [--steps N]   check an environment for what would make training silently wrong
  plot RUN_DIR [RUN_DIR ...] [--out FILE.png]   runs differing in a setting: grouped, mean and CI over seeds
  report STUDY_DIR [--baseline VALUE]   (re)write the study's report.md and report.html
  report --aggregate OUT_DIR STUDY_DIR STUDY_DIR ...   comparisons across environments: normalized IQM,
                            optimality gap, performance profiles (OUT_DIR/aggregate.md, aggregate.html)
  sweep ALGO --env ENV --vary FIELD=V1,V2,... [--seeds N] [--total-steps S] [--workers K] [--FIELD VALUE ...]
                            every combination x seeds, in parallel: studies/NAME/ (results.csv, runs/)
  sweep --resume STUDY_DIR  finish a stopped study (re-running the same sweep command does too)
                            sweep, study, compare: --backend ray [--address HOST:PORT] runs each run as a
                            Ray task on a cluster (pip install 'policygrad[ray]')
  study lr|gamma|architecture|batch|entropy|reward-norm --algo ALGO --env ENV [--seeds N] [--total-steps S]
                            a named study: a grid around the algorithm's values that answers one question
  compare --env ENV --methods ppo,a2c,sb3:dqn,random [--seeds N] [--total-steps S] [--eval-every E]
                            methods under one protocol (same steps, evaluations, seeds): a study with a report
  tune ALGO --env ENV --trials N [--space SPACE.yaml] [--seeds-per-trial K] [--objective final|auc] [--workers K]
                            search hyperparameters with Optuna; the top trials re-evaluated on fresh seeds,
                            the best written as a preset file (train ALGO --preset FILE); --resume STUDY_DIR
  diagnose gradients --env ENV [--run RUN_DIR] [--estimators A,B,...] [--batches B] [--batch-episodes M]
                            every estimator's policy gradient on the same episodes: variance, bias, cosine,
                            episodes needed (OUT/report.md, report.html, gradients.csv)
  list                      the algorithms and every config field with its default and help

policygrad COMMAND --help explains a command; policygrad train ALGO --help lists ALGO's fields."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else EXIT_USAGE
    command, rest = argv[0], argv[1:]
    try:
        if command not in COMMANDS:
            raise UsageError(f"unknown command {command!r}: expected one of {' | '.join(COMMANDS)}")
        return COMMANDS[command](rest)
    except (UsageError, ValueError) as exc:
        print(f"policygrad {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunWriteError as exc:  # a full disk or a read-only directory, in any command
        print(f"policygrad {command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TrainingError as exc:
        print(f"policygrad {command}: training failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"policygrad {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
