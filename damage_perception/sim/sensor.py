"""RGB-D sensor model (RealSense-D435-like): depth noise, dropouts, mm quantisation; colour noise and jitter.

Pure functions of their inputs and a ``numpy.random.Generator``: the same generator state gives the same
images. Depth arrays are metres, 0.0 = no reading.

Per frame the colour model jitters exposure and white balance a little (``exposure_jitter``,
``white_balance_jitter``); per episode ``ColorModel.jittered(rng)`` draws the camera's exposure and white-balance
setting (``exposure``, ``white_balance``). Flying pixels (``DepthModel.flying_pixel_rate``): at depth
discontinuities a share of the pixels on both sides reads a depth between the foreground and the background
(mixed pixels of ToF / smeared stereo matches). Off (0) by default; ``FLYING_PIXEL_RATE`` is a realistic value.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class DepthModel:
    """Parameters of the depth sensor model."""

    sigma_base: float = 0.0007       # noise std (m) = sigma_base + sigma_quadratic * z^2
    sigma_quadratic: float = 0.0015
    grazing_cos: float = 0.25        # dropout probability rises as |cos(incidence)| falls below this
    edge_jump: float = 0.02          # depth discontinuity (m) that makes edge dropouts
    edge_drop_far: float = 0.85      # dropout probability on the far side of a discontinuity
    edge_drop_near: float = 0.3      # ... and on the near side
    speckle: float = 0.002           # probability of a random hole per pixel
    min_range: float = 0.1
    max_range: float = 3.0
    quantum: float = 0.001           # 16UC1 drivers report millimetres
    flying_pixel_rate: float = 0.0   # share of pixels next to a discontinuity that read an in-between depth
    flying_mix: tuple[float, float] = (0.1, 0.9)  # range of the foreground-to-background mixing fraction


FLYING_PIXEL_RATE = 0.3  # plausible for a D435 / ToF without edge filtering (an estimate, not a calibration)


@dataclass(frozen=True)
class ColorModel:
    """Parameters of the colour sensor model (values in 0..1 before conversion to uint8)."""

    read_noise: float = 0.006        # gaussian std independent of signal
    shot_noise: float = 0.012        # std grows with sqrt(signal)
    exposure_jitter: float = 0.03    # std of a global gain per frame
    white_balance_jitter: float = 0.015  # std of a per-channel gain per frame
    exposure: float = 1.0            # per-episode global gain (camera exposure setting)
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-episode RGB gains (white-balance setting)

    def jittered(self, rng: np.random.Generator, exposure_stops: float = 0.35, temperature: float = 0.08,
                 tint: float = 0.03) -> ColorModel:
        """A copy with an episode's exposure (2 ** U(-stops, +stops)) and white balance: red and blue gains
        move oppositely by up to +-``temperature`` (colour temperature), green by up to +-``tint``. Always draws
        three values from ``rng``."""
        u = rng.uniform(-1.0, 1.0, 3)
        gains = (1.0 + temperature * u[1], 1.0 + tint * u[2], 1.0 - temperature * u[1])
        return replace(self, exposure=float(self.exposure * 2.0 ** (exposure_stops * u[0])),
                       white_balance=tuple(float(w * g) for w, g in zip(self.white_balance, gains)))


def depth_sigma(depth: np.ndarray, model: DepthModel = DepthModel()) -> np.ndarray:
    """Noise std (m) at each depth."""
    return model.sigma_base + model.sigma_quadratic * np.square(depth)


def grazing_dropout_probability(cos_incidence: np.ndarray, model: DepthModel = DepthModel()) -> np.ndarray:
    """Dropout probability from |cos| of the angle between the ray and the surface normal."""
    p = np.abs(np.asarray(cos_incidence, np.float32)) * np.float32(-1.0 / model.grazing_cos)
    p += np.float32(1.0)
    return np.maximum(p, np.float32(0.0), out=p)


def edge_dropout_probability(depth: np.ndarray, model: DepthModel = DepthModel()) -> np.ndarray:
    """Dropout probability next to depth discontinuities: high on the far side, lower on the near side."""
    far = np.zeros(depth.shape, bool)
    near = np.zeros(depth.shape, bool)
    valid = depth > 0
    for axis in (0, 1):
        a = [slice(None)] * 2
        b = [slice(None)] * 2
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        a, b = tuple(a), tuple(b)
        jump = depth[b] - depth[a]
        both = valid[a] & valid[b]
        b_far = both & (jump > model.edge_jump)
        a_far = both & (jump < -model.edge_jump)
        far[b] |= b_far
        far[a] |= a_far
        near[a] |= b_far
        near[b] |= a_far
    p = np.where(far, model.edge_drop_far, 0.0)
    return np.maximum(p, np.where(near, model.edge_drop_near, 0.0)).astype(np.float32)


@lru_cache(maxsize=1)
def _gaussian_bank(size: int = 1 << 22) -> np.ndarray:
    """A fixed pool of standard-normal float32 samples (drawing fresh ones costs ~10 ms per colour frame)."""
    return np.random.default_rng(20240611).standard_normal(size, dtype=np.float32)


def gaussian_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Standard-normal float32 noise of ``shape``: a random window of a fixed pool, chosen by ``rng``.

    Windows of consecutive frames are independent offsets into a pool several frames long, so the noise
    looks fresh each frame while costing no random draws per pixel. Returns a read-only view.
    """
    bank = _gaussian_bank()
    n = int(np.prod(shape))
    if n > len(bank) // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, len(bank) - n))
    return bank[start:start + n].reshape(shape)


