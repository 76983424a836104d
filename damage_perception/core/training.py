"""Training loop of the classifier head on cached backbone features (the backbone is frozen, so its
features are computed once per view and the head trains in minutes on a CPU)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from damage_perception.core.classifier import DamageHead, classifier_loss


@dataclass
class TrainingViews:
    """Cached inputs and labels of the training views."""

    features: torch.Tensor   # (N, 152, h, w) float16
    depth: torch.Tensor      # (N, 4, h, w)
    cells: torch.Tensor      # (N, h, w) bool
    labels: torch.Tensor     # (N, h, w) int64 cell classes

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shows_damage(self) -> np.ndarray:
        return ((self.labels > 0) & self.cells).flatten(1).any(dim=1).numpy()


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1200
    batch: int = 48
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    damaged_share: float = 0.5    # share of each batch drawn from views that show damage
    seed: int = 0
    checkpoint_every: int = 400


def train_head(views: TrainingViews, settings: TrainSettings = TrainSettings(),
               checkpoint_dir: Path | None = None, progress: bool = True,
               on_step: Callable[[int, float], None] | None = None) -> DamageHead:
    """Train a fresh head with Adam (cosine learning rate), batches balanced between views that show damage
    and views that do not; deterministic for a seed. Checkpoints go to ``checkpoint_dir/step_NNNNN.pt``."""
    from tqdm import tqdm

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    head = DamageHead()
    optimiser = torch.optim.AdamW(head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.steps)
    shows = views.shows_damage
    damaged, clean = np.flatnonzero(shows), np.flatnonzero(~shows)
    if len(damaged) == 0 or len(clean) == 0:
        raise ValueError(f"need views with and without damage, got {len(damaged)} and {len(clean)}")
    head.train()
    with tqdm(range(1, settings.steps + 1), unit="step", disable=not progress, dynamic_ncols=True,
              desc="training") as bar:
        for step in bar:
            n_damaged = int(round(settings.batch * settings.damaged_share))
            index = np.concatenate([rng.choice(damaged, n_damaged), rng.choice(clean, settings.batch - n_damaged)])
            index = torch.from_numpy(index)
            logits = head(views.features[index].float(), views.depth[index])
            loss = classifier_loss(logits, views.labels[index], views.cells[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if on_step:
                on_step(step, loss.item())
            if checkpoint_dir is not None and step % settings.checkpoint_every == 0:
                checkpoint_dir.mkdir(parents=True, exist_ok=True)
                torch.save({"step": step, "head": head.state_dict(), "optimiser": optimiser.state_dict()},
                           checkpoint_dir / f"step_{step:05d}.pt")
    return head.eval()
