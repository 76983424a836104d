"""The `damage-perception` command: tools for operators, ML engineers and roboticists.

Each sub-command is a module of damage_perception.tools with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; add a new one to ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {  # sub-command -> module of damage_perception.tools
    "demo": "demo",
    "synth": "synth",
    "export-bag": "export_bag",
    "record": "record",
    "replay": "replay",
    "tune": "tune",
    "study": "study",
    "train": "train",
    "calibrate": "calibrate",
    "evaluate": "evaluate",
    "evaluate-mvtec": "evaluate_mvtec",
    "evaluate-images": "evaluate_images",
    "enrol": "enrol",
    "drift": "drift",
    "report": "report",
    "identify": "identify",
}


def build_parser() -> argparse.ArgumentParser:
    """The parser with one sub-command per tool."""
    parser = argparse.ArgumentParser(prog="damage-perception", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"damage_perception.tools.{module_name}")
        module.add_arguments(commands.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"damage_perception.tools.{COMMANDS[args.command]}")
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
