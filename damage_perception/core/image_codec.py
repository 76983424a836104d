"""One codec for sensor_msgs/Image payloads, without ROS: encoding, size, step and bytes in, numpy out.

Both message worlds decode through it: rclpy messages (``ros/conversions.py``) and ``rosbags`` messages
(``data/loaders/ros_messages.py``) pass their fields here, so a live frame and the same frame read from a bag
give the same array.

The one rule for depth ("no reading"): a pixel is a reading only when it is finite and positive. NaN, +-inf,
negative and zero are all "no reading", and decoded depth holds NaN there (``16UC1``/``mono16`` millimetres:
0 is no reading, REP 118; ``32FC1`` metres). Everything downstream that looks at depth (back-projection,
segmentation, crops, the models' depth channels) tests pixels with :func:`valid_depth`, so a garbage value
that slipped past the codec is still no reading.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ImageDecodeError(ValueError):
    """Image fields that do not describe a decodable image; the message names the bad field."""


@dataclass(frozen=True)
class PixelFormat:
    """How one encoding lays out a pixel."""

    dtype: str      # numpy base type; byte order is added per message
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        return np.dtype(self.dtype).itemsize * self.channels


ENCODINGS: dict[str, PixelFormat] = {
    "rgb8": PixelFormat("u1", 3), "bgr8": PixelFormat("u1", 3),
    "rgba8": PixelFormat("u1", 4), "bgra8": PixelFormat("u1", 4),
    "mono8": PixelFormat("u1", 1), "8UC1": PixelFormat("u1", 1),
    "mono16": PixelFormat("u2", 1), "16UC1": PixelFormat("u2", 1),
    "32FC1": PixelFormat("f4", 1),
}
DEPTH_MM_ENCODINGS = ("16UC1", "mono16")
DEPTH_M_ENCODINGS = ("32FC1",)
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1")


def pixel_format(encoding: str) -> PixelFormat:
    """The layout of ``encoding``; ImageDecodeError naming the supported ones otherwise."""
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise ImageDecodeError(f"unsupported image encoding '{encoding}'; expected one of "
                               f"{', '.join(ENCODINGS)}") from None


def valid_depth(depth_m: np.ndarray) -> np.ndarray:
    """The one "is this a reading" rule: finite and > 0 (NaN, +-inf, negative and zero are not)."""
    depth = np.asarray(depth_m)
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > 0)


def clean_depth(depth_m: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """float32 copy of ``depth_m`` with every pixel that is not a reading set to ``fill`` (NaN by default)."""
    depth = np.asarray(depth_m, np.float32)
    return np.where(valid_depth(depth), depth, np.float32(fill)).astype(np.float32)


def decode_pixels(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False
                  ) -> np.ndarray:
    """The pixels as an (H, W) or (H, W, C) native-endian array (a copy); honours ``step`` and byte order."""
    spec = pixel_format(encoding)
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"image size must be positive, got width={width} height={height}")
    row_bytes = width * spec.bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(f"step {step} is smaller than width*bytes_per_pixel = {width}*{spec.bytes_per_pixel}"
                               f" = {row_bytes} for encoding '{encoding}'")
    buffer = data if isinstance(data, np.ndarray) else memoryview(bytes(data) if isinstance(data, list) else data)
    raw = np.frombuffer(buffer, dtype=np.uint8).reshape(-1)
    if raw.size < step * height:
        raise ImageDecodeError(f"data has {raw.size} bytes, expected step*height = {step}*{height} = "
                               f"{step * height}")
    rows = np.ascontiguousarray(raw[:step * height].reshape(height, step)[:, :row_bytes])
    pixels = rows.view(np.dtype((">" if is_bigendian else "<") + spec.dtype))
    pixels = pixels.astype(np.dtype(spec.dtype).newbyteorder("="), copy=True)
    return pixels.reshape((height, width) if spec.channels == 1 else (height, width, spec.channels))


def decode_color(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False
                 ) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an rgb8, bgr8, rgba8, bgra8 or mono8 image."""
    if pixel_format(encoding) and encoding not in COLOR_ENCODINGS:   # an unknown encoding is named as such
        raise ImageDecodeError(f"encoding '{encoding}' is not a colour image; expected rgb8, bgr8, rgba8, bgra8 "
                               "or mono8")
    pixels = decode_pixels(encoding, height, width, step, data, is_bigendian)
    if encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[:, :, :3])
    if encoding in ("mono8", "8UC1"):
        return np.repeat(pixels[:, :, None], 3, axis=2)
    return pixels


def decode_depth(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False
                 ) -> np.ndarray:
    """(H, W) float32 metres of a 16UC1/mono16 (mm) or 32FC1 (m) image, NaN where there is no reading."""
    if encoding not in DEPTH_MM_ENCODINGS + DEPTH_M_ENCODINGS:
        raise ImageDecodeError(f"encoding '{encoding}' is not a depth image; only 16UC1 (mm) and 32FC1 (m) are "
                               "depth encodings")
    pixels = decode_pixels(encoding, height, width, step, data, is_bigendian)
    if encoding in DEPTH_MM_ENCODINGS:
        return clean_depth(pixels.astype(np.float32) * np.float32(0.001))  # 0 mm stays 0 -> NaN
    return clean_depth(pixels)


def encode_pixels(array: np.ndarray, encoding: str) -> tuple[int, int, int, bytes]:
    """(height, width, step, data) of ``array`` in ``encoding``: little-endian, unpadded rows."""
    spec = pixel_format(encoding)
    array = np.asarray(array)
    expected_ndim = 2 if spec.channels == 1 else 3
    if array.ndim == 3 and spec.channels == 1 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != expected_ndim or (expected_ndim == 3 and array.shape[2] != spec.channels):
        raise ImageDecodeError(f"encoding '{encoding}' needs an array of shape (H, W"
                               f"{f', {spec.channels}' if spec.channels > 1 else ''}), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageDecodeError(f"image size must be positive, got shape {array.shape}")
    height, width = int(array.shape[0]), int(array.shape[1])
    data = np.ascontiguousarray(array, dtype=np.dtype(spec.dtype).newbyteorder("<")).tobytes()
    return height, width, width * spec.bytes_per_pixel, data


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """uint16 millimetres of a depth image in metres; 0 for no reading and beyond 65.535 m."""
    depth = np.asarray(depth_m, np.float64)
    mm = np.where(valid_depth(depth), np.round(np.where(valid_depth(depth), depth, 0.0) * 1000.0), 0.0)
    return np.where(mm <= 65535, mm, 0).astype(np.uint16)
