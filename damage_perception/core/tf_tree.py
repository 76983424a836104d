"""A frame tree over time, without ROS: the one TF time series that the live buffer and the bag reader wrap.

Each frame has one parent; its edge parent <- child is a time series of 4x4 transforms (or one transform
valid at all times, when static). A lookup composes the chain from the source up to the common ancestor
and down to the target at one stamp, interpolating each dynamic edge between its two samples around the
stamp (``core.transforms.interpolate_transform``). Stamp 0 means the latest time common to the chain.
Outside an edge's samples its nearest one is used when within ``tolerance_ns`` (0 = never extrapolate,
as tf2). ``ros/tf2_compat.Buffer`` adds tf2's API, messages and waiting; ``data/loaders/tf_buffer
.TransformHistory`` the offline reader's None-for-missing answers.

When a frame's parent changes, the live buffer drops that frame's history (tf2 keeps a parent per stamp);
the bag reader keeps each parent's (``keep_reparented``). A sample at an already-stored stamp replaces it.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from damage_perception.core.transforms import interpolate_transform, invert

MAX_GRAPH_DEPTH = 1000  # as tf2: deeper means a loop


class TransformError(Exception):
    """A lookup cannot be answered; the message says why (in tf2's words)."""


class FrameNotFoundError(TransformError):
    """A frame is unknown to the tree."""


class DisconnectedFramesError(TransformError):
    """The frames exist but are in different trees."""


class ExtrapolationError(TransformError):
    """The requested time is outside the data of an edge of the chain."""


class InvalidFrameError(TransformError):
    """A frame id is empty."""


def _seconds(ns: int) -> str:
    return f"{ns * 1e-9:.6f}"


@dataclass
class EdgeHistory:
    """Transforms parent <- child of one frame, sorted by stamp (one entry, any time, when static)."""

    parent: str
    static: bool
    stamps: list[int] = field(default_factory=list)
    matrices: list[np.ndarray] = field(default_factory=list)

    def insert(self, stamp: int, matrix: np.ndarray, cache_ns: int | None) -> bool:
        """Store a sample; False when it is older than the ``cache_ns`` kept (None: keep everything)."""
        if self.static:
            self.stamps, self.matrices = [stamp], [matrix]
            return True
        if cache_ns is not None and self.stamps and stamp < self.stamps[-1] - cache_ns:
            return False  # older than the cache keeps (tf2: TF_OLD_DATA)
        index = bisect.bisect_left(self.stamps, stamp)
        if index < len(self.stamps) and self.stamps[index] == stamp:
            self.matrices[index] = matrix
        else:
            self.stamps.insert(index, stamp)
            self.matrices.insert(index, matrix)
        if cache_ns is not None:
            first_kept = bisect.bisect_left(self.stamps, self.stamps[-1] - cache_ns)
            del self.stamps[:first_kept], self.matrices[:first_kept]
        return True

    @property
    def latest(self) -> int:
        return self.stamps[-1]

    def at(self, stamp: int, tolerance_ns: int = 0) -> np.ndarray:
        """The transform at ``stamp`` (0 = latest), interpolated; ExtrapolationError outside the samples
        (beyond ``tolerance_ns`` of the nearest)."""
        if self.static or stamp == 0:
            return self.matrices[-1]
        index = bisect.bisect_left(self.stamps, stamp)
        if index < len(self.stamps) and self.stamps[index] == stamp:
            return self.matrices[index]
        if 0 < index < len(self.stamps):
            t0, t1 = self.stamps[index - 1], self.stamps[index]
            return interpolate_transform(self.matrices[index - 1], self.matrices[index], (stamp - t0) / (t1 - t0))
        nearest = 0 if index == 0 else len(self.stamps) - 1
        if abs(self.stamps[nearest] - stamp) <= tolerance_ns:
            return self.matrices[nearest]
        if len(self.stamps) == 1:
            raise ExtrapolationError(
                f"Lookup would require extrapolation at time {_seconds(stamp)}, but only time "
                f"{_seconds(self.stamps[0])} is in the buffer")
        if index == len(self.stamps):
            raise ExtrapolationError(
                f"Lookup would require extrapolation into the future.  Requested time {_seconds(stamp)} but "
                f"the latest data is at time {_seconds(self.latest)}, "
                f"{_seconds(stamp - self.latest)} s after it")
        raise ExtrapolationError(
            f"Lookup would require extrapolation into the past.  Requested time {_seconds(stamp)} but "
            f"the earliest data is at time {_seconds(self.stamps[0])}, "
            f"{_seconds(self.stamps[0] - stamp)} s before it")


class TransformTree:
    """Frames, their parents and their edges' histories (``cache_ns``: how much of each dynamic edge's
    history is kept behind its latest sample, None = all). With ``keep_reparented`` a frame keeps the history
    under each parent it had (a recording in which a frame was re-parented is followed as it was at each
    time); without, a new parent replaces the old one's history, as the live buffer does."""

    def __init__(self, cache_ns: int | None = None, tolerance_ns: int = 0, keep_reparented: bool = False) -> None:
        self.cache_ns, self.tolerance_ns, self.keep_reparented = cache_ns, int(tolerance_ns), keep_reparented
        self.edges: dict[str, dict[str, EdgeHistory]] = {}   # child -> parent -> that edge's history
        self.frames: set[str] = set()

    def __contains__(self, frame: str) -> bool:
        return frame.lstrip("/") in self.frames

    def add(self, parent: str, child: str, stamp: int, matrix: np.ndarray, static: bool = False) -> bool:
        """Record parent <- child at ``stamp`` (ns; static: valid at all times); False when too old to keep."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        parents = self.edges.setdefault(child, {})
        if not self.keep_reparented and parent not in parents:
            parents.clear()
        edge = parents.get(parent)
        if edge is None or edge.static != static:
            edge = parents[parent] = EdgeHistory(parent, static)
        stored = edge.insert(int(stamp), np.asarray(matrix, float), self.cache_ns)
        self.frames.update((parent, child))
        return stored

    def clear_dynamic(self) -> None:
        """Forget every dynamic edge (static ones are kept, as in tf2)."""
        for child, parents in list(self.edges.items()):
            for parent in [p for p, edge in parents.items() if not edge.static]:
                del parents[parent]
            if not parents:
                del self.edges[child]

    def lookup(self, target: str, source: str, stamp: int) -> tuple[np.ndarray, int]:
        """(target <- source at ``stamp``, the stamp used: the latest common one for 0); TransformError."""
        target, source = target.lstrip("/"), source.lstrip("/")
        source_edges, target_edges = self._chain(target, source, stamp)
        if stamp == 0:
            latest = [edge.latest for edge in source_edges + target_edges if not edge.static]
            stamp = min(latest) if latest else 0
        try:
            ancestor_from_source = self._compose(source_edges, stamp)
            ancestor_from_target = self._compose(target_edges, stamp)
        except ExtrapolationError as error:
            raise ExtrapolationError(
                f"{error}, when looking up transform from frame [{source}] to frame [{target}]") from None
        return invert(ancestor_from_target) @ ancestor_from_source, stamp

    def parent_edge(self, frame: str, stamp: int) -> EdgeHistory | None:
        """The edge to ``frame``'s parent at ``stamp`` (0: the latest), None for a root. Of several parents
        (``keep_reparented``), the one whose history answers at ``stamp``, else the most recent."""
        parents = list(self.edges.get(frame, {}).values())
        if len(parents) <= 1 or stamp == 0:
            return max(parents, key=lambda edge: edge.latest, default=None)
        for edge in parents:
            try:
                edge.at(stamp, self.tolerance_ns)
                return edge
            except ExtrapolationError:
                continue
        return max(parents, key=lambda edge: edge.latest)

    def _check_frame(self, frame: str, argument: str) -> None:
        if not frame:
            raise InvalidFrameError(f'Invalid argument "{frame}" passed to lookupTransform argument '
                                    f"{argument} - frame_id should not be empty")
        if frame not in self.frames:
            raise FrameNotFoundError(f'"{frame}" passed to lookupTransform argument {argument} does not exist. ')

    def _ancestors(self, frame: str, stamp: int) -> tuple[list[str], list[EdgeHistory]]:
        """The frames from ``frame`` up to its root at ``stamp``, and the edges between them."""
        path, edges = [frame], []
        while (edge := self.parent_edge(path[-1], stamp)) is not None:
            path.append(edge.parent)
            edges.append(edge)
            if len(path) > MAX_GRAPH_DEPTH:
                raise FrameNotFoundError(f"The tf tree is invalid because it contains a loop (through '{frame}').")
        return path, edges

    def _chain(self, target: str, source: str, stamp: int) -> tuple[list[EdgeHistory], list[EdgeHistory]]:
        """Edges from source up to the common ancestor, and from target up to it."""
        self._check_frame(target, "target_frame")
        self._check_frame(source, "source_frame")
        (source_path, source_edges), (target_path, target_edges) = (self._ancestors(source, stamp),
                                                                    self._ancestors(target, stamp))
        target_index = {frame: i for i, frame in enumerate(target_path)}
        for i, frame in enumerate(source_path):
            if frame in target_index:
                return source_edges[:i], target_edges[:target_index[frame]]
        raise DisconnectedFramesError(
            f"Could not find a connection between '{target}' and '{source}' because they are not part of the "
            f"same tree. Tf has two or more unconnected trees.")

    def _compose(self, edges: list[EdgeHistory], stamp: int) -> np.ndarray:
        matrix = np.eye(4)
        for edge in edges:
            matrix = edge.at(stamp, self.tolerance_ns) @ matrix
        return matrix
