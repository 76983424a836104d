"""The `damage-perception` command: tools for operators, ML engineers and roboticists."""
from __future__ import annotations

import argparse
import sys

from damage_perception.tools import demo


def build_parser() -> argparse.ArgumentParser:
    """The parser with one sub-command per tool."""
    parser = argparse.ArgumentParser(prog="damage-perception", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo.add_arguments(commands.add_parser("demo", help="simulated cell + node + planner client"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return demo.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
