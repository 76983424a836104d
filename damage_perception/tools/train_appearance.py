"""`damage-perception train-appearance DIR --out FILE`: fine-tune the appearance model on real photos.

``DIR/damaged/*`` and ``DIR/intact/*`` as ``evaluate-images`` reads them. ``--split train --seed N`` (the
default) trains on exactly the complement of ``evaluate-images --split heldout --seed N`` (``photo_split``), so
the held-out figure is honest; the inner validation that picks the epoch and the test-time scales is carved
(stratified, seeded) from that training part only. Steps, each cached or checkpointed under ``--work`` so an
interrupted run resumes where it stopped:

1. ``--copies`` augmented copies of each training photo (``core.appearance.augment``) through the frozen trunk,
   one float16 file per copy;
2. ``--epochs`` of the tail and head on those maps (AdamW, cosine schedule, label smoothing, early stopping on
   the inner-validation AUROC), a checkpoint after every epoch;
3. the test-time scales (1 or 1 and 1.25) chosen on the inner validation; the model file is written.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from damage_perception.core.appearance import (
    AppearanceModel,
    TailTrainer,
    TrainSettings,
    augment,
    fast_trunk,
    square_photo,
    trunk_maps,
)
from damage_perception.core.metrics import auroc
from damage_perception.data.loaders.mvtec import read_color
from damage_perception.tools.evaluate_images import CLASS_FOLDERS, photo_split

SCALE_CHOICES = ((1.0,), (1.0, 1.25))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="DIR with damaged/ and intact/ photos")
    parser.add_argument("--out", type=Path, default=Path("out/models/appearance.pt"), help="model file to write")
    parser.add_argument("--work", type=Path, default=None,
                        help="cache and checkpoint folder (default: OUT's name + .work beside it)")
    parser.add_argument("--split", choices=("train", "all"), default="train",
                        help="train on the complement of evaluate-images' held-out share (or on every photo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (and of training)")
    parser.add_argument("--member-seed", type=int, default=None,
                        help="seed of the inner validation, the augmented copies and the initial weights "
                             "(default: --seed); members of an ensemble differ in it, not in the held-out split")
    parser.add_argument("--heldout-share", type=float, default=0.25, help="share of each class held out")
    parser.add_argument("--val-share", type=float, default=0.15,
                        help="share of each class of the training part kept for the inner validation")
    parser.add_argument("--backbone", default="efficientnet-lite0",
                        choices=("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"))
    parser.add_argument("--size", type=int, default=256, help="px of the square the network sees (multiple of 32)")
    parser.add_argument("--first-block", type=int, default=None,
                        help="first trained block (default: the stride-32 stage's first, 11 for Lite0)")
    parser.add_argument("--copies", type=int, default=12, help="augmented copies of each training photo")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr-backbone", type=float, default=3e-4)
    parser.add_argument("--lr-head", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def inner_split(files: dict[str, list[Path]], share: float, seed: int) -> tuple[dict, dict]:
    """(fit, validation) per class: a seeded ``share`` of each class of ``files`` (at least one when a class
    has two or more photos and ``share`` > 0) is the inner validation."""
    fit, val = {}, {}
    for offset, name in enumerate(CLASS_FOLDERS):
        paths = files[name]
        order = np.random.default_rng(seed + 1000 + offset).permutation(len(paths))
        cut = max(1, int(round(share * len(paths)))) if share > 0 and len(paths) > 1 else 0
        val[name] = sorted(paths[k] for k in order[:cut])
        fit[name] = sorted(paths[k] for k in order[cut:])
    return fit, val


def _flatten(files: dict[str, list[Path]]) -> tuple[list[Path], np.ndarray]:
    paths = files["damaged"] + files["intact"]
    return paths, np.r_[np.ones(len(files["damaged"])), np.zeros(len(files["intact"]))].astype(np.float32)


def _read(paths: list[Path], side: int, progress: bool, what: str) -> np.ndarray:
    return np.stack([square_photo(read_color(p), side) for p in tqdm(paths, unit="photo", desc=what,
                                                                     disable=not progress)])


def cached_copies(model: AppearanceModel, photos: np.ndarray, copies: int, seed: int, folder: Path,
                  progress: bool, trunk=None) -> np.ndarray:
    """(copies, N, C, h, w) float16 trunk maps of augmented copies; each copy's file is reused when present."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    bar = tqdm(total=copies * len(photos), unit="photo", desc="augmented copies", disable=not progress)
    for copy in range(copies):
        path = folder / f"copy_{copy:02d}.npy"
        if path.is_file():
            maps = np.load(path)
        else:
            rng = np.random.default_rng([seed, copy])
            maps = []
            for start in range(0, len(photos), 16):
                batch = np.stack([augment(p, model.size, rng) for p in photos[start:start + 16]])
                maps.append(trunk_maps(model, batch, trunk=trunk))
                bar.update(len(batch))
            maps = np.concatenate(maps)
            np.save(path.with_suffix(".tmp.npy"), maps)
            path.with_suffix(".tmp.npy").rename(path)
        bar.n = (copy + 1) * len(photos)
        bar.refresh()
        out.append(maps)
    bar.close()
    return np.stack(out)


def view_maps(model: AppearanceModel, photos: np.ndarray, scale: float = 1.0, trunk=None) -> np.ndarray:
    """(2, N, C, h, w) trunk maps of plain and mirrored photos at ``scale`` times the model's size."""
    side = int(round(model.size * scale / 32)) * 32
    squares = np.stack([square_photo(p, side) for p in photos]) if len(photos) else photos
    return np.stack([trunk_maps(model, squares, trunk=trunk),
                     trunk_maps(model, np.ascontiguousarray(squares[:, :, ::-1]), trunk=trunk)])


