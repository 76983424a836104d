"""Training loops of the classifier head and of the learned comparator on cached backbone features (the
backbone is frozen, so its features are computed once per view and the heads train in minutes on a CPU)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from damage_perception.core.classifier import DamageHead, classifier_loss
from damage_perception.core.comparator import ComparatorHead, compared_cells


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
class Shard:
    """This process's part of a data-parallel run (``torch.distributed`` already initialised when
    ``world > 1``): every rank draws the same batch from the same seed and trains on its ``rank::world``
    slice; DDP averages the gradients, so the step is the one-process step up to BatchNorm statistics (each
    rank normalises its own slice), the loss's per-slice averaging and the order of float sums."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"   # "cuda:<local rank>" under NCCL


@dataclass(frozen=True)
class OptimiserSettings:
    """What the head's and the comparator's training share: AdamW with a cosine schedule over ``steps``,
    batches balanced between views that show damage and views that do not."""

    steps: int = 1200
    batch: int = 48
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    damaged_share: float = 0.5    # share of each batch drawn from views that show damage
    seed: int = 0


@dataclass(frozen=True)
class TrainSettings(OptimiserSettings):
    """The classifier head's training (``train_head``)."""

    checkpoint_every: int = 400


def train_head(views: TrainingViews, settings: TrainSettings = TrainSettings(),
               checkpoint_dir: Path | None = None, progress: bool = True,
               on_step: Callable[[int, float], None] | None = None, shard: Shard = Shard(),
               resume: bool = False) -> DamageHead:
    """Train a fresh head with Adam (cosine learning rate), batches balanced between views that show damage
    and views that do not; deterministic for a seed. Checkpoints go to ``checkpoint_dir/step_NNNNN.pt`` (from
    rank 0) with the optimiser's and the samplers' states: ``resume`` continues from the latest one exactly as
    the uninterrupted run would have. ``shard``: this process's part of a data-parallel run."""
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
    if settings.batch < shard.world:
        raise ValueError(f"a batch of {settings.batch} views cannot be split over {shard.world} processes")
    first = 1
    if resume and checkpoint_dir is not None and (latest := latest_checkpoint(checkpoint_dir)) is not None:
        first = _restore(latest, head, optimiser, schedule, rng) + 1
    head.to(shard.device)
    net = _data_parallel(head) if shard.world > 1 else head
    head.train()
    with tqdm(range(first, settings.steps + 1), unit="step", disable=not progress, dynamic_ncols=True,
              desc="training") as bar:
        for step in bar:
            n_damaged = int(round(settings.batch * settings.damaged_share))
            index = np.concatenate([rng.choice(damaged, n_damaged), rng.choice(clean, settings.batch - n_damaged)])
            index = torch.from_numpy(index[shard.rank::shard.world])
            logits = net(views.features[index].float().to(shard.device), views.depth[index].to(shard.device))
            loss = classifier_loss(logits, views.labels[index].to(shard.device), views.cells[index].to(shard.device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if on_step:
                on_step(step, loss.item())
            if checkpoint_dir is not None and step % settings.checkpoint_every == 0 and shard.rank == 0:
                _save_checkpoint(checkpoint_dir, step, head, optimiser, schedule, rng)
    return head.cpu().eval()


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The checkpoint of the highest step in ``checkpoint_dir``, None when there is none."""
    found = sorted(Path(checkpoint_dir).glob("step_*.pt"))
    return found[-1] if found else None


def _save_checkpoint(folder: Path, step: int, head: DamageHead, optimiser, schedule, rng) -> None:
    """Write atomically (a kill mid-write leaves the previous checkpoint the latest)."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".step_{step:05d}.pt.partial"
    torch.save({"step": step, "head": head.state_dict(), "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(), "sampler": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state()}, partial)
    partial.replace(folder / f"step_{step:05d}.pt")


def _restore(path: Path, head: DamageHead, optimiser, schedule, rng) -> int:
    """Load a checkpoint into the run's objects; returns its step."""
    saved = torch.load(path, weights_only=False)
    head.load_state_dict(saved["head"])
    optimiser.load_state_dict(saved["optimiser"])
    if "schedule" not in saved:
        raise ValueError(f"{path} predates resumable checkpoints (no sampler state): train afresh")
    schedule.load_state_dict(saved["schedule"])
    rng.bit_generator.state = saved["sampler"]
    torch.set_rng_state(saved["torch_rng"])
    return int(saved["step"])


def _data_parallel(head: DamageHead) -> torch.nn.Module:
    """``head`` under DistributedDataParallel. BatchNorm stays per rank (PyTorch synchronises it on GPUs only,
    and the same recipe should train alike on either); rank 0's running statistics are the ones kept."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(head)


@dataclass(frozen=True)
class ComparatorSettings(OptimiserSettings):
    """The learned comparator's training (``train_comparator``)."""

    steps: int = 1500
    batch: int = 64
    damaged_cell_weight: float = 4.0   # damaged cells are rare: their loss counts this much more


def train_comparator(query: np.ndarray, aligned: np.ndarray, maps: np.ndarray, labels: np.ndarray,
                     settings: ComparatorSettings = ComparatorSettings(), progress: bool = True,
                     on_step: Callable[[int, float], None] | None = None) -> ComparatorHead:
    """Train a fresh comparator on pairs: patches (N, h, w, D) of the views and of their aligned references,
    residual maps (N, h, w, M), soft cell labels (N, h, w). Binary cross-entropy over compared cells, batches
    balanced between views that show damage and views that do not (pristine items' views among them, with
    their printed artwork: that is what teaches the head that a change, not a look, is damage)."""
    from tqdm import tqdm

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    compared = compared_cells(maps)
    shows = ((labels > 0.5) & compared).reshape(len(labels), -1).any(axis=1)
    damaged, clean = np.flatnonzero(shows), np.flatnonzero(~shows)
    if len(damaged) == 0 or len(clean) == 0:
        raise ValueError(f"need views with and without damage, got {len(damaged)} and {len(clean)}")

    def channels_first(array: np.ndarray, index: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array[index], np.float32)).permute(0, 3, 1, 2)

    head = ComparatorHead(query.shape[-1])
    sample = rng.choice(len(labels), min(len(labels), 512), replace=False)
    head.fit_standardisation(*(channels_first(array, sample) for array in (query, aligned, maps)))
    optimiser = torch.optim.AdamW(head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.steps)
    head.train()
    with tqdm(range(1, settings.steps + 1), unit="step", disable=not progress, dynamic_ncols=True,
              desc="comparator") as bar:
        for step in bar:
            n_damaged = int(round(settings.batch * settings.damaged_share))
            index = np.concatenate([rng.choice(damaged, n_damaged), rng.choice(clean, settings.batch - n_damaged)])
            logits = head(channels_first(query, index), channels_first(aligned, index), channels_first(maps, index))
            target = torch.from_numpy(labels[index])
            weight = torch.from_numpy(compared[index]).float() * (1.0 + (settings.damaged_cell_weight - 1.0) * target)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
                    * weight).sum() / weight.sum().clamp_min(1.0)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if on_step:
                on_step(step, loss.item())
    return head.eval()
