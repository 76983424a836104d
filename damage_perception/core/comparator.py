"""A learned comparator: per cell, how likely the item changed there against its aligned reference.

The registered comparison (``core.registered_comparison``) carries a view's pixels into its pose-matched
reference views and gives, per cell of the backbone grid, the view's features, the aligned reference's
features and depth/colour residuals. Its hand-made summaries (largest regional share, mean of the worst
cells) treat every residual alike: a shading edge, a 2 px misregistration and a tear all raise them. The
comparator is a small convolutional head over those per-cell inputs, trained on query/reference pairs of
training studies against their per-pixel damage masks. It sees the reference beside the view, so it learns
"what changed" rather than "what looks damaged": printed artwork the reference shows too cancels out, and
it carries to SKUs it never saw. Its view score is the mean of the largest cell log-odds (``view_score``).

Plain numpy/torch; no ROS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from damage_perception.core.registered_comparison import (
    Correspondence,
    cell_means,
    cell_residuals,
    neighbourhood_distance,
)

# Per-cell residual maps the comparator reads beside the two feature vectors (``residual_maps`` order).
MAP_NAMES = ("feature_distance", "missing", "extra", "beside", "colour", "matched", "compared", "item")
TOP_CELLS = 3           # the view score averages this many largest cell log-odds
LABEL_FULL_SHARE = 0.25  # a cell with this share of damaged pixels (or more) is labelled fully damaged


def residual_maps(correspondence: Correspondence, query_patches: np.ndarray, aligned_patches: np.ndarray,
                  cells: np.ndarray, feature_distance: np.ndarray | None = None,
                  per_cell: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(h, w, len(MAP_NAMES)) float32 per-cell residuals of one view against its aligned reference
    (``feature_distance``: their ``neighbourhood_distance``, ``per_cell``: the ``cell_residuals``, when the
    caller has them already)."""
    per_cell = per_cell if per_cell is not None else cell_residuals(correspondence, cells.shape[0])
    if feature_distance is None:
        feature_distance = neighbourhood_distance(query_patches, aligned_patches)
    maps = [feature_distance] + [per_cell[name] for name in MAP_NAMES[1:-1]] + [cells.astype(np.float64)]
    return np.stack(maps, axis=-1).astype(np.float32)


def compared_cells(maps: np.ndarray) -> np.ndarray:
    """(…, h, w) bool: cells the comparison looked at (some compared pixels), from ``residual_maps`` output."""
    return maps[..., MAP_NAMES.index("compared")] > 0


def cell_labels(damage: np.ndarray, grid: int) -> np.ndarray:
    """(h, w) float32 soft targets from a crop's damage labels (S, S; 0 = none): the damaged share of each
    cell, saturating at LABEL_FULL_SHARE (a tear a few pixels wide is the cell's damage, not a fifth of it)."""
    share = cell_means((damage > 0).astype(np.float64), np.ones(damage.shape), grid)
    return np.clip(share / LABEL_FULL_SHARE, 0.0, 1.0).astype(np.float32)


class ComparatorHead(nn.Module):
    """Per-cell change log-odds (B, h, w) from the view's features, the aligned reference's (B, D, h, w each)
    and the residual maps (B, len(MAP_NAMES), h, w). Inputs are standardised with statistics of the
    training data (buffers, saved with the weights)."""

    def __init__(self, feature_dim: int, hidden: int = 32) -> None:
        super().__init__()
        channels = 3 * feature_dim + len(MAP_NAMES)
        self.feature_dim = feature_dim
        self.register_buffer("input_mean", torch.zeros(channels))
        self.register_buffer("input_std", torch.ones(channels))
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, 1, 1))

    def inputs(self, query: torch.Tensor, aligned: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """The standardised input stack (B, C, h, w): view, reference, their absolute difference, maps."""
        stacked = torch.cat([query, aligned, (query - aligned).abs(), maps], dim=1)
        return (stacked - self.input_mean[None, :, None, None]) / self.input_std[None, :, None, None]

    def fit_standardisation(self, query: torch.Tensor, aligned: torch.Tensor, maps: torch.Tensor) -> None:
        """Set the input statistics from a training batch (B, ·, h, w)."""
        stacked = torch.cat([query, aligned, (query - aligned).abs(), maps], dim=1)
        flat = stacked.permute(1, 0, 2, 3).reshape(stacked.shape[1], -1)
        self.input_mean.copy_(flat.mean(dim=1))
        self.input_std.copy_(flat.std(dim=1).clamp_min(1e-4))

    def forward(self, query: torch.Tensor, aligned: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        return self.net(self.inputs(query, aligned, maps))[:, 0]


def view_score(cell_logits: np.ndarray, compared: np.ndarray, count: int = TOP_CELLS) -> float:
    """A view's comparator score: the mean of its ``count`` largest cell log-odds among compared cells."""
    values = cell_logits[compared]
    if values.size == 0:
        return float(LOW_LOGIT)
    return float(np.sort(values)[-count:].mean())


LOW_LOGIT = -10.0   # the score of a view with no compared cell


@dataclass
class ComparatorOutput:
    """What the comparator says about one view."""

    score: float              # ``view_score`` of the cell log-odds
    cell_logits: np.ndarray   # (h, w) per-cell change log-odds (LOW_LOGIT where not compared)


def compare(head: ComparatorHead, query_patches: np.ndarray, aligned_patches: np.ndarray,
            maps: np.ndarray, left_out: np.ndarray | None = None) -> list[ComparatorOutput]:
    """Run the comparator on a batch: patches (B, h, w, D), maps (B, h, w, len(MAP_NAMES)); ``left_out``
    (B, h, w) bool: cells not to judge (``registered_comparison.hidden_cells``), treated as not compared."""
    def channels_first(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, np.float32)).permute(0, 3, 1, 2)

    with torch.no_grad():
        logits = head(channels_first(query_patches), channels_first(aligned_patches), channels_first(maps)).numpy()
    compared = compared_cells(maps)
    if left_out is not None:
        compared = compared & ~left_out
    outputs = []
    for k in range(len(logits)):
        cell_logits = np.where(compared[k], logits[k], LOW_LOGIT).astype(np.float32)
        outputs.append(ComparatorOutput(view_score(logits[k], compared[k]), cell_logits))
    return outputs
