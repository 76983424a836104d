"""visualization.drawing: heat maps in their box, outlines and text drawn on copies of RGB arrays."""
from __future__ import annotations

import numpy as np

from damage_perception.visualization.drawing import annotated_image, heat_colors


def _gray(height=120, width=160):
    return np.full((height, width, 3), 90, np.uint8)


def test_annotated_image_heat_inside_box_only():
    color = _gray()
    heat = np.ones((10, 10))
    box = (60, 100, 80, 140)
    out = annotated_image(color, None, heat, box, [])
    inside = out[box[0]:box[1], box[2]:box[3]]
    expected = np.round(0.45 * 90 + 0.55 * heat_colors(np.ones((1, 1)))[0, 0]).astype(np.uint8)
    assert (inside == expected).all()
    outside = np.ones(color.shape[:2], bool)
    outside[box[0]:box[1], box[2]:box[3]] = False
    assert (out[outside] == 90).all()
    assert out.dtype == np.uint8 and out.shape == color.shape
    assert (color == 90).all()  # the input is not drawn on


def test_annotated_image_heat_below_threshold_is_not_drawn():
    heat = np.zeros((20, 20))
    heat[10:, :] = 1.0   # only the lower half of the box is hot
    out = annotated_image(_gray(), None, heat, (0, 40, 0, 40), [])
    assert (out[2:18, :40] == 90).all()
    assert (out[22:40, :40] != 90).any(axis=-1).all()


def test_annotated_image_clips_a_box_leaving_the_image():
    heat = np.zeros((10, 10))
    heat[:, :5] = 1.0   # left half hot: at columns 140..159 of the box (120, 200) that reaches past 160
    out = annotated_image(_gray(), None, heat, (-20, 40, 120, 200), [])
    assert (out[:40, 120:160] != 90).any(axis=-1).all()
    assert (out[40:, :] == 90).all() and (out[:, :120] == 90).all()
    untouched = annotated_image(_gray(), None, np.ones((4, 4)), (200, 300, -50, -10), [])
    assert (untouched == 90).all()


def test_annotated_image_outline_and_text():
    mask = np.zeros((120, 160), bool)
    mask[50:90, 60:120] = True
    out = annotated_image(_gray(), mask, None, None, ["DIVERT 0.81", "crush, view 3"])
    assert (out[50, 60:120] == (0, 255, 255)).all()   # the outline runs along the mask's edge
    assert (out[70, 90] == 90).all()                   # the inside of the item is untouched
    assert (out[:30, :60] != 90).any()                  # text band at the top left
    assert (out[100:, 130:] == 90).all()
