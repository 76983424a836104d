"""`damage-perception train`: train the classifier head on a study and fit the fusion on held-back SKUs."""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from damage_perception.core.classifier import DamageHead, cell_labels
from damage_perception.core.damage_model import DamageModel
from damage_perception.core.fusion import fit_fusion
from damage_perception.core.metrics import auroc
from damage_perception.core.registered_comparison import ALIGNMENTS
from damage_perception.core.training import TrainingViews, TrainSettings, train_head
from damage_perception.data.study import Study
from damage_perception.data.study_scores import fusion_data, load_scores, save_scores, score_study
from damage_perception.sim.catalogue import sku_kind
from damage_perception.tools import distributed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, help="study folder (damage-perception study ... --split train)")
    parser.add_argument("--out", type=Path, default=Path("out/models/damage_model.pt"), help="model file to write")
    parser.add_argument("--steps", type=int, default=1200, help="optimiser steps")
    parser.add_argument("--batch", type=int, default=48, help="views per step")
    parser.add_argument("--seed", type=int, default=0, help="seed of the SKU split, sampling and initialisation")
    parser.add_argument("--validation-share", type=float, default=0.3,
                        help="share of each kind's SKUs kept out of training to fit the fusion on (1 with "
                             "--refit-fusion: fit it on every SKU of a validation study)")
    parser.add_argument("--fusion-study", type=Path, default=None,
                        help="fit the fusion on this study (other SKUs) instead; the head then trains on every SKU")
    parser.add_argument("--checkpoints", type=Path, default=None,
                        help="folder for checkpoints and the validation scores (default: out/models/checkpoints)")
    parser.add_argument("--refit-fusion", type=Path, default=None, metavar="MODEL",
                        help="keep this model's trained head and only refit its fusion (after a gallery change)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the head's training from the latest checkpoint in --checkpoints")
    parser.add_argument("--gallery-scoring", choices=("patchcore", "top_mean"), default="patchcore",
                        help="how views are scored against a gallery (the fusion is fitted on these scores)")
    parser.add_argument("--boosted-fusion", action="store_true",
                        help="fit the boosted item model (monotone gradient-boosted trees over every signal's "
                             "summaries across the views) besides the logistic ones; used with a gallery")
    parser.add_argument("--fusion-scores", type=Path, nargs="+", default=None, metavar="SCORES",
                        help="with --refit-fusion: fit on these scores.jsonl files (from `evaluate` of validation "
                             "studies with the same model; items of the study's training SKUs are left out) "
                             "instead of scoring the study again")
    parser.add_argument("--no-shape-check", action="store_true",
                        help="leave out the ICP shape check against the union of the gallery clouds (models with "
                             "the registered comparison do not need it)")
    parser.add_argument("--keep-item-model", action="store_true",
                        help="with --refit-fusion: keep that model's boosted item model and refit only the view "
                             "and logistic item models (e.g. with --no-geometric): decisions with a gallery, and "
                             "the threshold calibrated on them, stay the same")
    parser.add_argument("--balance-types", action="store_true",
                        help="with --boosted-fusion: weigh every damage type alike in the boosted item model's fit "
                             "(a rare type such as a missing part otherwise counts for little)")
    parser.add_argument("--no-geometric", action="store_true",
                        help="leave the RANSAC geometric score out of the view fusion (the node then skips it)")
    parser.add_argument("--alignment", choices=ALIGNMENTS, default="coloured",
                        help="how the registered comparison aligns a view with its references: coloured = shape "
                             "ICP refined by coloured ICP against the nearest reference's print (default), "
                             "shape = ICP on the shape alone (the v2 models)")
    parser.add_argument("--leave-out-hidden", action="store_true",
                        help="the comparator's view score leaves out the cells whose surface the references do "
                             "not see (their gripper in front of it); version suffix -hid")
    parser.add_argument("--no-progress", action="store_true")
    distributed.add_arguments(parser)


