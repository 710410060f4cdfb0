"""``policygrad tune``: search an algorithm's hyperparameters with Optuna."""

from __future__ import annotations

import argparse
from typing import Any

from policygrad.cli.flags import (
    MANY_RUNS_FIELDS,
    add_algorithm_parsers,
    add_backend_flags,
    add_config_flags,
    add_env_flag,
    add_resume_dir_flag,
    add_resume_flag,
    add_study_dir_flags,
    add_workers_flag,
    config_values,
)
from policygrad.cli.parsing import EXIT_FAILED, add_command, parse_count
from policygrad.core.errors import UserInputError


def register(commands: Any) -> None:
    parser = add_command(commands, "tune", run_tune, "search hyperparameters with Optuna; the best written as a "
                         "preset file",
                         "Search an algorithm's hyperparameters with Optuna; the top trials are re-evaluated on fresh "
                         "seeds and the best config is written as a preset file (policygrad train ALGO --preset "
                         "FILE). policygrad tune ALGO --help lists every flag; policygrad tune --resume STUDY_DIR "
                         "continues a stopped tuning.")
    add_resume_dir_flag(parser, "tuning")
    add_trials_flag(parser, None, "trials in all (default: as recorded)")
    add_workers_flag(parser, 1, unit="trials")
    add_backend_flags(parser)
    add_algorithm_parsers(parser, add_tune_flags, required=False, description=(
        "Search hyperparameters with Optuna (TPE sampler, median pruner between a trial's seeds): each trial trains "
        "its values on K seeds and scores the mean; the top trials are re-evaluated on fresh seeds; the best config "
        "is written as OUT_DIR/NAME/best_preset.yaml (policygrad train ALGO --preset FILE). Running the same command "
        "again continues the tuning. Other flags fix a field for every trial (and take it out of the space)."))


def add_trials_flag(parser: argparse.ArgumentParser, default: Any, help: str) -> None:
    parser.add_argument("--trials", type=parse_count, default=default, metavar="N", help=help)


def add_tune_flags(parser: argparse.ArgumentParser, algo_cls: Any) -> None:
    add_env_flag(parser)
    # required for a new tuning: run_tune checks it, so that it may come before ALGO too (like --workers)
    add_trials_flag(parser, argparse.SUPPRESS, "trials in all (required; a continued tuning counts the ones it has)")
    parser.add_argument("--space", default=None, metavar="SPACE.yaml",
                        help="the search space (field: {low, high[, log]} | {choices: [...]} | {width, depth}); "
                             "default: the algorithm's (policygrad.tuning.space.DEFAULT_SPACES)")
    parser.add_argument("--seeds-per-trial", type=parse_count, default=2, help="seeds each trial trains (default: 2)")
    parser.add_argument("--objective", choices=("final", "auc"), default="final",
                        help="the mean over the seeds of the final evaluation or of the area under the evaluation "
                             "curve (default: final)")
    parser.add_argument("--pruner", choices=("median", "none"), default="median", help="default: median")
    add_workers_flag(parser, 1, unit="trials", inherited=True)
    add_backend_flags(parser, inherited=True)
    parser.add_argument("--storage", default=None, metavar="URL", help="an Optuna database URL (e.g. "
                        "sqlite:///tune.db, postgresql://...) for processes on several machines (default: the "
                        "journal file OUT_DIR/NAME/optuna.journal)")
    parser.add_argument("--top", type=parse_count, default=3, help="trials re-evaluated on fresh seeds (default: 3)")
    parser.add_argument("--reeval-seeds", type=parse_count, default=3,
                        help="fresh seeds of the re-evaluation (default: 3)")
    parser.add_argument("--sampler-seed", type=parse_count, default=0, help="the TPE sampler's seed (default: 0)")
    add_study_dir_flags(parser, "tuning", "tune_ALGO_ENV")
    add_resume_flag(parser, "tuning")
    add_config_flags(parser, algo_cls.Config)  # --total-steps, --eval-every, --eval-episodes, --preset and fixed


def tune_exit_code(result: Any) -> int:
    return 0 if result.best is not None or result.handed_over or not result.trials else EXIT_FAILED


def run_tune(args: argparse.Namespace) -> int:
    from policygrad.algos import ALGORITHMS, algorithm
    from policygrad.tuning.search import resume_tune, tune

    if args.algo is None:
        if args.resume_dir is None:
            raise UserInputError(f"tune needs an algorithm first (one of {' | '.join(ALGORITHMS)}), "
                                 "or --resume STUDY_DIR")
        result = resume_tune(args.resume_dir, args.trials, args.workers, backend=args.backend, address=args.address)
        return tune_exit_code(result)
    if args.resume_dir is not None:
        raise UserInputError(f"--resume STUDY_DIR continues the tuning recorded there: give it without ALGO "
                             f"({args.algo}), or use tune {args.algo} ... --resume")
    if args.trials is None:
        raise UserInputError(f"tune {args.algo} needs --trials N")
    given = config_values(args, algorithm(args.algo).Config, without=("env_id",))
    options = {key: given.pop(key, default) for key, default in MANY_RUNS_FIELDS.items()}
    if "eval_episodes" in given:
        options["eval_episodes"] = given.pop("eval_episodes")
    own = ("space", "seeds_per_trial", "objective", "pruner", "workers", "backend", "address", "storage", "top",
           "reeval_seeds", "sampler_seed", "name", "out_dir", "resume")
    options.update({key: getattr(args, key) for key in own})
    result = tune(args.algo, args.env_id, args.trials, **options, **given)
    return tune_exit_code(result)
