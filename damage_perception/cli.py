"""The `damage-perception` command: tools for operators, ML engineers and roboticists.

Each sub-command is a module with ``add_arguments(parser)`` and ``run(args) -> int``: offline tools in
``damage_perception.tools``, live-cell clients in ``damage_perception.cell``. Add a new one to ``COMMANDS``
(module and one-line help); only the chosen sub-command's module is imported.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {  # sub-command -> (module, help)
    "demo": ("damage_perception.cell.demo",
        "run the simulated cell, the damage_perception node and the planner client; print verdicts"),
    "synth": ("damage_perception.tools.synth",
        "render simulated items into a dataset folder (episode PNGs + JSON), or a contact sheet"),
    "export-bag": ("damage_perception.tools.export_bag",
        "write the episodes of a dataset folder as a rosbag2 recording (MCAP or sqlite3)"),
    "record": ("damage_perception.cell.record",
        "record the cell's camera, TF and verdict topics to an MCAP rosbag2 (until Ctrl-C or --duration)"),
    "replay": ("damage_perception.tools.replay",
        "run the pipeline over a recorded cell (record) and compare with the verdicts recorded live"),
    "tune": ("damage_perception.tools.tune",
        "tune view policies offline: replay episodes over a grid, write a CSV and a Pareto plot"),
    "study": ("damage_perception.tools.study",
        "render a study for training/evaluating the damage models: per-SKU reference galleries and items, as "
        "crops"),
    "train": ("damage_perception.tools.train",
        "train the damage classifier on a rendered study and fit view/item fusion on its held-back SKUs"),
    "train-comparator": ("damage_perception.tools.train_comparator",
        "train the learned comparator (view against its aligned reference, per cell) on a study; adds it to a model"),
    "calibrate": ("damage_perception.tools.calibrate",
        "choose the divert threshold from good items at a target FPR (upper confidence bound) and write it to the"
        " config"),
    "evaluate": ("damage_perception.tools.evaluate",
        "evaluate a damage model on a held-out study: AUROC, recall at 0.1%% and 1%% FPR, per-type recall, plots"),
    "evaluate-mvtec": ("damage_perception.tools.evaluate_mvtec",
        "MVTec AD layout: enrol train/good as the gallery, score test images; image AUROC, recall at FPR 1%% and 5%%"),
    "evaluate-images": ("damage_perception.tools.evaluate_images",
        "photos in DIR/damaged and DIR/intact (no depth): no-gallery classifier: AUROC, recall at FPR 1%% and 5%%"),
    "train-appearance": ("damage_perception.tools.train_appearance",
        "fine-tune the appearance model (last backbone stage + head) on real photos in DIR/damaged and DIR/intact"),
    "enrol": ("damage_perception.tools.enrol",
        "enrol reference galleries for SKUs (from a study or rendered in the sim cell) into a station store"),
    "drift": ("damage_perception.tools.drift",
        "per SKU and ISO week: score median, p95 and divert share from a station store, to CSV and a plot"),
    "store": ("damage_perception.tools.store_tool",
        "fleet store administration: migrate a store, copy a station's SQLite store into a fleet server, labels"),
    "report": ("damage_perception.cell.report",
        "ask the running damage_perception node to write its last item's HTML report (optionally a PNG of it)"),
    "identify": ("damage_perception.tools.identify",
        "product identification on a study: top-1/top-5 accuracy of the gallery index, mismatch-rule calibration"),
    "review": ("damage_perception.review.command",
        "the web review station over a station store: label kept REVIEW/DIVERT items, galleries, drift"),
}


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser with one sub-command per tool; only ``chosen``'s module is imported for its options."""
    parser = argparse.ArgumentParser(prog="damage-perception", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(chosen).parse_args(argv)
    return importlib.import_module(COMMANDS[args.command][0]).run(args)


if __name__ == "__main__":
    sys.exit(main())
