"""Every view of a study scored by a damage model: the table that fusion fitting, calibration and
evaluation read (so the network runs once per study, not once per analysis).

For each SKU the gallery is built from the study's gallery episode; each item episode is then scored view by
view against it. Saved as JSON lines, one item per line.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from damage_perception.core.damage_model import DamageModel
from damage_perception.core.fusion import REFERENCE_READING, FusionData
from damage_perception.core.policy_simulation import ScoredEpisode
from damage_perception.core.verdict import ViewResult
from damage_perception.data.study import Study, StudyEpisodeData
from damage_perception.store.galleries import save_gallery
from damage_perception.store.item_media import keep_reference_crops


@dataclass
class ItemScores:
    """One inspected item of a study with its views' signals."""

    item_id: str
    sku: str
    kind: str
    damage: str
    severity: float
    printed_damage_art: str
    angles: list[float]
    found: list[bool]
    shows_damage: list[bool]
    signals: list[dict[str, float]]       # per found view
    type_probabilities: list[dict[str, float]]
    timings: list[dict[str, float]]
    has_gallery: bool = True

    def item_probability(self, fusion) -> float:
        """The fused item probability (0 when no view found the item)."""
        if not self.signals:
            return 0.0
        return fusion.item_probability([fusion.view_logit(s, self.has_gallery) for s in self.signals],
                                       self.has_gallery, signals=self.signals)

    @property
    def damaged(self) -> bool:
        return self.damage != "pristine"


def gallery_of(model: DamageModel, episode: StudyEpisodeData):
    """The SKU gallery built from a study's gallery episode (its views where an item was found)."""
    found = episode.found
    return model.build_gallery(episode.meta["sku"], episode.color[found], episode.mask[found], episode.depth_m[found],
                               episode.angle[found], [c for c, f in zip(episode.clouds, found) if f],
                               posed=episode.posed_crops(np.flatnonzero(found)))


def enrol_episodes(store, model, episodes, note: str = "", total: int | None = None,
                   progress: bool = True) -> dict[str, int | None]:
    """Build each gallery episode's SKU gallery and enrol it; SKU -> new version (None when it failed)."""
    versions: dict[str, int | None] = {}
    for episode in tqdm(episodes, total=total, unit="SKU", disable=not progress, desc="enrolling"):
        sku = episode.meta["sku"]
        try:
            gallery = gallery_of(model, episode)
        except ValueError as error:
            print(f"enrol: {sku} not enrolled: {error}", file=sys.stderr)
            versions[sku] = None
            continue
        versions[sku] = save_gallery(store, gallery, note or f"model {model.version}")
        kept_angles = {view.angle for view in gallery.views}   # less the views the model refused
        kept = [k for k in np.flatnonzero(episode.found) if float(episode.angle[k]) in kept_angles]
        keep_reference_crops(store, sku, versions[sku], [float(episode.angle[k]) for k in kept],
                             [episode.color[k] for k in kept])
        print(f"enrol: {sku} gallery version {versions[sku]} ({len(gallery.views)} views, "
              f"{sum(len(v.patches) for v in gallery.views)} patches, {len(gallery.shape.points)} shape points)")
    return versions


def score_item(model: DamageModel, episode: StudyEpisodeData, gallery) -> ItemScores:
    """All view signals of one item episode."""
    found = episode.found
    index = np.flatnonzero(found)
    signals = []
    if len(index):
        signals = model.view_signals(episode.color[index], episode.mask[index], episode.depth_m[index],
                                     list(episode.angle[index]), [episode.clouds[k] for k in index],
                                     list(episode.camera_position[index]), list(episode.geometric[index]), gallery,
                                     episode.posed_crops(index))
    meta = episode.meta
    return ItemScores(meta["item_id"], meta["sku"], meta["kind"], meta["damage"], float(meta["severity"]),
                      meta.get("printed_damage_art", ""), [float(a) for a in episode.angle], found.tolist(),
                      episode.shows_damage[found].tolist(), [s.as_dict() for s in signals],
                      [s.classifier.type_probabilities for s in signals], [s.timings for s in signals],
                      gallery is not None)


def score_study(study: Study, model: DamageModel, skus: Iterable[str] | None = None,
                progress: bool = True) -> list[ItemScores]:
    """Score every item episode of ``skus`` (default: all) against its SKU's gallery."""
    wanted = set(skus) if skus is not None else set(study.skus())
    entries = [e for e in study.entries if e["sku"] in wanted]
    galleries = {}
    scores: list[ItemScores] = []
    for entry in tqdm(entries, unit="episode", disable=not progress, dynamic_ncols=True, desc="scoring"):
        episode = study.load(entry)
        if entry["role"] == "gallery":
            try:
                galleries[entry["sku"]] = gallery_of(model, episode)
            except ValueError as error:  # too few usable reference views: its items go without a gallery
                print(f"score_study: no gallery for {entry['sku']}: {error}")
        else:  # the plan puts each SKU's gallery episode before its items
            scores.append(score_item(model, episode, galleries.get(entry["sku"])))
    return scores


def add_reference_readings(study: Study, model: DamageModel, items: list[ItemScores],
                           progress: bool = True) -> list[ItemScores]:
    """``items`` scored before the gallery's reference reading existed (``DamageModel.reference_reading``),
    with it added to every view: each SKU's gallery is rebuilt from the study as ``score_study`` builds it
    (its refused views left out), and only the classifier runs on it; the items' views are not scored again."""
    wanted = {item.sku for item in items}
    readings: dict[str, float | None] = {}
    gallery_entries = [e for e in study.entries if e["role"] == "gallery" and e["sku"] in wanted]
    for entry in tqdm(gallery_entries, unit="SKU", disable=not progress, dynamic_ncols=True, desc="reference readings"):
        try:
            readings[entry["sku"]] = model.reference_reading(gallery_of(model, study.load(entry)))
        except ValueError:   # no gallery: its items were scored without one
            readings[entry["sku"]] = None
    for item in items:
        reading = readings.get(item.sku)
        if reading is not None:
            item.signals = [{**view, REFERENCE_READING: reading} for view in item.signals]
    return items


def fusion_data(items: list[ItemScores]) -> FusionData:
    """Validation data for ``fit_fusion`` (items with at least one found view)."""
    usable = [i for i in items if i.signals and i.has_gallery]
    return FusionData([i.signals for i in usable], [np.asarray(i.shows_damage, bool) for i in usable],
                      np.array([i.damaged for i in usable]), [i.damage for i in usable])


def save_scores(items: list[ItemScores], path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as stream:
        for item in items:
            stream.write(json.dumps(asdict(item)) + "\n")
    return path


def load_scores(path: Path | str) -> list[ItemScores]:
    with Path(path).open() as stream:
        return [ItemScores(**json.loads(line)) for line in stream if line.strip()]


def scored_episode(item: ItemScores, fusion):
    """An item's scored views as the policy simulation reads them (``core.policy_simulation.ScoredEpisode``):
    each found view with its fused view log-odds and probability, so ``tune`` simulates policies over a study
    scored once."""
    angles = [a for a, found in zip(item.angles, item.found) if found]
    views = []
    for index, (angle, signals, types) in enumerate(zip(angles, item.signals, item.type_probabilities)):
        logit = fusion.view_logit(signals, item.has_gallery)
        views.append(ViewResult(index, angle, True, float(1.0 / (1.0 + np.exp(-logit))), dict(types),
                                logit=logit, signals=dict(signals)))
    label = item.damage if item.damaged else "pristine"
    return ScoredEpisode(item.item_id, label, np.asarray(angles, float), views, list(item.shows_damage))