def split_skus(skus: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """(training, validation) SKUs: ``share`` of each kind's SKUs (at least one) to validation."""
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for kind in sorted({sku_kind(s) for s in skus}):
        of_kind = sorted(s for s in skus if sku_kind(s) == kind)
        order = rng.permutation(len(of_kind))
        cut = max(1, int(round(share * len(of_kind)))) if len(of_kind) > 1 else 0
        validation += [of_kind[k] for k in order[:cut]]
        train += [of_kind[k] for k in order[cut:]]
    return sorted(train), sorted(validation)


def collect_training_views(study, skus: list[str], model, progress: bool = True):
    """Backbone features, depth cues, item cells and cell labels of every found view of ``skus``."""
    entries = [e for e in study.entries if e["sku"] in set(skus)]
    features, depth, cells, labels = [], [], [], []
    for entry in tqdm(entries, unit="episode", disable=not progress, dynamic_ncols=True, desc="features"):
        episode = study.load(entry)
        found = episode.found
        if not found.any():
            continue
        batch = model.featurize(episode.color[found], episode.mask[found], episode.depth_m[found])
        features.append(batch.features.half())
        depth.append(batch.depth)
        cells.append(torch.from_numpy(batch.cells))
        labels.append(torch.from_numpy(cell_labels(episode.damage[found])))
    return TrainingViews(torch.cat(features), torch.cat(depth), torch.cat(cells), torch.cat(labels))


def model_version(head, fusion, recipe: str, comparator=None) -> str:
    """A version naming the recipe and the hash of the head's weights, the fusion's coefficients and the
    comparator's weights (when there is one)."""
    buffer = io.BytesIO()
    torch.save(head.state_dict(), buffer)
    if comparator is not None:
        torch.save(comparator.state_dict(), buffer)
    buffer.write(json.dumps(fusion.to_dict() if fusion else None, sort_keys=True).encode())
    return f"effl0-{recipe}-{hashlib.sha256(buffer.getvalue()).hexdigest()[:10]}"


def run(args: argparse.Namespace) -> int:
    if distributed.wanted(args):   # re-run this very command as N DDP ranks under torchrun
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return distributed.launch(args, ["train", *distributed.command_line(parser, args)])
    with distributed.process_group() as shard:
        return train(args, shard)


def train(args: argparse.Namespace, shard) -> int:
    """The training run of one process (``shard``: its rank of a DDP run, or the whole run)."""
    study = Study(args.study)
    fusion_study = Study(args.fusion_study) if args.fusion_study else study
    if args.fusion_study:
        train_skus, validation_skus = study.skus(), fusion_study.skus()
        if set(train_skus) & set(validation_skus):
            print("train: the fusion study shares SKUs with the training study", file=sys.stderr)
            return 2
    else:
        train_skus, validation_skus = split_skus(study.skus(), args.validation_share, args.seed)
    if (not train_skus and not args.refit_fusion) or not validation_skus:
        print(f"train: need SKUs for both training and validation, got {len(train_skus)} and "
              f"{len(validation_skus)}", file=sys.stderr)
        return 2
    print(f"train: {len(train_skus)} SKUs to train the head, {len(validation_skus)} to fit the fusion")
    checkpoints = args.checkpoints or Path("out/models/checkpoints")
    kept_item_model = None
    if args.keep_item_model and not args.refit_fusion:
        print("train: --keep-item-model needs --refit-fusion MODEL", file=sys.stderr)
        return 2
    if args.refit_fusion:
        model = DamageModel.load(args.refit_fusion)
        if args.keep_item_model:
            if model.fusion is None or model.fusion.boosted is None:
                print(f"train: {args.refit_fusion} has no boosted item model to keep", file=sys.stderr)
                return 2
            kept_item_model = model.fusion.boosted
        recipe = model.version.rsplit("-", 1)[0].removeprefix("effl0-")
        for suffix in ("-ref", "-typebal", "-gb", "-nogeo", "-hid", "-ca", "-noshape", "-pc"):   # decided anew
            recipe = recipe.removesuffix(suffix)
    else:
        model = DamageModel(DamageHead())
        views = collect_training_views(study, train_skus, model, not args.no_progress)
        print(f"train: {len(views)} views, {int(views.shows_damage.sum())} show damage")
        settings = TrainSettings(steps=args.steps, batch=args.batch, seed=args.seed)
        model.head = train_head(views, settings, checkpoints, progress=not args.no_progress and shard.rank == 0,
                                shard=shard, resume=args.resume)
        recipe = f"head-s{args.steps}-seed{args.seed}"
        if shard.rank != 0:   # rank 0 holds the same head: it alone fits the fusion and writes the model
            return 0
    model.gallery_scoring = args.gallery_scoring
    model.shape_check = not args.no_shape_check
    model.alignment = args.alignment
    model.leave_out_hidden = args.leave_out_hidden
    recipe += "-pc" if args.gallery_scoring == "patchcore" else ""
    recipe += "" if model.shape_check else "-noshape"
    recipe += "-ca" if model.alignment == "coloured" else ""
    recipe += "-hid" if model.leave_out_hidden else ""
    if args.fusion_scores and args.refit_fusion:
        # several files: validation studies rendered apart (e.g. one that adds a kind's rarer damage)
        held_for_training = set(train_skus)
        scores = [item for path in args.fusion_scores for item in load_scores(path)
                  if item.sku not in held_for_training]
        print(f"train: fitting the fusion on {len(scores)} scored items of "
              f"{', '.join(str(path) for path in args.fusion_scores)}")
    else:
        scores = score_study(fusion_study, model, validation_skus, progress=not args.no_progress)
        save_scores(scores, checkpoints / "validation_scores.jsonl")
    model.fusion = fit_fusion(fusion_data(scores), boosted=args.boosted_fusion and kept_item_model is None,
                              shape_check=model.shape_check, geometric=not args.no_geometric,
                              balance_types=args.balance_types)
    if kept_item_model is not None:
        model.fusion.boosted = kept_item_model
    recipe += "-nogeo" if args.no_geometric else ""
    recipe += "-gb" if model.fusion.boosted is not None else ""
    recipe += "-typebal" if model.fusion.boosted is not None and args.balance_types and kept_item_model is None else ""
    recipe += "-ref" if model.fusion.reads_reference else ""
    model.version = model_version(model.head, model.fusion, recipe, model.comparator)
    model.save(args.out)
    clean = [s["classifier"] for i in scores if not i.damaged for s in i.signals]
    shown = [s["classifier"] for i in scores if i.damaged for s, v in zip(i.signals, i.shows_damage) if v]
    print(f"train: validation view AUROC of the classifier alone {auroc(shown, clean):.3f} "
          f"({len(shown)} views showing damage, {len(clean)} pristine views)")
    print(f"train: wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), version {model.version}")
    return 0
