"""`damage-perception train-comparator`: train the learned comparator on studies' query/reference pairs.

The comparator (``core.comparator``) is added to an existing model file; its fusion does not read the new
signal until it is refitted (``train --refit-fusion MODEL`` on a validation study's scores, then
``calibrate``). Pairs are cached per SKU under ``--cache``, so a killed run resumes its extraction.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from damage_perception.core.comparator import compare, compared_cells
from damage_perception.core.metrics import auroc
from damage_perception.core.training import ComparatorSettings, train_comparator
from damage_perception.data.comparator_pairs import ComparatorPairs, study_pairs
from damage_perception.data.study import Study
from damage_perception.tools.model_file import open_model
from damage_perception.tools.train import model_version, split_skus

FUSION_SUFFIXES = ("-gb", "-nogeo", "-ca", "-noshape", "-pc")   # decided when the fusion is refitted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, nargs="+",
                        help="training studies (damage-perception study ... --split train), their SKUs apart")
    parser.add_argument("--model", type=Path, default=None,
                        help="model file to add the comparator to (default: the shipped model)")
    parser.add_argument("--out", type=Path, required=True, help="model file to write")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for the extracted pairs, one file per SKU (default: STUDY/comparator_pairs; "
                             "with several studies CACHE/<study folder name>)")
    parser.add_argument("--steps", type=int, default=ComparatorSettings.steps, help="optimiser steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the SKU split, sampling and initialisation")
    parser.add_argument("--check-share", type=float, default=0.2,
                        help="share of each kind's SKUs kept out of training to report the comparator on "
                             "(0: train on every SKU)")
    parser.add_argument("--misregister-seed", type=int, default=None,
                        help="also train on every view again with its registration knocked a little off (random "
                             "1-8 mm, 0.5-4 degrees; cached apart, under <cache>-misregistered-SEED): the "
                             "comparator learns that a reference pasted off is not damage")
    parser.add_argument("--no-progress", action="store_true")


def view_report(head, pairs: ComparatorPairs) -> str:
    """View AUROC of the comparator's score (views showing damage against views of pristine items), and the
    same against pristine views with printed damage-like artwork only."""
    scores = []
    for start in range(0, len(pairs), 256):
        part = slice(start, start + 256)
        scores += [o.score for o in compare(head, pairs.query[part], pairs.aligned[part], pairs.maps[part])]
    scores = np.asarray(scores)
    shows = ((pairs.labels > 0.5) & compared_cells(pairs.maps)).reshape(len(pairs), -1).any(axis=1)
    clean = ~pairs.damaged
    text = f"view AUROC {auroc(scores[shows], scores[clean]):.3f} ({int(shows.sum())} views showing damage, " \
           f"{int(clean.sum())} pristine)"
    art = clean & pairs.printed_art
    if art.any():
        text += f"; against printed-art views only {auroc(scores[shows], scores[art]):.3f} ({int(art.sum())})"
    return text


def pairs_cache(cache: Path | None, study: Path, studies: int) -> Path:
    """Where a study's pairs are cached: ``--cache`` itself for one study, a folder per study in it for several."""
    if cache is None:
        return study / "comparator_pairs"
    return cache if studies == 1 else cache / study.name


def misregistered_cache(cache: Path, seed: int) -> Path:
    """Where a study's misregistered pairs are cached: beside its plain ones."""
    return cache.with_name(f"{cache.name}-misregistered-{seed}")


def extract(model, studies: list[Study], paths: list[Path], args: argparse.Namespace,
            misregister_seed: int | None = None) -> ComparatorPairs:
    """Every study's pairs (plain, or misregistered with ``misregister_seed``), cached."""
    parts = []
    for study, path in zip(studies, paths):
        cache = pairs_cache(args.cache, path, len(studies))
        if misregister_seed is not None:
            cache = misregistered_cache(cache, misregister_seed)
        parts.append(study_pairs(model, study, cache, not args.no_progress, misregister_seed))
    return ComparatorPairs.concatenate(parts)


def run(args: argparse.Namespace) -> int:
    model = open_model(args.model, "train-comparator")
    if model is None:
        return 2
    studies = [Study(path) for path in args.study]
    skus = [sku for study in studies for sku in study.skus()]
    if len(set(skus)) < len(skus):
        print("train-comparator: the studies share SKUs", file=sys.stderr)
        return 2
    try:
        pairs = extract(model, studies, args.study, args)
        misregistered = None
        if args.misregister_seed is not None:
            misregistered = extract(model, studies, args.study, args, args.misregister_seed)
    except ValueError as error:
        print(f"train-comparator: {error}", file=sys.stderr)
        return 2
    train_skus, check_skus = split_skus(skus, args.check_share, args.seed) if args.check_share > 0 else (skus, [])
    training = pairs.subset(np.isin(pairs.sku, train_skus))
    print(f"train-comparator: {len(training)} views of {len(train_skus)} SKUs to train, "
          f"{len(pairs) - len(training)} of {len(check_skus)} SKUs to check")
    if misregistered is not None:
        training = ComparatorPairs.concatenate([training, misregistered.subset(np.isin(misregistered.sku, train_skus))])
        print(f"train-comparator: with the same views misregistered on purpose: {len(training)} views to train")
    head = train_comparator(training.query, training.aligned, training.maps, training.labels,
                            ComparatorSettings(steps=args.steps, seed=args.seed), progress=not args.no_progress)
    print(f"train-comparator: training views: {view_report(head, training)}")
    if check_skus:
        print(f"train-comparator: held-out SKUs: {view_report(head, pairs.subset(np.isin(pairs.sku, check_skus)))}")
        if misregistered is not None:
            check = misregistered.subset(np.isin(misregistered.sku, check_skus))
            print(f"train-comparator: held-out SKUs, misregistered: {view_report(head, check)}")
    recipe = model.version.rsplit("-", 1)[0].removeprefix("effl0-")
    for suffix in FUSION_SUFFIXES:
        recipe = recipe.removesuffix(suffix)
    model.comparator = head
    # The fusion is kept as it was (it does not read reg_learned yet): the version says so until a refit.
    tag = f"-cmp{args.steps}" + ("-mr" if args.misregister_seed is not None else "")
    model.version = model_version(model.head, model.fusion, f"{recipe}{tag}", head)
    model.save(args.out)
    print(f"train-comparator: wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), version {model.version}; "
          f"refit its fusion (train --refit-fusion) and calibrate before shipping it")
    return 0
