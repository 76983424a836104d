"""Frozen-feature heads on the real damage photos: held-out AUROC of logistic heads on pooled features.

    .venv/bin/python benchmarks/bench_real_photo_heads.py

The seeded, stratified split of ``evaluate-images --split heldout --seed 0`` (25 % of each class held out) of
../shared/data/real-damage-photos (CC BY 4.0, not in the repo); EfficientNet-Lite0 at 224 px, whole photo as
the crop; features: our backbone's block-10 map pooled (mean and max, 224 values) and the full network's
1280-channel head pooled; L2 logistic regression at three strengths. Prints AUROCs; no assertions.
"""

import contextlib
import io
import time
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from damage_perception.core.backbone import backbone_weights_path, prepare_images
from damage_perception.core.crops import square_on_grey
from damage_perception.core.metrics import auroc
from damage_perception.data.loaders.mvtec import read_color
from damage_perception.tools.evaluate_images import photo_split

torch.set_num_threads(2)  # the CI machine's cores

sp = photo_split(Path(__file__).resolve().parents[2] / "shared" / "data" / "real-damage-photos", 0, 0.25)
with contextlib.redirect_stdout(io.StringIO()):
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=backbone_weights_path()).eval()


def feats(paths, S):
    A, B = [], []
    for i in range(0, len(paths), 16):
        c = np.stack([square_on_grey(read_color(p), S) for p in paths[i : i + 16]])
        x = prepare_images(c, np.ones(c.shape[:3], bool))
        with torch.no_grad():
            y = net._swish(net._bn0(net._conv_stem(x)))
            for k, b in enumerate(net._blocks):
                y = b(y)
                if k == 10:
                    t10 = y
            y = net._swish(net._bn1(net._conv_head(y)))
        A.append(torch.cat([t10.mean((2, 3)), t10.amax((2, 3))], 1))
        B.append(y.mean((2, 3)))
    return torch.cat(A).numpy(), torch.cat(B).numpy()


for S in (224,):
    t = time.time()
    d = {}
    for part in ("train", "heldout"):
        paths = sp[part]["damaged"] + sp[part]["intact"]
        y = np.r_[np.ones(len(sp[part]["damaged"])), np.zeros(len(sp[part]["intact"]))]
        d[part] = (feats(paths, S), y)
    for j, name in ((0, "b10 pooled"), (1, "head 1280")):
        for C in (0.01, 0.1, 1.0):
            sc = StandardScaler().fit(d["train"][0][j])
            m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(d["train"][0][j]), d["train"][1])
            s = m.decision_function(sc.transform(d["heldout"][0][j]))
            y = d["heldout"][1]
            print(S, name, C, f"heldout AUROC {auroc(s[y == 1], s[y == 0]):.3f}", flush=True)
    print("time", time.time() - t)
