"""`damage-perception evaluate-images DIR`: the no-gallery path on single RGB photos (no depth).

``DIR/damaged/*`` and ``DIR/intact/*`` (photos of any size) go through the model's classifier as
whole-image crops (``image_inputs``); the image's score is the view's damage log-odds. With ``--split
heldout --seed N`` only the seeded, stratified held-out share of DIR is scored (``photo_split``: the same
split ``train-appearance`` leaves out), so a figure on photos used for training is never reported by mistake.
Prints and writes ``evaluation.json`` (AUROC, recall at FPR 1 % and 5 %); the figures are the last line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from damage_perception.core.metrics import detection_figures, figures_line
from damage_perception.tools.image_inputs import check_size, featurize_images, image_files
from damage_perception.tools.model_file import open_model

CLASS_FOLDERS = ("damaged", "intact")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="DIR with damaged/ and intact/ photos")
    parser.add_argument("--out", type=Path, default=Path("out/evaluation/images"), help="folder for the figures")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--size", type=int, default=160, help="px of the square crop the backbone sees")
    parser.add_argument("--split", choices=("all", "heldout", "train"), default="all",
                        help="score all photos, or the held-out / training part of the seeded split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    parser.add_argument("--heldout-share", type=float, default=0.25, help="share of each class held out")


def photo_split(folder: Path, seed: int, share: float) -> dict[str, dict[str, list[Path]]]:
    """{"train"|"heldout": {class: paths}}: per class, a seeded random ``share`` (at least one) held out."""
    split: dict[str, dict[str, list[Path]]] = {"train": {}, "heldout": {}}
    for offset, name in enumerate(CLASS_FOLDERS):
        files = image_files(folder / name)
        order = np.random.default_rng(seed + offset).permutation(len(files))
        cut = max(1, int(round(share * len(files)))) if files else 0
        split["heldout"][name] = sorted(files[k] for k in order[:cut])
        split["train"][name] = sorted(files[k] for k in order[cut:])
    return split


def selected(args: argparse.Namespace) -> dict[str, list[Path]]:
    split = photo_split(args.folder, args.seed, args.heldout_share)
    if args.split == "all":
        return {name: sorted(split["train"][name] + split["heldout"][name]) for name in CLASS_FOLDERS}
    return split[args.split]


def image_scores(model, paths: list[Path], size: int) -> np.ndarray:
    """The classifier's damage log-odds of each photo (no gallery, no depth)."""
    scores = []
    for _, batch in featurize_images(model, paths, size):
        scores += [output.logit for output in model.classify(batch)]
    return np.asarray(scores, float)


def run(args: argparse.Namespace) -> int:
    problem = check_size(args.size)
    files = selected(args) if problem is None else {}
    missing = [name for name in CLASS_FOLDERS if not files.get(name)]
    if problem or missing:
        print(f"evaluate-images: {problem or f'no photos in {args.folder}/' + ' or '.join(missing)}", file=sys.stderr)
        return 2
    model = open_model(args.model, "evaluate-images")
    if model is None:
        return 2
    torch.set_num_threads(min(2, torch.get_num_threads()))
    scores = {name: image_scores(model, files[name], args.size) for name in CLASS_FOLDERS}
    figures = detection_figures(scores["damaged"], scores["intact"])
    summary = {"folder": str(args.folder), "model": model.version, "size": args.size, "split": args.split,
               "seed": args.seed, "heldout_share": args.heldout_share, **figures}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evaluation.json").write_text(json.dumps(summary, indent=1))
    with (args.out / "scores.jsonl").open("w") as file:
        for name in CLASS_FOLDERS:
            for path, score in zip(files[name], scores[name]):
                file.write(json.dumps({"image": str(path), "label": name, "score": float(score)}) + "\n")
    print(f"evaluate-images: model {model.version}, {args.size} px, split {args.split} (seed {args.seed})")
    print(f"wrote {args.out / 'evaluation.json'}")
    print(figures_line("images", figures))
    return 0
