"""``policygrad compare``: methods on one environment under one protocol, a study with a report."""

from __future__ import annotations

import argparse
import json
from typing import Any

from policygrad.cli.flags import (
    add_backend_flags,
    add_dry_run_flag,
    add_env_flag,
    add_env_kwargs_flag,
    add_resume_flag,
    add_seeds_flag,
    add_statistics_flags,
    add_study_dir_flags,
    add_total_steps_flag,
    add_workers_flag,
)
from policygrad.cli.parsing import add_command, parse_count
from policygrad.cli.studies import study_exit_code
from policygrad.core.errors import UserInputError


def register(commands: Any) -> None:
    from policygrad.studies.spec import DEFAULT_EVAL_EPISODES

    parser = add_command(commands, "compare", run_compare, "compare methods (policygrad's, Stable-Baselines3's, "
                         "random) on one environment under one protocol",
                         "Compare methods on one environment under one protocol (the same steps, the same "
                         "deterministic evaluations at the same steps and seeds), into one study directory "
                         "(OUT_DIR/NAME) with a report: groups of methods no test separates, pairwise tests, curves "
                         "against steps and seconds. "
                         "Methods: policygrad algorithms, sb3:dqn|ppo|a2c|sac|td3 (pip install "
                         "'policygrad[compare]'), random.")
    add_env_flag(parser, required=True, help="Gymnasium id, or module:Class / module:make_fn")
    add_env_kwargs_flag(parser, "keyword arguments of the environment, every method's (gymnasium.make(env_id, "
                        "**env_kwargs); recorded in study.json): a JSON object such as '{\"continuous\": true}', or "
                        "KEY=VALUE pairs", default={})
    parser.add_argument("--methods", required=True, help="comma-separated, e.g. reinforce,a2c,ppo,sb3:dqn,random")
    add_seeds_flag(parser, 5)
    add_total_steps_flag(parser, 100_000, "steps per run")
    parser.add_argument("--eval-every", type=parse_count, default=None,
                        help="steps between evaluations (default: total_steps // 20)")
    parser.add_argument("--eval-episodes", type=parse_count, default=DEFAULT_EVAL_EPISODES,
                        help=f"episodes per evaluation (default: {DEFAULT_EVAL_EPISODES})")
    add_workers_flag(parser)
    add_study_dir_flags(parser, "comparison", "compare_ENV")
    parser.add_argument("--shared", action="append", default=[], metavar="FIELD=VALUE",
                        help="a setting given to every method (policygrad config field; SB3 where it has the same "
                             "name: gamma, learning_rate, ent_coef, gae_lambda, vf_coef, max_grad_norm); repeat")
    add_resume_flag(parser, "comparison")
    add_statistics_flags(parser)
    add_dry_run_flag(parser)
    add_backend_flags(parser)


def parse_shared(items: list[str]) -> dict[str, Any]:
    """``--shared FIELD=VALUE`` (repeatable), each value read as YAML (``0.99``, ``true``, ``[64, 64]``)."""
    import yaml

    shared: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserInputError(f"--shared {item!r}: expected FIELD=VALUE")
        try:
            shared[key.strip().replace("-", "_")] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UserInputError(f"--shared {item!r}: the value is not YAML ({exc.__class__.__name__})") from None
    return shared


def run_compare(args: argparse.Namespace) -> int:
    from policygrad.comparison.methods import make_comparison
    from policygrad.studies.backends import open_backend
    from policygrad.studies.runner import run_study

    comparison = make_comparison(args.env_id, args.methods, args.seeds, args.total_steps, eval_every=args.eval_every,
                                 eval_episodes=args.eval_episodes, name=args.name, shared=parse_shared(args.shared),
                                 test=args.test, min_effect=args.min_effect, env_kwargs=args.env_kwargs)
    spec = comparison.spec
    if args.dry_run:
        on = spec.env_id + (f" {json.dumps(spec.env_kwargs)}" if spec.env_kwargs else "")
        print(f"compare {args.out_dir / spec.name}: {len(comparison.runs)} runs of {', '.join(spec.vary['method'])} "
              f"on {on}, {spec.total_steps} steps each, evaluated every {spec.eval_every or 'end only'} on "
              f"{spec.eval_episodes} episodes")
        for note in spec.notes:
            print(f"  note: {note}")
        for method, info in spec.methods.items():
            how = [f"{info['learner']} under the masks of {info['masks']}"] if "learner" in info else []
            how += [info["policy"]] if "policy" in info else []
            print(f"  {method}: {info['source']}" + (f" ({', '.join(how)})" if how else ""))
        for run in comparison.runs:
            print(f"  {run.run_id}")
        return 0
    with open_backend(args.backend, args.address) as backend:
        result = run_study(spec, args.out_dir, args.workers, resume=args.resume, runs=comparison.runs,
                           backend=backend)
    return study_exit_code(result)
