"""`damage-perception evaluate-images DIR`: the no-gallery path on single RGB photos (no depth).

``DIR/damaged/*`` and ``DIR/intact/*`` (photos of any size) go through the model's classifier as
whole-image crops (``image_inputs``); the image's score is the view's damage log-odds. With ``--split
heldout --seed N`` only the seeded, stratified held-out share of DIR is scored (``photo_split``: the same
split ``train-appearance`` leaves out), so a figure on photos used for training is never reported by mistake.
Prints and writes ``evaluation.json`` (AUROC, recall at FPR 1 % and 5 %); the figures are the last line.
The same photos are also scored by the appearance model (``core/appearance.py``, trained on real photos by
``train-appearance``): the shipped one unless ``--appearance FILE`` names another, none with
``--no-appearance``. Its figures and ms per image sit under ``appearance`` in ``evaluation.json``, beside the
classifier's (which has only seen renders), and its line is printed last. When the photos scored include
photos that appearance model was trained on (its training record names this folder, and the split is not
the held-out share of its seed), the tool says so and ``appearance.trained_on_these_photos`` is true.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from damage_perception.core.appearance import SHIPPED_APPEARANCE_FILE, AppearanceModel, square_photo
from damage_perception.core.damage_model import ModelLoadError
from damage_perception.core.metrics import detection_figures, figures_line
from damage_perception.data.loaders.mvtec import read_color
from damage_perception.tools.image_inputs import check_size, featurize_images, image_files
from damage_perception.tools.model_file import open_model

CLASS_FOLDERS = ("damaged", "intact")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="DIR with damaged/ and intact/ photos")
    parser.add_argument("--out", type=Path, default=Path("out/evaluation/images"), help="folder for the figures")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--appearance", type=Path, default=Path("shipped"),
                        help="also score with this appearance model file (train-appearance; default 'shipped': "
                             "the installed one), side by side")
    parser.add_argument("--no-appearance", action="store_true", help="score with the classifier only")
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


def appearance_scores(model: AppearanceModel, paths: list[Path], batch: int = 16) -> np.ndarray:
    """The appearance model's damage log-odds of each photo (its own size and test-time augmentation)."""
    scores = []
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        scores.append(model.logits(np.stack([square_photo(read_color(p), model.size) for p in chunk])))
    return np.concatenate(scores) if scores else np.zeros(0)


def trained_on_these_photos(model: AppearanceModel, args: argparse.Namespace) -> bool:
    """Whether the photos ``args`` selects include photos ``model`` was trained on, by its training record: the
    same folder (or one of the same name), and anything but the held-out share of the seed and share it was
    trained beside."""
    meta = model.meta
    # the record keeps the path as given to train-appearance (often relative to where it ran): the folder's
    # name decides (the same folder has the same name)
    if "photos" not in meta or Path(str(meta["photos"])).resolve().name != args.folder.resolve().name:
        return False
    heldout_of_its_split = (meta.get("split") == "train" and args.split == "heldout"
                            and args.seed == meta.get("seed") and args.heldout_share == meta.get("heldout_share"))
    return not heldout_of_its_split


def _timed(score, files: dict[str, list[Path]]) -> tuple[dict[str, np.ndarray], float]:
    """({class: scores}, ms per photo, reading included)."""
    started = time.perf_counter()
    scores = {name: score(files[name]) for name in CLASS_FOLDERS}
    return scores, 1000 * (time.perf_counter() - started) / max(1, sum(len(v) for v in files.values()))


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
    appearance = None
    if not args.no_appearance:
        try:
            appearance = AppearanceModel.load(SHIPPED_APPEARANCE_FILE if str(args.appearance) == "shipped"
                                              else args.appearance)
        except ModelLoadError as error:
            print(f"evaluate-images: {error}", file=sys.stderr)
            return 2
    scores, ms = _timed(lambda paths: image_scores(model, paths, args.size), files)
    figures = detection_figures(scores["damaged"], scores["intact"])
    summary = {"folder": str(args.folder), "model": model.version, "size": args.size, "split": args.split,
               "seed": args.seed, "heldout_share": args.heldout_share, **figures, "ms_per_image": round(ms, 1)}
    if appearance is not None:
        runs_on = appearance.use_onnx(2)
        app_scores, app_ms = _timed(lambda paths: appearance_scores(appearance, paths), files)
        app_figures = detection_figures(app_scores["damaged"], app_scores["intact"])
        summary["appearance"] = {"file": str(args.appearance), "model": appearance.version, "size": appearance.size,
                                 "backbone": appearance.backbone, "scales": list(appearance.scales),
                                 "flip_tta": appearance.flip_tta, "runs_on": runs_on, **app_figures,
                                 "ms_per_image": round(app_ms, 1),
                                 "trained_on_these_photos": trained_on_these_photos(appearance, args)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evaluation.json").write_text(json.dumps(summary, indent=1))
    with (args.out / "scores.jsonl").open("w") as file:
        for name in CLASS_FOLDERS:
            for k, (path, score) in enumerate(zip(files[name], scores[name])):
                row = {"image": str(path), "label": name, "score": float(score)}
                if appearance is not None:
                    row["appearance_score"] = float(app_scores[name][k])
                file.write(json.dumps(row) + "\n")
    print(f"evaluate-images: model {model.version}, {args.size} px, split {args.split} (seed {args.seed}), "
          f"{ms:.0f} ms per image")
    if appearance is not None:
        print(f"evaluate-images: appearance model {appearance.version}, {appearance.size} px, "
              f"scales {appearance.scales}, flip {appearance.flip_tta}, {summary['appearance']['runs_on']}, "
              f"{app_ms:.0f} ms per image")
        if summary["appearance"]["trained_on_these_photos"]:
            print(f"evaluate-images: warning: the appearance model was trained on photos of {args.folder} "
                  f"({appearance.meta.get('split')} split, seed {appearance.meta.get('seed')}): its figure is not a "
                  f"held-out one; score --split heldout --seed {appearance.meta.get('seed')}")
    print(f"wrote {args.out / 'evaluation.json'}")
    print(figures_line("images", figures))
    if appearance is not None:
        print(figures_line("appearance", app_figures))
    return 0
