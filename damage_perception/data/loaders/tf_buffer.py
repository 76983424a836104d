"""A small offline TF buffer over a recording's /tf and /tf_static (no rclpy, no tf2).

The frame tree and its time series are ``core.tf_tree.TransformTree`` (the live ``ros/tf2_compat.Buffer``
wraps the same): a lookup composes the chain between two frames and, on each dynamic edge, interpolates
between the samples around the requested time. Outside an edge's samples the nearest one is used when it
is within ``tolerance_ns``, as tf2 would refuse to extrapolate further. Everything is kept (no cache
pruning), also the history under a frame's earlier parents; a lookup that cannot be answered gives None.
"""
from __future__ import annotations

import numpy as np

from damage_perception.core.tf_tree import TransformError, TransformTree


class TransformHistory:
    """parent <- child transforms over time, with tree lookups at a time."""

    def __init__(self, tolerance_ns: int = 50_000_000) -> None:
        self.tree = TransformTree(cache_ns=None, tolerance_ns=tolerance_ns, keep_reparented=True)

    def add(self, parent: str, child: str, ns: int, matrix: np.ndarray, static: bool = False) -> None:
        """Record parent <- child at time ``ns`` (static: valid at all times)."""
        self.tree.add(parent, child, ns, matrix, static)

    def __contains__(self, frame: str) -> bool:
        return frame in self.tree

    def lookup(self, target: str, source: str, ns: int) -> np.ndarray | None:
        """target <- source at time ``ns``, or None when the frames are not connected at that time."""
        try:
            return self.tree.lookup(target, source, ns)[0]
        except TransformError:
            return None
