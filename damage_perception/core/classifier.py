"""Supervised damage classifier: a small convolutional head on the frozen backbone's feature cells.

Each stride-8 cell of the item crop is classified as undamaged or one of the damage types (dense labels
come from the simulator's per-pixel damage masks, so a few hundred items teach it a lot); the view's damage
logit is the largest cell's, the per-cell damage probability is the heatmap. Inputs per cell: the 152
backbone channels and 4 depth cues (``backbone.depth_channels``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from damage_perception.core.backbone import FEATURE_CHANNELS, FEATURE_STRIDE
from damage_perception.core.damage_types import DAMAGE_LABELS

CLASSES = DAMAGE_LABELS   # class 0: no damage
DEPTH_CHANNELS = 4
MIN_CELL_DAMAGE = 0.15   # share of a cell's pixels that must be damaged for the cell to count as damaged


class DamageHead(nn.Module):
    """Per-cell class logits (B, 7, h, w) from backbone features (B, 152, h, w) and depth cues (B, 4, h, w)."""

    def __init__(self, hidden: int = 96) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(FEATURE_CHANNELS + DEPTH_CHANNELS, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden // 2, 3, padding=1), nn.BatchNorm2d(hidden // 2), nn.ReLU(),
            nn.Conv2d(hidden // 2, len(CLASSES), 1))

    def forward(self, features: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([features, depth], dim=1))


def damage_logits(cell_logits: torch.Tensor) -> torch.Tensor:
    """(B, h, w) log-odds that a cell is damaged (any type) against undamaged."""
    return torch.logsumexp(cell_logits[:, 1:], dim=1) - cell_logits[:, 0]


def view_logit(cell_logits: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """(B,) the view's damage log-odds: its most damaged-looking cell among ``cells`` (B, h, w bool)."""
    logits = damage_logits(cell_logits).masked_fill(~cells, -30.0)
    return logits.flatten(1).max(dim=1).values


@dataclass
class ClassifierOutput:
    """What the classifier says about one view."""

    logit: float                    # log-odds of damage in the view
    type_probabilities: dict[str, float]
    heatmap: np.ndarray             # (h, w) per-cell damage probability (0 outside the item)

    @property
    def probability(self) -> float:
        return float(1.0 / (1.0 + np.exp(-self.logit)))


def classifier_outputs(cell_logits: torch.Tensor, cells: torch.Tensor) -> list[ClassifierOutput]:
    """Per-view outputs of a batch: view logit, per-type probability (the largest over the item's cells),
    heatmap."""
    with torch.no_grad():
        probabilities = torch.softmax(cell_logits, dim=1) * cells[:, None]
        heatmaps = (1.0 - probabilities[:, 0]) * cells
        logits = view_logit(cell_logits, cells)
        per_type = probabilities[:, 1:].flatten(2).max(dim=2).values
    return [ClassifierOutput(float(logits[k]), {name: float(per_type[k, i]) for i, name in enumerate(CLASSES[1:])},
                             heatmaps[k].numpy()) for k in range(len(cell_logits))]


def cell_labels(damage_maps: np.ndarray, stride: int = FEATURE_STRIDE) -> np.ndarray:
    """(B, h, w) int64 cell class: the commonest damage label of a cell with at least MIN_CELL_DAMAGE of its
    pixels damaged, else 0."""
    batch, size, _ = damage_maps.shape
    cells = damage_maps.reshape(batch, size // stride, stride, size // stride, stride).transpose(0, 1, 3, 2, 4)
    cells = cells.reshape(batch, size // stride, size // stride, stride * stride)
    counts = np.stack([(cells == c).sum(axis=-1) for c in range(len(CLASSES))], axis=-1)
    damaged = counts[..., 1:].sum(axis=-1) >= MIN_CELL_DAMAGE * stride * stride
    return np.where(damaged, counts[..., 1:].argmax(axis=-1) + 1, 0).astype(np.int64)


def classifier_loss(cell_logits: torch.Tensor, labels: torch.Tensor, cells: torch.Tensor,
                    damage_weight: float = 4.0) -> torch.Tensor:
    """Cell cross-entropy inside the item (damaged cells weighted up: they are rare) plus a view-level
    binary cross-entropy on the pooled logit (does the view show damage)."""
    weights = torch.ones(len(CLASSES))
    weights[1:] = damage_weight
    per_cell = F.cross_entropy(cell_logits, labels, weight=weights, reduction="none")
    cell_term = (per_cell * cells).sum() / cells.sum().clamp(min=1)
    shows = ((labels > 0) & cells).flatten(1).any(dim=1).float()
    view_term = F.binary_cross_entropy_with_logits(view_logit(cell_logits, cells), shows)
    return cell_term + view_term
