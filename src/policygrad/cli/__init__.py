"""The ``policygrad`` command: the top-level parser, the dispatch to a command, and what ends how.

One module per family of commands registers its commands (``register(commands)``) with their flags:
:mod:`~policygrad.cli.runs` (train, resume, eval, check-env, plot), :mod:`~policygrad.cli.studies`
(sweep, study, report), :mod:`~policygrad.cli.compare`, :mod:`~policygrad.cli.tune`,
:mod:`~policygrad.cli.diagnose`, :mod:`~policygrad.cli.listing` (list). The flags several commands
share are defined once in :mod:`~policygrad.cli.flags`; the parser and value types are in
:mod:`~policygrad.cli.parsing`. ``--help`` at every level is argparse's.

Exit codes:

- 0: done (``--help`` included);
- 2: bad input (:class:`~policygrad.core.errors.UserInputError`, a refused command line, an unknown
  Gymnasium environment): one line on stderr, nothing ran;
- 1: the command ran and failed (:class:`~policygrad.core.errors.TrainingError`, failed runs of a
  study, an environment check with errors), or any other exception: a bug in policygrad, said in one
  line that names the log file holding the traceback (``policygrad --debug COMMAND`` prints it);
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from policygrad.cli.parsing import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CommandLineError, Parser
from policygrad.core.errors import RunWriteError, TrainingError, UserInputError


def build_parser() -> Parser:
    """``policygrad``'s parser: ``--debug`` and one sub-parser per command."""
    from policygrad.cli import compare, diagnose, listing, runs, studies, tune

    parser = Parser(prog="policygrad", description="Policy-gradient reinforcement learning in PyTorch, from "
                    "REINFORCE to PPO, on Gymnasium.", epilog="policygrad COMMAND --help explains a command; "
                    "policygrad train ALGO --help lists ALGO's fields.")
    parser.add_argument("--debug", dest="cli_debug", action="store_true",
                        help="print the traceback of an error (of a bug in policygrad: instead of writing it to a log "
                             "file); give it before COMMAND")
    commands = parser.add_subparsers(dest="cli_command", metavar="COMMAND", title="commands")
    for family in (runs, studies, compare, tune, diagnose, listing):
        family.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``policygrad ARGV...`` (default: ``sys.argv[1:]``) and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args, extras = parser.parse_known_args(argv)
        if extras and not getattr(args, "cli_takes_extras", False):  # reported by the parser that knows the flags
            getattr(args, "cli_parser", parser).error(f"unrecognized arguments: {' '.join(extras)}")
    except CommandLineError as exc:
        print(f"{exc.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help printed
        return exit_code(exc)
    except Exception as exc:  # building or running the parser failed: our bug
        return report_bug(exc, "policygrad", argv, debug=False)
    if args.cli_command is None:
        parser.print_help()
        return EXIT_USAGE
    args.cli_extras = extras
    args.cli_command_line = argv[argv.index(args.cli_command):]  # what follows the global flags (they take no value)
    return run_command(args, argv)


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the parsed command and turn how it ended into an exit code and at most one line on stderr."""
    where = f"policygrad {args.cli_command}"
    try:
        return int(args.cli_run(args))
    except SystemExit as exc:  # a command's second parser (study STUDY --algo ALGO) printed its --help
        return exit_code(exc)
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UserInputError as exc:
        if args.cli_debug:
            print_traceback(exc)
        prog = exc.prog if isinstance(exc, CommandLineError) else where
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunWriteError as exc:  # a full disk or a read-only directory, in any command
        if args.cli_debug:
            print_traceback(exc)
        print(f"{where}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TrainingError as exc:
        if args.cli_debug:
            print_traceback(exc)
        print(f"{where}: training failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        if is_unknown_environment(exc):  # Gymnasium's own errors for an id it does not know or cannot make
            if args.cli_debug:
                print_traceback(exc)
            print(f"{where}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return report_bug(exc, where, argv, debug=args.cli_debug)


def exit_code(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)
    return EXIT_FAILED


def is_unknown_environment(exc: Exception) -> bool:
    """Gymnasium refused an environment id the user gave (not registered, deprecated, or its extra,
    such as ``gymnasium[mujoco]``, not installed): bad input, not a bug."""
    import gymnasium.error

    return isinstance(exc, (gymnasium.error.UnregisteredEnv, gymnasium.error.DeprecatedEnv,
                            gymnasium.error.DependencyNotInstalled))


def print_traceback(exc: BaseException) -> None:
    import traceback

    print("".join(traceback.format_exception(exc)), end="", file=sys.stderr)


def bug_log_dir() -> Path:
    """Where a bug's traceback is written: the user's cache directory (``$XDG_CACHE_HOME/policygrad``,
    by default ``~/.cache/policygrad``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "policygrad"


def write_bug_log(exc: BaseException, argv: list[str]) -> Path:
    """Write ``exc``'s traceback, the command line and the versions to a new file in :func:`bug_log_dir`."""
    import datetime
    import platform
    import shlex
    import traceback

    from policygrad.core.version import __version__
    from policygrad.run.files import write_text_atomic

    folder = bug_log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"error-{datetime.datetime.now():%Y%m%d-%H%M%S-%f}-{os.getpid()}.log"
    write_text_atomic(path, f"command: policygrad {shlex.join(argv)}\npolicygrad {__version__}, Python "
                            f"{platform.python_version()} on {platform.platform()}\n\n"
                            + "".join(traceback.format_exception(exc)), what="error log")
    return path


def report_bug(exc: Exception, where: str, argv: list[str], debug: bool) -> int:
    """An exception policygrad did not raise on purpose: a bug. One line saying so, and the traceback:
    printed with ``--debug``, else written to a log file that the line names."""
    summary = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(summary) > 200:
        summary = summary[:197] + "..."
    if debug:
        print_traceback(exc)
        traceback_at = "the traceback above"
    else:
        try:
            traceback_at = f"the traceback in {write_bug_log(exc, argv)}"
        except Exception as log_error:  # no writable cache directory: the traceback goes to stderr instead
            print_traceback(exc)
            traceback_at = f"the traceback above (no log file: {log_error})"
        else:
            traceback_at += " (policygrad --debug COMMAND ... prints it instead)"
    print(f"{where}: internal error ({summary}): this is a bug in policygrad, not a mistake in your input; "
          f"please report it with {traceback_at}", file=sys.stderr)
    return EXIT_FAILED