def edge_other_side(depth: np.ndarray, model: DepthModel = DepthModel()) -> np.ndarray:
    """Per pixel, the depth of its 4-neighbour across the largest discontinuity (> edge_jump, both valid), 0 where
    the pixel is at no discontinuity."""
    other = np.zeros(depth.shape, np.float32)
    best = np.zeros(depth.shape, np.float32)
    valid = depth > 0
    for axis in (0, 1):
        for first, second in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
            a = [slice(None)] * 2
            b = [slice(None)] * 2
            a[axis], b[axis] = first, second
            a, b = tuple(a), tuple(b)
            jump = np.abs(depth[b] - depth[a])
            better = valid[a] & valid[b] & (jump > model.edge_jump) & (jump > best[a])
            best[a] = np.where(better, jump, best[a])
            other[a] = np.where(better, depth[b], other[a])
    return other


def flying_pixels(depth: np.ndarray, rng: np.random.Generator,
                  model: DepthModel = DepthModel()) -> tuple[np.ndarray, np.ndarray]:
    """(mask, depth) of flying pixels: each pixel at a discontinuity flies with probability
    ``flying_pixel_rate`` and reads depth + f * (other side - depth), f uniform in ``flying_mix``; the
    mixture is strictly between the two sides. Draws only per candidate pixel (none if the rate is 0)."""
    depth = np.asarray(depth, np.float32)
    mask = np.zeros(depth.shape, bool)
    mixed = depth.copy()
    if model.flying_pixel_rate <= 0:
        return mask, mixed
    other = edge_other_side(depth, model)
    candidates = np.flatnonzero(other)
    flies = candidates[rng.random(len(candidates)) < model.flying_pixel_rate]
    fraction = rng.uniform(*model.flying_mix, len(flies)).astype(np.float32)
    flat, far = mixed.reshape(-1), other.reshape(-1)
    flat[flies] += fraction * (far[flies] - flat[flies])
    mask.reshape(-1)[flies] = True
    return mask, mixed


def apply_depth_model(depth_clean: np.ndarray, cos_incidence: np.ndarray, rng: np.random.Generator,
                      model: DepthModel = DepthModel()) -> np.ndarray:
    """Noisy, dropped-out, quantised float32 depth (m) from clean depth and per-pixel incidence cosines.

    With ``flying_pixel_rate`` > 0, flying pixels (see ``flying_pixels``) replace the clean depth before noise
    and are exempt from edge and grazing dropouts (they are the sensor's reading at the edge)."""
    depth = np.asarray(depth_clean, np.float32)
    noise = gaussian_noise(depth.shape, rng)
    uniform = rng.random(depth.shape, dtype=np.float32)
    flying = None
    if model.flying_pixel_rate > 0:
        flying, measured = flying_pixels(depth, rng, model)
        noisy = measured + noise * depth_sigma(measured, model).astype(np.float32)
    else:
        noisy = depth + noise * depth_sigma(depth, model).astype(np.float32)
    keep = 1.0 - grazing_dropout_probability(cos_incidence, model).astype(np.float32)
    keep *= 1.0 - edge_dropout_probability(depth, model)
    if flying is not None:
        keep[flying] = 1.0
    keep *= np.float32(1.0 - model.speckle)
    valid = (depth > 0) & (uniform < keep) & (noisy >= model.min_range) & (noisy <= model.max_range)
    quantised = np.round(noisy * np.float32(1.0 / model.quantum)) * np.float32(model.quantum)
    return np.where(valid, quantised, np.float32(0.0))


def apply_color_model(radiance: np.ndarray, rng: np.random.Generator, model: ColorModel = ColorModel()) -> np.ndarray:
    """uint8 RGB from radiance in 0..1: the episode's exposure and white balance times per-frame jitter of both, then
    pixel noise with
    std read_noise + shot_noise * sqrt(signal) (in 0..1 units). In-place float32 arithmetic for speed."""
    gain = ((1.0 + model.exposure_jitter * rng.standard_normal()) *
            (1.0 + model.white_balance_jitter * rng.standard_normal(3)))
    if model.exposure != 1.0 or tuple(model.white_balance) != (1.0, 1.0, 1.0):
        gain = gain * (model.exposure * np.asarray(model.white_balance, float))
    gain = gain.astype(np.float32)
    signal = np.asarray(radiance, np.float32) * (gain * np.float32(255.0))
    np.maximum(signal, 0.0, out=signal)
    sigma = np.sqrt(signal)
    sigma *= np.float32(model.shot_noise * np.sqrt(255.0))
    sigma += np.float32(model.read_noise * 255.0)
    sigma *= gaussian_noise(signal.shape, rng)
    signal += sigma
    signal += np.float32(0.5)
    np.clip(signal, 0.0, 255.0, out=signal)
    return signal.astype(np.uint8)