def run(args: argparse.Namespace) -> int:
    if args.size < 64 or args.size % 32:
        print(f"train-appearance: --size must be a multiple of 32 and >= 64, got {args.size}", file=sys.stderr)
        return 2
    split = photo_split(args.folder, args.seed, args.heldout_share)
    files = split["train"] if args.split == "train" else {
        name: sorted(split["train"][name] + split["heldout"][name]) for name in CLASS_FOLDERS}
    missing = [name for name in CLASS_FOLDERS if len(files[name]) < 2]
    if missing:
        print(f"train-appearance: fewer than 2 training photos in {args.folder}/" + " or ".join(missing),
              file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, args.threads))
    progress = not args.no_progress
    started = time.time()
    member = args.seed if args.member_seed is None else args.member_seed
    fit, val = inner_split(files, args.val_share, member)
    fit_paths, fit_labels = _flatten(fit)
    val_paths, val_labels = _flatten(val)
    torch.manual_seed(member)   # the head's initial weights
    model = AppearanceModel(args.backbone, args.size, args.first_block)
    key = hashlib.sha1(json.dumps([args.backbone, args.size, model.first_trained_block, member,
                                   [p.name for p in fit_paths]]).encode()).hexdigest()[:12]
    work = args.work or args.out.with_name(args.out.stem + ".work")
    cache = work / f"cache-{key}"
    base = min(640, 2 * args.size)   # photos kept at this side for the random crops
    photos = _read(fit_paths, base, progress, "reading photos")
    trunk = fast_trunk(model, args.threads)   # ONNX Runtime: ~8x faster than torch on these cores
    train_maps = cached_copies(model, photos, args.copies, member, cache, progress, trunk)
    del photos
    val_photos = _read(val_paths, base, False, "inner validation") if val_paths else np.zeros((0, base, base, 3),
                                                                                               np.uint8)
    val_maps = view_maps(model, val_photos, trunk=trunk)
    settings = TrainSettings(epochs=args.epochs, batch=args.batch, lr_backbone=args.lr_backbone,
                             lr_head=args.lr_head, patience=args.patience, seed=member)
    trainer = TailTrainer(model, train_maps, fit_labels, val_maps, val_labels, settings)
    checkpoint = work / f"checkpoint-{key}-c{args.copies}.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state.get("settings") == settings.to_dict():
            trainer.load_state_dict(state)
            print(f"train-appearance: resumed {checkpoint} at epoch {trainer.epoch}")
    with tqdm(total=settings.epochs, initial=trainer.epoch, unit="epoch", desc="training",
              disable=not progress) as bar:
        while not trainer.done:
            record = trainer.run_epoch()
            torch.save(trainer.state_dict(), checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)
            bar.update(1)
            bar.set_postfix(loss=f"{record.loss:.3f}", val_auroc=f"{record.val_auroc:.3f}")
            if not progress:
                print(f"epoch {record.epoch}: loss {record.loss:.4f}, inner-val AUROC {record.val_auroc:.4f}",
                      flush=True)
    model = trainer.finish()
    # Test-time scales: chosen on the inner validation (never on the held-out share).
    choice, scale_aurocs = SCALE_CHOICES[0], {}
    if val_paths:
        y = val_labels.astype(bool)
        logits = {1.0: trainer.val_logits()}
        for scales in SCALE_CHOICES:
            for scale in scales:
                if scale not in logits:
                    maps = view_maps(model, val_photos, scale, trunk)
                    with torch.no_grad():
                        logits[scale] = np.mean([model.tail(torch.from_numpy(m)).numpy() for m in maps], axis=0)
            mean = np.mean([logits[s] for s in scales], axis=0)
            scale_aurocs[str(scales)] = auroc(mean[y], mean[~y])
        choice = max(SCALE_CHOICES, key=lambda s: (round(scale_aurocs[str(s)], 4), -len(s)))
    model.scales = tuple(choice)
    digest = hashlib.sha1(b"".join(v.numpy().tobytes() for v in model.trained_modules().state_dict().values()
                                   if v.dtype.is_floating_point)).hexdigest()[:10]
    model.version = f"app-{args.backbone.split('-')[-1]}-{args.size}px-seed{args.seed}-{args.split}-{digest}"
    meta = {"photos": str(args.folder), "split": args.split, "seed": args.seed, "member_seed": member,
            "heldout_share": args.heldout_share,
            "val_share": args.val_share, "fit_photos": len(fit_paths), "val_photos": len(val_paths),
            "copies": args.copies, "settings": settings.to_dict(), "best_epoch": trainer.best_epoch,
            "inner_val_auroc": trainer.best_auroc, "scale_aurocs": scale_aurocs,
            "history": [vars(h) for h in trainer.history], "train_seconds": round(time.time() - started, 1)}
    model.save(args.out, meta)
    (work / "training.json").write_text(json.dumps({"version": model.version, **meta,
                                                    "fit": [str(p) for p in fit_paths],
                                                    "val": [str(p) for p in val_paths]}, indent=1))
    print(f"train-appearance: {len(fit_paths)} photos trained, {len(val_paths)} inner validation; best epoch "
          f"{trainer.best_epoch} of {trainer.epoch}, inner-val AUROC {trainer.best_auroc:.4f}, scales {choice} "
          f"({scale_aurocs})")
    print(f"wrote {args.out} ({model.version}, {args.out.stat().st_size / 1e6:.1f} MB) in "
          f"{time.time() - started:.0f} s")
    return 0
