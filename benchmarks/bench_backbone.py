"""Per-view time of the frozen backbone in torch and in ONNX Runtime, side by side, and their difference.

    .venv/bin/python benchmarks/bench_backbone.py [--sizes 160,224] [--batch 6] [--repeats 15]

A batch of ``--batch`` crops (the views of one item) at each crop size; both run on 2 threads (the CI
machine's cores); one warm-up call each. Prints medians, p95s and the ratio; no assertions.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from damage_perception.core.backbone import Backbone
from damage_perception.core.onnx_backbone import fast_backbone


def per_view_ms(run, images: torch.Tensor, repeats: int) -> np.ndarray:
    run(images)   # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(images)
        times.append(time.perf_counter() - start)
    return np.asarray(times) * 1000 / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="160,224")
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(2)
    network = Backbone()
    onnx, how = fast_backbone(network, threads=2)
    print(f"fast backbone: {how}")
    for size in (int(s) for s in args.sizes.split(",")):
        shape = (args.batch, 3, size, size)
        images = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))
        difference = float((onnx(images) - network(images)).abs().max())
        torch_ms, onnx_ms = per_view_ms(network, images, args.repeats), per_view_ms(onnx, images, args.repeats)
        print(f"{size} px, batch {args.batch}: torch median {np.median(torch_ms):.1f} ms/view (p95 "
              f"{np.percentile(torch_ms, 95):.1f}), onnxruntime median {np.median(onnx_ms):.1f} ms/view (p95 "
              f"{np.percentile(onnx_ms, 95):.1f}); ratio {np.median(torch_ms) / np.median(onnx_ms):.1f}x; "
              f"max abs difference {difference:.1e}")


if __name__ == "__main__":
    main()
