"""Gallery anomaly alone, both scorings side by side: item AUROC (largest view score) on a rendered study.

    .venv/bin/python benchmarks/bench_gallery_scoring.py out/studies/fresh9191

Each SKU gallery is built from the study gallery episode with the shipped model backbone; each item views
are scored with `top_mean` and `patchcore` (core/gallery.py). Prints AUROCs; no assertions.
"""

import sys

import numpy as np
import torch

from damage_perception.core.damage_model import DamageModel
from damage_perception.core.gallery import build_gallery, score_view
from damage_perception.core.metrics import auroc
from damage_perception.data.study import Study

torch.set_num_threads(2)  # the CI machine's cores

st = Study(sys.argv[1])
m = DamageModel.load("damage_perception/models/damage_model.pt")
gal = {}
res = {"top_mean": [], "patchcore": []}
lab = []
for e in st.entries:
    ep = st.load(e)
    f = ep.found
    if not f.any():
        continue
    b = m.featurize(ep.color[f], ep.mask[f], ep.depth_m[f])
    if e["role"] == "gallery":
        gal[e["sku"]] = build_gallery(e["sku"], b.patches, b.cells, ep.angle[f], [])
        continue
    g = gal[e["sku"]]
    lab.append(e["damage"] != "pristine")
    for s in res:
        res[s].append(
            max(score_view(g, b.patches[k], b.cells[k], float(ep.angle[f][k]), s).score for k in range(len(b.patches)))
        )
lab = np.array(lab)
for s, v in res.items():
    v = np.array(v)
    print(s, f"anomaly-alone item AUROC {auroc(v[lab], v[~lab]):.3f}", len(lab))
