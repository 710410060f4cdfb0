"""``policygrad diagnose gradients``: every estimator's policy gradient on the same episodes."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from policygrad.cli.flags import add_env_flag, add_env_kwargs_flag, add_trust_env_flag
from policygrad.cli.parsing import add_command, parse_count, set_runner
from policygrad.core.errors import UserInputError


def register(commands: Any) -> None:
    from policygrad.diagnostics.estimators import DEFAULT_ESTIMATORS

    diagnose = add_command(commands, "diagnose", None, "diagnose the policy gradient: every estimator's variance, "
                           "bias and cosine on the same episodes")
    what = diagnose.add_subparsers(dest="what", metavar="WHAT", required=True, help="what to diagnose")
    parser = what.add_parser("gradients", help="every estimator's policy gradient on the same episodes: variance, "
                             "bias, cosine, episodes needed (OUT/report.md, report.html, gradients.csv)",
                             description="At a fixed policy (a run's checkpoint, or a fresh network), play B "
                             "independent batches of M episodes and compute every estimator's policy gradient on the "
                             "same episodes: the norm of the mean gradient, the trace of the covariance, "
                             "noise-to-signal, the cosine with a reference gradient, the bias, and the episodes needed "
                             "for a given cosine. Writes gradients.csv, report.md, report.html and figures to --out.")
    set_runner(parser, run_diagnose_gradients)
    add_env_flag(parser, None, help="Gymnasium id (default: the run's); alone: a fresh network, as train ppo builds it")
    add_env_kwargs_flag(parser, "keyword arguments of a fresh network's environment (a run's are its own): a JSON "
                        "object such as '{\"continuous\": true}', or KEY=VALUE pairs", default=None)
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
    parser.add_argument("--encoder", default=None, help="a fresh network's encoder: auto (the Nature CNN for images, "
                        "the MLP otherwise) | nature | impala (any image size) | mlp (default: auto)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where the report goes (default: diagnose/ENV)")
    add_trust_env_flag(parser)


def run_diagnose_gradients(args: argparse.Namespace) -> int:
    from policygrad.diagnostics.diagnose import diagnose_gradients
    from policygrad.diagnostics.report import MD_FILE, write_report
    from policygrad.reporting.document import markdown_for_terminal

    if args.run is None and args.checkpoint is not None:
        raise UserInputError("--checkpoint needs --run RUN_DIR")
    options = dict(estimators=args.estimators, batches=args.batches, batch_episodes=args.batch_episodes,
                   seed=args.seed, gamma=args.gamma, cosine=args.cosine, critic=args.critic,
                   critic_episodes=args.critic_episodes, trust_env=args.trust_env, encoder=args.encoder,
                   env_kwargs=args.env_kwargs)
    command = "policygrad " + shlex.join(args.cli_command_line)
    names = [n.strip() for n in args.checkpoint.split(",") if n.strip()] if args.checkpoint else []
    if len(names) > 1:  # several checkpoints of one run: a report each, and a summary over training
        from policygrad.diagnostics.training import diagnose_checkpoints, write_training_report

        diagnoses = diagnose_checkpoints(args.run, names, env_id=args.env_id, **options)
        out = args.out or Path("diagnose") / diagnoses[0].env_id.replace(":", "_")
        html = write_training_report(diagnoses, out, names, command=command)
        print(markdown_for_terminal((out / MD_FILE).read_text().split("## Figure")[0].strip()))
        print(f"\nwrote {html} (and {out / MD_FILE}, one folder per checkpoint)")
        return 0
    diagnosis = diagnose_gradients(args.env_id, run=args.run, checkpoint=names[0] if names else None, **options)
    out = args.out or Path("diagnose") / diagnosis.env_id.replace(":", "_")
    html = write_report(diagnosis, out, command=command)
    print(markdown_for_terminal((out / MD_FILE).read_text().split("## Figures")[0].strip()))
    print(f"\nwrote {html} (and {out / MD_FILE}, gradients.csv, report_files/)")
    return 0
