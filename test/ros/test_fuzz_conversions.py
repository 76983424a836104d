"""Property-based: malformed Image / CameraInfo messages never crash the conversions (hypothesis).

Every call either returns a well-formed array or raises the documented ConversionError (a ValueError);
nothing else, and nothing slow; depth with mixed invalid pixels decodes by the one no-reading rule, and an
empty frame_id is seen as missing. 7,500 generated messages in all, deterministic (``derandomize=True``).
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from damage_perception.ros.camera_input import missing_frame_id
from damage_perception.ros.conversions import (
    ENCODINGS,
    ConversionError,
    array_to_image,
    camera_info_to_intrinsics,
    color_to_rgb,
    depth_to_meters,
    image_to_array,
)

# Garbage in on purpose: numpy's overflow / invalid-value warnings are expected, crashes are not.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FUZZ = settings(max_examples=1500, deadline=5000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
UINT32 = 2**32 - 1
encodings = st.one_of(st.sampled_from(sorted(ENCODINGS) + ["yuv422", "64FC1", "16SC1", "RGB8", "", "32FC2"]),
                      st.text(max_size=12))
sizes = st.one_of(st.integers(0, 12), st.sampled_from([UINT32, 2**31, 100_000]))


@st.composite
def images(draw) -> Image:
    """An Image whose fields may disagree: size, step and data length drawn independently."""
    height, width = draw(sizes), draw(sizes)
    encoding = draw(encodings)
    bpp = ENCODINGS[encoding].bytes_per_pixel if encoding in ENCODINGS else 1
    plausible_step = min(width * bpp, UINT32)
    step = draw(st.one_of(st.just(plausible_step), st.integers(0, 64), st.sampled_from([UINT32, plausible_step + 3])))
    rows = height if height <= 12 else draw(st.integers(0, 3))
    length = draw(st.one_of(st.just(min(step * rows, 4096)), st.integers(0, 600)))
    data = draw(st.binary(min_size=length, max_size=length))
    return Image(height=height, width=width, encoding=encoding, step=step,
                 is_bigendian=draw(st.integers(0, 1)), data=data)


def _check_image(converted: np.ndarray, msg: Image) -> None:
    assert converted.shape[:2] == (msg.height, msg.width)
    assert converted.flags.owndata or converted.base is not None


@FUZZ
@given(images())
def test_image_to_array_returns_or_raises_conversion_error(msg):
    with contextlib.suppress(ConversionError):
        _check_image(image_to_array(msg), msg)


@FUZZ
@given(images())
def test_depth_to_meters_gives_positive_metres_or_nan(msg):
    try:
        depth = depth_to_meters(msg)
    except ConversionError:
        return
    _check_image(depth, msg)
    assert depth.dtype == np.float32 and depth.ndim == 2
    assert not np.any(depth[np.isfinite(depth)] <= 0)


@FUZZ
@given(images())
def test_color_to_rgb_gives_three_channels(msg):
    try:
        rgb = color_to_rgb(msg)
    except ConversionError:
        return
    assert rgb.shape == (msg.height, msg.width, 3) and rgb.dtype == np.uint8


anything = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(FUZZ, max_examples=1500)
@given(width=st.integers(0, UINT32), height=st.integers(0, UINT32),
       k=st.lists(st.one_of(anything, st.sampled_from([0.0, -1.0, 1e-300, 1e300, math.nan, math.inf])),
                  min_size=9, max_size=9))
def test_camera_info_gives_usable_intrinsics_or_raises(width, height, k):
    msg = CameraInfo(width=width, height=height, k=k)
    try:
        intrinsics = camera_info_to_intrinsics(msg)
    except ConversionError:
        return
    assert intrinsics.width > 0 and intrinsics.height > 0
    assert all(math.isfinite(v) for v in (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy))
    assert intrinsics.fx > 0 and intrinsics.fy > 0


invalid_depth = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, -1.0, -3e38, -1e-30])
plausible_depth = st.floats(float(np.float32(1e-3)), 10.0, width=32)


@FUZZ
@given(pixels=arrays(np.float32, st.tuples(st.integers(1, 16), st.integers(1, 16)),
                     elements=st.one_of(plausible_depth, invalid_depth)),
       frame_id=st.one_of(st.just(""), st.sampled_from([" ", "\t", "camera_color_optical_frame"]), st.text(max_size=8)))
def test_mixed_invalid_depth_pixels_are_nan_and_nothing_else_changes(pixels, frame_id):
    """One rule: a 32FC1 pixel is a reading iff finite and > 0; every other pixel is kept to the bit. A frame
    with an empty (or blank) frame_id is one the camera input drops."""
    msg = array_to_image(pixels, "32FC1", Header(frame_id=frame_id))
    depth = depth_to_meters(msg)
    valid = np.isfinite(pixels) & (pixels > 0)
    np.testing.assert_array_equal(np.isnan(depth), ~valid)
    np.testing.assert_array_equal(depth[valid], pixels[valid])
    millimetres = depth_to_meters(array_to_image(np.where(valid, 1234, 0).astype(np.uint16), "16UC1"))
    np.testing.assert_array_equal(np.isnan(millimetres), ~valid)   # 16UC1: 0 is the only no-reading value
    assert missing_frame_id(msg) == (frame_id.strip() == "")
