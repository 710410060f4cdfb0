"""The commands of one run: ``train``, ``resume``, ``eval``, ``check-env``, ``plot``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from policygrad.cli.flags import (
    add_algorithm_parsers,
    add_check_env_flag,
    add_config_flags,
    add_env_flag,
    add_env_kwargs_flag,
    add_total_steps_flag,
    add_trust_env_flag,
    config_values,
)
from policygrad.cli.parsing import EXIT_FAILED, add_command, parse_bool, parse_count
from policygrad.core.errors import RunWriteError, UserInputError


def register(commands: Any) -> None:
    train = add_command(commands, "train", run_train, "train an algorithm on an environment into a run directory",
                        "Train ALGO on an environment into a run directory (config.json, checkpoints, evaluation). "
                        "Each field of ALGO's config is a flag: policygrad train ALGO --help lists them.")
    add_algorithm_parsers(train, add_train_flags)

    resume = add_command(commands, "resume", run_resume, "continue a stopped run from its latest checkpoint",
                         "Continue a stopped run from its latest checkpoint, in its own directory (exactly as if "
                         "it had never stopped, on the CPU).")
    resume.add_argument("run_dir", type=Path)
    resume.add_argument("--checkpoint", metavar="NAME", default=None,
                        help="resume from RUN_DIR/checkpoints/NAME (e.g. step_000200000) instead of the latest; "
                             "newer checkpoints are deleted")
    add_total_steps_flag(resume, None, "train to this many steps instead")
    resume.add_argument("--progress", type=parse_bool, default=None, metavar="BOOL", help="show a progress bar")
    add_trust_env_flag(resume)
    add_check_env_flag(resume)

    evaluate = add_command(commands, "eval", run_eval, "evaluate a trained run; writes RUN_DIR/evals/eval_*.json",
                           "Evaluate a trained run (its final checkpoint/, or a checkpoint folder such as "
                           "RUN_DIR/checkpoints/step_N) and write the result to RUN_DIR/evals/eval_<deterministic|"
                           "stochastic>_<N>ep_seed<S>.json (or --out); the eval.json training wrote is left as it is.")
    evaluate.add_argument("run_dir", type=Path, help="a run directory, or one of its checkpoint folders")
    evaluate.add_argument("--episodes", type=int, default=20, help="episodes to play (default: 20)")
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    evaluate.add_argument("--seed", type=int, default=10_000, help="evaluation seed (default: 10000)")
    evaluate.add_argument("--device", default="cpu", help="cpu | cuda | mps (default: cpu)")
    evaluate.add_argument("--video", type=Path, default=None, metavar="DIR",
                          help="also record episodes as MP4 files into DIR, one file per episode")
    evaluate.add_argument("--video-episodes", type=int, default=None, metavar="N",
                          help="episodes to record with --video (default: as many as --episodes)")
    add_trust_env_flag(evaluate)
    evaluate.add_argument("--out", type=Path, default=None, metavar="FILE.json",
                          help="write the result here (default: RUN_DIR/evals/eval_<deterministic|stochastic>_"
                               "<N>ep_seed<S>.json)")

    check = add_command(commands, "check-env", run_check_env,
                        "check an environment for what would make training silently wrong",
                        "Check an environment for what would make training silently wrong: API, spaces, "
                        "non-finite values, unbounded actions, seeding.")
    check.add_argument("env_id", help="Gymnasium id, or module:Class / module:make_fn")
    check.add_argument("--steps", type=parse_count, default=300, help="random steps to play (default: 300)")
    check.add_argument("--seed", type=int, default=0, help="seed of the check (default: 0)")
    add_env_kwargs_flag(check, default={})

    plot = add_command(commands, "plot", run_plot, "learning curves of runs; runs differing in a setting are grouped",
                       "Learning curves of one or more runs on one plot. Runs whose configs differ in fields other "
                       "than the seed are grouped by those values: one colour per group, the mean over its seeds "
                       "with a 95% bootstrap band.")
    plot.add_argument("run_dirs", nargs="+", type=Path)
    plot.add_argument("--out", type=Path, default=None, help="PNG file (default: RUN_DIR/learning_curve.png for one "
                                                             "run, learning_curves.png for several)")
    plot.add_argument("--window", type=int, default=20, help="episodes in the smoothing window (default: 20)")


def add_train_flags(parser: argparse.ArgumentParser, algo_cls: Any) -> None:
    add_env_flag(parser, default=argparse.SUPPRESS)  # the config's default (CartPole-v1) is make_config's
    parser.add_argument("--run-dir", dest="run_dir", default=argparse.SUPPRESS,
                        help="where the run is written (default: runs/ENV__ALGO__SEED__TIME)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_check_env_flag(parser)
    add_config_flags(parser, algo_cls.Config)


def run_train(args: argparse.Namespace) -> int:
    from policygrad.algos import algorithm
    from policygrad.run.configure import make_config
    from policygrad.training import train

    config = make_config(args.algo, **config_values(args, algorithm(args.algo).Config))
    result = train(config, overwrite=args.overwrite, check_env=args.check_env)
    print(f"run: {result.run_dir}  ({result.global_step} steps in {result.seconds:.1f} s)")
    print(result.evaluation)
    return 0


def run_resume(args: argparse.Namespace) -> int:
    from policygrad.run.checkpoint import CHECKPOINTS_DIR, STEP_NAME
    from policygrad.run.resume import find_resume_point, resume_config
    from policygrad.training import train

    if args.checkpoint is not None and not STEP_NAME.fullmatch(args.checkpoint):
        raise UserInputError(f"--checkpoint {args.checkpoint!r} is not a checkpoint name (step_NNNNNNNNN: see "
                             f"RUN_DIR/{CHECKPOINTS_DIR}/)")
    source = args.run_dir / CHECKPOINTS_DIR / args.checkpoint if args.checkpoint else args.run_dir
    if args.checkpoint and not (source / "checkpoint.json").is_file():
        raise UserInputError(f"{source}: no such checkpoint")
    point = find_resume_point(source, args.trust_env)
    changes = {k: v for k, v in (("total_steps", args.total_steps), ("progress", args.progress)) if v is not None}
    config = point.config.replace(**changes) if changes else None
    resume_config(point, config)  # a complete run (or a refused change) is said before "resuming"
    print(f"resuming {point.run_dir} from {point.folder.name} (step {point.global_step})")
    # train finds the resume point again under the run directory's lock: the one it uses
    result = train(config, resume_from=source, check_env=args.check_env, trust_env=args.trust_env)
    print(f"run: {result.run_dir}  ({result.global_step} steps, {result.seconds:.1f} s in this session)")
    print(result.evaluation)
    return 0


def run_check_env(args: argparse.Namespace) -> int:
    from policygrad.core.envs import check_env_id
    from policygrad.env_check import check_env

    if args.steps <= 0:
        raise UserInputError(f"--steps={args.steps} is invalid: expected an integer > 0")
    check_env_id(args.env_id)
    findings = check_env(args.env_id, steps=args.steps, seed=args.seed, env_kwargs=args.env_kwargs)
    for finding in findings:
        print(finding)
    errors = sum(f.severity == "error" for f in findings)
    checked = args.env_id + (f" {json.dumps(args.env_kwargs)}" if args.env_kwargs else "")  # what was made
    print(f"{checked}: {errors} error(s), {len(findings) - errors} warning(s)" if findings
          else f"{checked}: no problems found in {args.steps} steps")
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


def run_eval(args: argparse.Namespace) -> int:
    from policygrad.agent import load
    from policygrad.evaluation import evaluate
    from policygrad.run.checkpoint import checkpoint_to_load, read_manifest
    from policygrad.run.files import write_json_atomic

    if args.video_episodes is not None and args.video_episodes < 1:
        raise UserInputError(f"--video-episodes {args.video_episodes}: expected at least 1 episode to record")
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
        raise UserInputError(f"cannot write {out} ({reason}): pass --out FILE.json somewhere writable") from None
    print(f"wrote {out}")
    if args.video is not None:
        from policygrad.video import record_video

        count = args.episodes if args.video_episodes is None else args.video_episodes
        files = record_video(agent, args.video, count, not args.stochastic, args.seed)
        print(f"videos: {', '.join(str(f) for f in files)}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from policygrad.plots import plot_runs

    out = args.out or (args.run_dirs[0] / "learning_curve.png" if len(args.run_dirs) == 1
                       else Path("learning_curves.png"))
    print(f"wrote {plot_runs(args.run_dirs, out, window=args.window)}")
    return 0
