"""The command line's parser and the types of its values: errors in one line, no flag matched by its
prefix, a suggestion for a mistyped flag or name, step counts as people type them (``20k``, ``1.5M``)."""

from __future__ import annotations

import argparse
import ast
import decimal
import difflib
import re
from collections.abc import Callable
from typing import Any, NoReturn

from policygrad.core.errors import UserInputError

EXIT_FAILED = 1  # the command ran and failed: a training, a study's run, an environment check; or a bug
EXIT_USAGE = 2  # bad input: nothing ran
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

# What a choice of a sub-command level names, by the level's metavar (add_subparsers(metavar=...)).
CHOICE_NOUNS = {"COMMAND": "command", "ALGO": "algorithm", "STUDY": "study", "WHAT": "diagnosis"}
INVALID_CHOICE = re.compile(r"argument (?P<name>.+?): invalid choice: (?P<value>.+?) \(choose from .*\)")
MISSING = re.compile(r"the following arguments are required: (?P<name>\w+)")


class CommandLineError(UserInputError):
    """A command line the parser refused: reported as ``PROG: error: MESSAGE``, exit code 2."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An argparse parser that reports in one line (CommandLineError) and never matches a flag by its
    prefix (``--learning-rat`` is an unknown flag with a suggestion, not ``--learning-rate``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # argparse prints usage + message and exits; we want one line
        if message.startswith("unrecognized arguments"):
            message += self._flag_suggestions(message)
        raise CommandLineError(self.prog, self._choice_message(message))

    def _flag_suggestions(self, message: str) -> str:
        known = [flag for action in self._actions for flag in action.option_strings]
        hints = []
        for word in message.split(":", 1)[1].split():
            if word.startswith("--"):
                hints += difflib.get_close_matches(word.split("=", 1)[0], known, n=2, cutoff=0.6)
        return f" (did you mean {', '.join(hints)}?)" if hints else " (policygrad list shows every field)"

    def _choice_message(self, message: str) -> str:
        """argparse's ``argument ALGO: invalid choice: 'reinforc' (choose from ...)`` as ``unknown
        algorithm 'reinforc': expected one of reinforce | ... Did you mean reinforce?``; a flag's
        choices (``--backend``) keep argparse's message, with the suggestion."""
        missing = MISSING.fullmatch(message)
        if missing is not None and missing["name"] in CHOICE_NOUNS:
            noun = CHOICE_NOUNS[missing["name"]]
            article = "an" if noun[0] in "aeiou" else "a"
            return f"expected {article} {noun} first: one of {' | '.join(self._choices(missing['name']))}"
        match = INVALID_CHOICE.fullmatch(message)
        if match is None:
            return message
        name, value = match["name"], match["value"]
        try:
            value = str(ast.literal_eval(value))  # argparse quotes the value as repr() does
        except (ValueError, SyntaxError):
            pass
        choices = self._choices(name)
        close = difflib.get_close_matches(value, choices, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        if name in CHOICE_NOUNS:
            return f"unknown {CHOICE_NOUNS[name]} {value!r}: expected one of {' | '.join(choices)}.{hint}"
        return message + hint

    def _choices(self, name: str) -> list[str]:
        """The choices of the argument argparse calls ``name`` (a metavar, or a flag's option strings)."""
        return next(([str(c) for c in action.choices] for action in self._actions if action.choices is not None
                     and name in (action.metavar, "/".join(action.option_strings))), [])


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


def parse_widths(text: str) -> list[int]:
    """One token of a list-of-widths flag (``--hidden-sizes``): ``64``, or ``64x64`` as studies write
    ``hidden_sizes``; ``--hidden-sizes 64 64`` and ``--hidden-sizes 64x64`` are the same."""
    try:
        return [int(v) for v in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths such as 64 64 or 64x64, got {text!r}") from None


def parse_seeds(text: str) -> int | list[int]:
    """``--seeds``: a count N (seeds 1..N) or a comma-separated list of seeds (``1,2,7``)."""
    try:
        return [int(v) for v in text.split(",")] if "," in text else parse_count(text)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"expected a count such as 5 or seeds such as 1,2,7, got {text!r}") from None


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


Run = Callable[[argparse.Namespace], int]


def add_command(commands: Any, name: str, run: Run | None, help: str, description: str = "",
                **kwargs: Any) -> Parser:
    """Add command ``name`` to ``commands`` (an ``add_subparsers()``): ``help`` is its line in
    ``policygrad --help``, ``description`` the text of ``policygrad NAME --help`` (default: ``help``);
    ``run(args)`` runs it and returns the exit code (None: a level whose sub-commands each set theirs)."""
    parser = commands.add_parser(name, help=help, description=description or help, **kwargs)
    set_runner(parser, run)
    return parser


def set_runner(parser: argparse.ArgumentParser, run: Run | None, takes_extras: bool = False) -> None:
    """What running ``parser``'s (sub-)command means, in the parsed arguments under names no flag has:
    ``cli_run(args)`` (None: its sub-commands set theirs), ``cli_parser`` (the parser that reports its
    unknown flags, with suggestions from its own) and ``cli_takes_extras`` (it parses the arguments
    left over itself, in ``args.cli_extras``)."""
    parser.set_defaults(cli_parser=parser, cli_takes_extras=takes_extras, **({"cli_run": run} if run else {}))

