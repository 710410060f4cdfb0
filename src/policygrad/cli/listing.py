"""``policygrad list``: the algorithms and every field of their configs."""

from __future__ import annotations

import argparse
from typing import Any

from policygrad.cli.flags import shown_default
from policygrad.cli.parsing import add_command, flag_name


def register(commands: Any) -> None:
    add_command(commands, "list", run_list, "the algorithms and every config field with its default and help")


def run_list(args: argparse.Namespace) -> int:
    from policygrad.algos import ALGORITHMS
    from policygrad.core.config import user_fields

    for name, algo_cls in ALGORITHMS.items():
        summary = (algo_cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name}: {summary}")
        for f in user_fields(algo_cls.Config):
            default, note = shown_default(algo_cls.Config, f)
            print(f"  {flag_name(f.name):<24} {default:<14} {f.metadata.get('help', '')}"
                  + (f" [{note}]" if note else ""))
        print()
    return 0
