"""`damage-perception replay BAG`: run the node's pipeline over a recording of the live cell (``record``) and
compare with the verdicts the node published then.

Each recorded verdict is replayed from the frames its views were taken from (``view_stamps``), with the same
model (``--model``, default the node YAML's ``model_path``), the SKU's gallery version the node used (from
``--store``), the node YAML's pipeline, decision, policy and identification settings, and the node's image
conversion. Writes ``DIR/verdicts.jsonl``; exit code 0 when every replayed item agrees with the live one
(same decision and number of views, fused score within ``--tolerance``), 1 otherwise.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from damage_perception.core.damage_model import ModelLoadError
from damage_perception.core.gallery import SkuGallery
from damage_perception.core.identification import GalleryIndex
from damage_perception.core.inspection import Inspector
from damage_perception.core.station import (
    StationSettings,
    config_file,
    load_station_model,
    parameter_file_settings,
)
from damage_perception.data.replay_bag import (
    RecordedCell,
    RecordedVerdict,
    ReplayError,
    ReplaySetup,
    replay_verdicts,
)
from damage_perception.ros.conversions import rgbd_to_arrays
from damage_perception.store.database import InspectionStore
from damage_perception.store.galleries import active_galleries, load_gallery


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the replay sub-command."""
    parser.add_argument("bag", type=Path, help="rosbag2 folder written by `damage-perception record`")
    parser.add_argument("--out", type=Path, required=True, help="folder for verdicts.jsonl")
    parser.add_argument("--store", type=Path, default=None, help="the station's store (SKU galleries)")
    parser.add_argument("--model", default=None,
                        help="damage model file ('shipped', '' = geometric score; default the config's model_path)")
    parser.add_argument("--config", type=Path, default=None,
                        help="node parameter file (default the package's config/damage_perception.yaml)")
    parser.add_argument("--policy", default=None, help="view policy the goals used (default the config's)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest fused score difference that agrees")


def run(args: argparse.Namespace) -> int:
    """Replay the bag, write the verdicts, print the comparison."""
    if args.store is not None and not args.store.is_file():
        print(f"replay: no store {args.store}", file=sys.stderr)
        return 2
    store = InspectionStore(args.store) if args.store is not None else None
    try:
        settings = parameter_file_settings(args.config or config_file("damage_perception.yaml"))
        setup = make_setup(settings, args.model, store, args.policy)
        cell = RecordedCell(args.bag, settings.color_topic, settings.depth_topic, settings.camera_info_topic,
                            slop=settings.sync_slop)
    except (ModelLoadError, ValueError) as error:
        print(f"replay: {error}", file=sys.stderr)
        return 2
    if not cell.verdicts:
        print(f"replay: no verdicts recorded in {args.bag}")
        return 1
    _warn_on_other_model(cell.verdicts, setup.inspector.model_version)
    replayed = replay_verdicts(cell, setup)
    write_verdicts(replayed, args.out / "verdicts.jsonl")
    return 0 if print_comparison(replayed, args.tolerance) else 1


def make_setup(settings: StationSettings, model_path: str | None, store: InspectionStore | None,
               policy: str | None) -> ReplaySetup:
    """The node's inspection as ``settings`` describe it (with ``model_path`` instead of theirs, when given),
    the gallery versions the live run used and the store's active galleries for identification."""
    if model_path is not None:
        settings = dataclasses.replace(settings, model_path=model_path)
    inspector = Inspector(settings, load_station_model(settings.model_path))   # ModelLoadError: exit 2
    identifying = store is not None and inspector.model is not None and settings.identification.enabled
    galleries = active_galleries(store) if identifying else []
    return ReplaySetup(inspector, rgbd_to_arrays, gallery=lambda recorded: recorded_gallery(store, recorded),
                       index=GalleryIndex(galleries) if len(galleries) >= 2 else None, policy=policy or "")


def recorded_gallery(store: InspectionStore | None, recorded: RecordedVerdict) -> SkuGallery | None:
    """The gallery version the live run used (``gallery_version``), or None when it used none."""
    if recorded.gallery_number is None:
        return None
    if store is None:
        raise ReplayError(f"the live run used gallery {recorded.gallery_version}: give the station's --store")
    gallery = load_gallery(store, recorded.sku, recorded.gallery_number)
    if gallery is None:
        raise ReplayError(f"gallery {recorded.gallery_version} is not in the store")
    return gallery


def _warn_on_other_model(verdicts, model_version: str) -> None:
    others = sorted({v.model_version for v in verdicts if v.model_version and v.model_version != model_version})
    if others:
        print(f"replay: warning: the live run used model {', '.join(others)}; replaying with {model_version}")


def write_verdicts(replayed, path: Path) -> None:
    """One JSON line per recorded verdict."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for item in replayed:
            out.write(json.dumps(item.as_json()) + "\n")


def print_comparison(replayed, tolerance: float) -> bool:
    """Recorded against replayed per item, and a summary; True when every replayed item agrees."""
    print(f"{'item':<14} {'recorded':>17} {'replayed':>17} {'|diff|':>9}")
    for item in replayed:
        recorded = f"{item.recorded.decision.name} {item.recorded.fused_score:.4f}"
        if item.error:
            print(f"{item.recorded.item_id:<14} {recorded:>17} {'skipped' if item.skipped else 'FAILED'}: {item.error}")
            continue
        mark = "" if item.agrees(tolerance) else "  DIFFERENT"
        print(f"{item.recorded.item_id:<14} {recorded:>17} {f'{item.decision.name} {item.fused_score:.4f}':>17} "
              f"{item.score_difference:>9.2e}{mark}")
    compared = [item for item in replayed if not item.skipped]
    done = [item for item in compared if not item.error]
    same = sum(item.decision == item.recorded.decision for item in done)
    worst = max((item.score_difference for item in done), default=0.0)
    print(f"replay: {same} of {len(compared)} items with the identical decision; max |score difference| "
          f"{worst:.2e}; {len(compared) - len(done)} failed, {len(replayed) - len(compared)} skipped (recorded ERROR)")
    return bool(compared) and all(item.agrees(tolerance) for item in compared)
