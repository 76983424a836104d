"""A small offline TF buffer over a recording's /tf and /tf_static (no rclpy, no tf2).

Transforms are kept per edge (parent <- child) as a time series; a lookup walks the tree between two frames
and, on each dynamic edge, interpolates between the samples around the requested time
(``core.transforms.interpolate_transform``). Outside an edge's samples the nearest one is used when it is
within ``tolerance_ns``, as tf2 would refuse to extrapolate further.
"""
from __future__ import annotations

import bisect
from collections import defaultdict, deque

import numpy as np

from damage_perception.core.transforms import interpolate_transform, invert


class TransformHistory:
    """parent <- child transforms over time, with tree lookups at a time."""

    def __init__(self, tolerance_ns: int = 50_000_000) -> None:
        self.tolerance_ns = int(tolerance_ns)
        self._static: dict[tuple[str, str], np.ndarray] = {}
        self._times: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._values: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
        self._neighbours: dict[str, set[str]] = defaultdict(set)

    def add(self, parent: str, child: str, ns: int, matrix: np.ndarray, static: bool = False) -> None:
        """Record parent <- child at time ``ns`` (static: valid at all times)."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        self._neighbours[parent].add(child)
        self._neighbours[child].add(parent)
        edge = (parent, child)
        if static:
            self._static[edge] = np.asarray(matrix, float)
            return
        times = self._times[edge]
        index = bisect.bisect_right(times, ns)
        times.insert(index, int(ns))
        self._values[edge].insert(index, np.asarray(matrix, float))

    def __contains__(self, frame: str) -> bool:
        return frame in self._neighbours

    def _edge(self, parent: str, child: str, ns: int) -> np.ndarray | None:
        """parent <- child at ``ns`` on a direct edge, or None."""
        if (parent, child) in self._static:
            return self._static[(parent, child)]
        times, values = self._times.get((parent, child)), self._values.get((parent, child))
        if not times:
            return None
        index = bisect.bisect_left(times, ns)
        if index < len(times) and times[index] == ns:
            return values[index]
        if 0 < index < len(times):
            t0, t1 = times[index - 1], times[index]
            return interpolate_transform(values[index - 1], values[index], (ns - t0) / (t1 - t0))
        nearest = 0 if index == 0 else len(times) - 1
        return values[nearest] if abs(times[nearest] - ns) <= self.tolerance_ns else None

    def _step(self, a: str, b: str, ns: int) -> np.ndarray | None:
        """a <- b at ``ns`` over one edge in either direction, or None."""
        forward = self._edge(a, b, ns)
        if forward is not None:
            return forward
        backward = self._edge(b, a, ns)
        return None if backward is None else invert(backward)

    def lookup(self, target: str, source: str, ns: int) -> np.ndarray | None:
        """target <- source at time ``ns``, or None when the frames are not connected at that time.

        Breadth-first over the edges that have a transform at ``ns`` (so a tree that changed during the
        recording, e.g. a frame re-parented, is followed as it was at that time).
        """
        target, source = target.lstrip("/"), source.lstrip("/")
        found: dict[str, np.ndarray] = {target: np.eye(4)}  # target <- frame
        queue = deque([target])
        while queue:
            frame = queue.popleft()
            if frame == source:
                return found[frame]
            for other in sorted(self._neighbours.get(frame, ())):
                if other not in found and (step := self._step(frame, other, ns)) is not None:
                    found[other] = found[frame] @ step
                    queue.append(other)
        return None
