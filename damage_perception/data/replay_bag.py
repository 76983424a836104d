"""Replay a recording of the live cell (``damage-perception record``) through the node's pipeline, offline.

Each recorded ``verdict`` (DamageVerdict) names the frames its views were taken from (``view_stamps``, the
depth image's stamp, at which the node looked TF up). Each verdict's item is inspected again by the node's
``core.inspection.Inspector``; view i is the recorded frame stamped ``view_stamps[i]``: the
depth image with exactly that stamp, the colour image and camera_info with that stamp (or, for cameras
that stamp them apart, the nearest within ``slop``, as the synchroniser paired them), and TF at that stamp
from the recorded ``/tf`` and ``/tf_static``.

No ROS here: messages are decoded by ``rosbags`` with the bag's own definitions; the frame conversion is
given by the caller (the node's: ``damage_perception.ros.conversions.rgbd_to_arrays``).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.gallery import SkuGallery
from damage_perception.core.identification import GalleryIndex
from damage_perception.core.inspection import InspectionError, Inspector
from damage_perception.core.segmentation import ItemSegment
from damage_perception.core.verdict import Decision, ViewResult
from damage_perception.core.view_pipeline import REG_COMPUTED, ViewInput
from damage_perception.data.loaders import ros_messages as rm
from damage_perception.data.loaders.rosbag import cdr_header, find_topic, nearest_index
from damage_perception.data.loaders.tf_buffer import TransformHistory

Convert = Callable[[Any, Any, Any], tuple[np.ndarray, np.ndarray, CameraIntrinsics]]
FRAME_KINDS = ("depth", "color", "info")
SCORE_TOLERANCE = 1e-4


class ReplayError(Exception):
    """An item cannot be replayed from the recording; the message says why."""


@dataclass(frozen=True)
class RecordedVerdict:
    """What the live node decided for one item, from a recorded DamageVerdict."""

    item_id: str
    sku: str
    decision: Decision
    fused_score: float
    threshold: float
    num_views: int
    view_scores: tuple[float, ...]
    view_stamps_ns: tuple[int, ...]
    gallery_version: str   # "SKU@vN", "" without a gallery
    model_version: str
    reason: str

    @classmethod
    def from_msg(cls, msg: Any) -> RecordedVerdict:
        """From a deserialised DamageVerdict (``view_stamps`` empty when recorded before it existed)."""
        return cls(msg.item_id, msg.sku, Decision(int(msg.decision)), float(msg.fused_score), float(msg.threshold),
                   int(msg.num_views), tuple(float(s) for s in msg.view_scores),
                   tuple(rm.stamp_to_ns(s) for s in getattr(msg, "view_stamps", ())), msg.gallery_version,
                   msg.model_version, msg.reason)

    @property
    def gallery_number(self) -> int | None:
        """N of ``gallery_version`` "SKU@vN", None without a gallery."""
        match = re.fullmatch(r".*@v(\d+)", self.gallery_version)
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class _Ref:
    """Where a stamped message is in the bag."""

    log_ns: int
    stamp_ns: int


@dataclass(frozen=True)
class CellFrame:
    """One view's messages (rosbags objects), as the node's synchroniser handed them over."""

    color: Any
    depth: Any
    info: Any


def _format_ns(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


class RecordedCell:
    """The index of a recording: verdicts, where each camera message is by stamp, and TF over time."""

    def __init__(self, path: Path | str, color_topic: str = "color/image_raw", depth_topic: str = "depth/image_raw",
                 camera_info_topic: str = "color/camera_info", verdict_topic: str = "verdict",
                 slop: float = 0.02) -> None:
        self.path = Path(path)
        self.slop_ns = int(slop * 1e9)
        self.tf = TransformHistory(tolerance_ns=0)   # the node waits for TF at the stamp, never extrapolates
        self.refs: dict[str, list[_Ref]] = {kind: [] for kind in FRAME_KINDS}
        self.verdicts: list[RecordedVerdict] = []
        with Reader(self.path) as reader:
            self.typestore = rm.register_bag_types(rm.default_typestore(), reader.connections)
            self.topics = self._topics(sorted(reader.topics), {"color": color_topic, "depth": depth_topic,
                                                               "info": camera_info_topic, "verdict": verdict_topic})
            self._index(reader)
        for kind in FRAME_KINDS:
            self.refs[kind].sort(key=lambda ref: ref.stamp_ns)

    def _topics(self, topics: list[str], wanted: dict[str, str]) -> dict[str, str]:
        found = {kind: find_topic(topics, name) for kind, name in wanted.items()}
        missing = [wanted[kind] for kind, topic in found.items() if topic is None]
        if missing:
            raise ValueError(f"{self.path}: no topic {', '.join(missing)} in the bag; it has {', '.join(topics)}")
        return found

    def _index(self, reader: Reader) -> None:
        """One pass: stamps of the camera messages, the verdicts, TF."""
        kinds = {topic: kind for kind, topic in self.topics.items()}
        tf_topics = {t for t in reader.topics if t.strip("/") in ("tf", "tf_static")}
        connections = [c for c in reader.connections if c.topic in kinds or c.topic in tf_topics]
        for connection, log_ns, raw in reader.messages(connections=connections):
            kind = kinds.get(connection.topic)
            if kind in self.refs:
                self.refs[kind].append(_Ref(log_ns, self._stamp(raw, connection.msgtype)))
                continue
            msg = self.typestore.deserialize_cdr(raw, connection.msgtype)
            if kind == "verdict":
                self.verdicts.append(RecordedVerdict.from_msg(msg))
                continue
            static = connection.topic.strip("/") == "tf_static"
            for t in msg.transforms:
                self.tf.add(t.header.frame_id, t.child_frame_id, rm.stamp_to_ns(t.header.stamp),
                            rm.transform_to_matrix(t.transform), static=static)

    def _stamp(self, raw: bytes | memoryview, msgtype: str) -> int:
        header = cdr_header(raw)
        if header is None:
            return rm.stamp_to_ns(self.typestore.deserialize_cdr(raw, msgtype).header.stamp)
        return header[0]

    def _match(self, kind: str, ns: int) -> _Ref:
        """The message of ``kind`` stamped ``ns`` (depth: exactly; colour, camera_info: nearest within slop)."""
        refs = self.refs[kind]
        index = nearest_index([ref.stamp_ns for ref in refs], ns)
        allowed = 0 if kind == "depth" else self.slop_ns
        if index is None or abs(refs[index].stamp_ns - ns) > allowed:
            nearest = "none recorded" if index is None else \
                f"nearest {abs(refs[index].stamp_ns - ns) * 1e-9:.3f} s away"
            raise ReplayError(f"no {self.topics[kind]} message stamped {_format_ns(ns)} in the bag ({nearest}): "
                              "was it recorded from the start, and did the recorder keep up?")
        return refs[index]

    def frames(self, stamps_ns: Sequence[int]) -> dict[int, CellFrame]:
        """The frames stamped ``stamps_ns``, read in one pass; ReplayError naming the first one missing."""
        wanted = {ns: {kind: self._match(kind, ns) for kind in FRAME_KINDS} for ns in stamps_ns}
        if not wanted:
            return {}
        keys = {(self.topics[kind], ref.log_ns) for refs in wanted.values() for kind, ref in refs.items()}
        start, stop = min(t for _, t in keys), max(t for _, t in keys) + 1
        messages = {}
        with Reader(self.path) as reader:
            connections = [c for c in reader.connections if c.topic in {t for t, _ in keys}]
            for connection, log_ns, raw in reader.messages(connections=connections, start=start, stop=stop):
                if (connection.topic, log_ns) in keys:
                    messages[(connection.topic, log_ns)] = self.typestore.deserialize_cdr(raw, connection.msgtype)
        return {ns: CellFrame(**{kind: messages[(self.topics[kind], ref.log_ns)] for kind, ref in refs.items()})
                for ns, refs in wanted.items()}

    def transform(self, target: str, source: str, ns: int) -> np.ndarray:
        """target <- source at ``ns`` from the recorded TF; ReplayError when it is not there."""
        matrix = self.tf.lookup(target, source, ns)
        if matrix is None:
            raise ReplayError(f"no TF {target} <- {source} at {_format_ns(ns)} in the bag")
        return matrix


@dataclass
class ReplaySetup:
    """What the node judges with (its ``Inspector``), the galleries it judged against, its conversion."""

    inspector: Inspector
    convert: Convert                                        # the node's message -> array conversion
    gallery: Callable[[RecordedVerdict], SkuGallery | None] = lambda recorded: None
    index: GalleryIndex | None = None                       # product identification over every SKU's gallery
    policy: str = ""                                        # the goals' view policy ("" = the station's)


@dataclass(frozen=True)
class ReplayedItem:
    """One recorded verdict and what the replay made of it."""

    recorded: RecordedVerdict
    decision: Decision | None = None
    fused_score: float = math.nan
    threshold: float = math.nan
    view_scores: tuple[float, ...] = ()
    error: str = ""
    skipped: bool = False   # recorded as ERROR: there were no views to replay
    reason: str = field(default="", compare=False)
    registered_views: int = 0   # views compared with the gallery's posed reference views (reg_computed)

    @property
    def num_views(self) -> int:
        return len(self.view_scores)

    @property
    def score_difference(self) -> float:
        """|replayed - recorded| fused score (0 when both are NaN)."""
        a, b = self.fused_score, self.recorded.fused_score
        return 0.0 if math.isnan(a) and math.isnan(b) else abs(a - b)

    def agrees(self, tolerance: float = SCORE_TOLERANCE) -> bool:
        """Same decision, same number of views, fused score within ``tolerance``."""
        return (not self.error and self.decision == self.recorded.decision
                and self.num_views == self.recorded.num_views and self.score_difference <= tolerance)

    def as_json(self) -> dict:
        row = {"item_id": self.recorded.item_id, "sku": self.recorded.sku,
               "decision": self.decision.name if self.decision is not None else None,
               "fused_score": self.fused_score, "threshold": self.threshold, "view_scores": list(self.view_scores),
               "num_views": self.num_views, "registered_views": self.registered_views,
               "recorded_decision": self.recorded.decision.name,
               "recorded_fused_score": self.recorded.fused_score}
        return {**row, "error": self.error} if self.error else row


class RecordedViews:
    """An item's recorded frames as an inspection's ``ViewSource``: view i is the frame stamped
    ``view_stamps[i]``, converted as the node converts it, with TF at its stamp."""

    def __init__(self, cell: RecordedCell, stamps: Sequence[int], setup: ReplaySetup) -> None:
        self.cell, self.stamps, self.setup = cell, stamps, setup
        self.frames = cell.frames(stamps)

    def take(self, index: int, angle: float) -> ViewInput:
        if index >= len(self.stamps):
            raise ReplayError(f"the policy asks for view {index + 1}; the live run took {len(self.stamps)}")
        ns = self.stamps[index]
        frame, settings = self.frames[ns], self.setup.inspector.settings
        color, depth, intrinsics = self.setup.convert(frame.color, frame.depth, frame.info)
        camera, gripper = frame.depth.header.frame_id or settings.camera_frame, settings.gripper_frame
        fingers = [self.cell.transform(gripper, finger, ns) for finger in settings.gripper.finger_frames]
        return ViewInput(depth, intrinsics, self.cell.transform(camera, gripper, ns), fingers, color)

    def taken(self, result: ViewResult, segment: ItemSegment, view: ViewInput) -> None:
        """Nothing to tell: a replay has no planner and no debug topics."""


def replay_item(cell: RecordedCell, recorded: RecordedVerdict, setup: ReplaySetup) -> ReplayedItem:
    """Inspect the item again from its recorded frames; ReplayError when they are not there."""
    stamps = recorded.view_stamps_ns
    if not stamps:
        raise ReplayError("the verdict names no view stamps (recorded before DamageVerdict.view_stamps existed?)")
    source = RecordedViews(cell, stamps, setup)
    gallery = setup.gallery(recorded) if setup.inspector.model is not None else None
    verdict = setup.inspector.inspect(source, recorded.sku, gallery, setup.index, setup.policy)
    frames = sum(view.found for view in verdict.views) + sum(u.frame_index >= 0 for u in verdict.unusable_views)
    if frames != len(stamps):
        raise ReplayError(f"the policy stopped after {frames} frames; the live run took {len(stamps)}")
    return ReplayedItem(recorded, verdict.decision, float(verdict.fused_score), float(verdict.threshold),
                        tuple(float(view.score) for view in verdict.views if view.found), reason=verdict.reason,
                        registered_views=sum(view.signals.get(REG_COMPUTED, 0.0) == 1.0 for view in verdict.views))


def replay_verdicts(cell: RecordedCell, setup: ReplaySetup,
                    verdicts: Iterable[RecordedVerdict] | None = None) -> list[ReplayedItem]:
    """Replay every recorded verdict (ERROR verdicts are skipped); an item that cannot be replayed gets its
    error, the others go on."""
    replayed = []
    for recorded in cell.verdicts if verdicts is None else verdicts:
        if recorded.decision == Decision.ERROR:
            replayed.append(ReplayedItem(recorded, skipped=True, error=f"recorded as ERROR: {recorded.reason}"))
            continue
        try:
            replayed.append(replay_item(cell, recorded, setup))
        except (ReplayError, InspectionError, ValueError) as error:   # ValueError: the conversion rejects a message
            replayed.append(ReplayedItem(recorded, error=str(error)))
    return replayed
