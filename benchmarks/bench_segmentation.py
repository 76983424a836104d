"""Segmentation per view with our DBSCAN (``core.clustering``) against open3d's ``cluster_dbscan``, side by side.

Every rendered view is segmented twice in one process, alternating the two clusterings view by view, so both
see the same machine load; prints the median and p95 of ``segment_item`` and of the clustering call alone for
each, their ratio, and how many views' masks differ (none should: the labels are the same).

    .venv/bin/python benchmarks/bench_segmentation.py [--items 12] [--views 6]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import open3d as o3d

from damage_perception.core import segmentation
from damage_perception.core.camera import backproject
from damage_perception.core.clustering import dbscan_labels
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.transforms import invert
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig

KINDS = ("carton", "book", "mailer", "bottle", "bag", "blister")


def open3d_dbscan(points: np.ndarray, eps: float, min_points: int) -> np.ndarray:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, float)))
    return np.asarray(cloud.cluster_dbscan(eps, min_points))


def timed(function, seconds: list[float]):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
        return result
    return wrapper


def line(name: str, seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000.0
    return f"{name:<34} median {np.median(ms):6.2f} ms   p95 {np.percentile(ms, 95):6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    gripper = GripperGeometry()
    renderer = CellRenderer(SceneConfig(), gripper)
    rng = np.random.default_rng(args.seed)
    clusterings = {"ours (core.clustering)": dbscan_labels, "open3d cluster_dbscan": open3d_dbscan}
    segment_s = {name: [] for name in clusterings}
    cluster_s = {name: [] for name in clusterings}
    differ = 0
    for spec in make_catalogue(args.items, damage_rate=0.5, seed=args.seed, kinds=KINDS):
        renderer.set_item(build_item(spec, gripper))
        for angle in np.linspace(0, 2 * np.pi, args.views, endpoint=False):
            view = renderer.render(float(angle), rng)
            points = backproject(view.depth_m, view.intrinsics)
            masks = []
            for name, clustering in clusterings.items():
                segmentation.dbscan_labels = timed(clustering, cluster_s[name])
                start = time.perf_counter()
                result = segmentation.segment_item(points, invert(view.T_optical_gripper),
                                                   list(view.finger_transforms), gripper)
                segment_s[name].append(time.perf_counter() - start)
                masks.append(result.mask)
            differ += int(not np.array_equal(*masks))
    segmentation.dbscan_labels = dbscan_labels
    print(f"{len(segment_s['ours (core.clustering)'])} rendered 640x480 views ({', '.join(KINDS)})")
    for name in clusterings:
        print(line(f"segment_item, {name}", segment_s[name]))
        print(line("  of it the clustering", cluster_s[name]))
    ours, theirs = (np.median(segment_s[name]) for name in clusterings)
    print(f"segment_item median: ours / open3d = {ours / theirs:.2f}; views whose masks differ: {differ}")


if __name__ == "__main__":
    main()
