import numpy as np
import pytest

from damage_perception.core.crops import CROP_MARGIN, crop_box, crop_item


def mask_with(shape, rows, cols):
    mask = np.zeros(shape, bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def test_box_is_square_centred_and_grown_by_the_margin():
    mask = mask_with((200, 300), (50, 90), (100, 120))  # 40 rows x 20 cols
    row0, row1, col0, col1 = crop_box(mask)
    assert row1 - row0 == col1 - col0 == round(40 * (1 + 2 * CROP_MARGIN))
    assert (row0 + row1) / 2 == pytest.approx(70, abs=0.5) and (col0 + col1) / 2 == pytest.approx(110, abs=0.5)
    assert row0 <= 50 - 4 and row1 >= 90 + 4  # at least ~12 % of 40 px on each side of the long axis


def test_box_past_the_image_edge_is_zero_padded():
    color = np.full((100, 100, 3), 200, np.uint8)
    depth = np.full((100, 100), 0.5, np.float32)
    mask = mask_with((100, 100), (0, 40), (0, 40))  # item in the corner: the box starts above and left
    crop = crop_item(color, depth, mask, size=50)
    row0, row1, col0, col1 = crop.box
    assert row0 < 0 and col0 < 0 and row1 - row0 == 50
    assert crop.color.shape == (50, 50, 3) and crop.depth_m.shape == (50, 50) and crop.mask.shape == (50, 50)
    pad = -row0
    assert np.all(crop.color[:pad] == 0) and np.all(crop.color[:, :pad] == 0)
    assert np.all(crop.depth_m[:pad] == 0) and not crop.mask[:pad].any()
    assert np.all(crop.color[pad + 1:30, pad + 1:30] == 200)
    assert np.all(crop.depth_m[pad:30, pad:30] == np.float32(0.5))


def test_depth_and_mask_use_nearest_interpolation():
    yy, xx = np.mgrid[:300, :300]
    depth = np.where((xx // 3 + yy // 3) % 2 == 0, 0.4, 0.9).astype(np.float32)  # fine checkerboard
    depth[::7, ::5] = np.nan  # no readings
    mask = ((xx // 2 + yy // 2) % 2 == 0) & (yy > 20) & (yy < 280) & (xx > 20) & (xx < 280)
    crop = crop_item(np.zeros((300, 300, 3), np.uint8), depth, mask, size=64)  # ~5x down-sampling
    assert set(np.unique(crop.depth_m).tolist()) <= {0.0, np.float32(0.4).item(), np.float32(0.9).item()}
    assert {np.float32(0.4).item(), np.float32(0.9).item()} <= set(np.unique(crop.depth_m).tolist())
    assert crop.mask.dtype == bool and 0 < crop.mask.mean() < 1
    assert crop.depth_m.dtype == np.float32 and not np.isnan(crop.depth_m).any()


def test_colour_is_area_averaged():
    yy, xx = np.mgrid[:200, :200]
    color = np.repeat(np.where((xx + yy) % 2 == 0, 0, 200).astype(np.uint8)[..., None], 3, axis=2)
    crop = crop_item(color, np.ones((200, 200), np.float32), mask_with((200, 200), (30, 170), (30, 170)), size=40)
    assert np.abs(crop.color[10:30, 10:30].astype(int) - 100).max() <= 2


def test_empty_mask_raises():
    with pytest.raises(ValueError, match="empty mask"):
        crop_item(np.zeros((50, 50, 3), np.uint8), np.zeros((50, 50), np.float32), np.zeros((50, 50), bool))
