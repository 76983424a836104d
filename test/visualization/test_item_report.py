"""The per-item HTML report: verdict, every view, inline PNGs that decode at the crop size, one file."""
from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pytest

from damage_perception.core.crops import CROP_SIZE, crop_box
from damage_perception.core.verdict import ViewResult
from damage_perception.visualization.item_report import (
    ItemReport,
    render_report,
    report_filename,
    report_view,
    write_report,
)

IMAGE = re.compile(r'<img class="(\w+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A 240 x 320 grey image with a brown item (rows 80..160, cols 120..220) and its mask."""
    color = np.full((240, 320, 3), 60, np.uint8)
    mask = np.zeros((240, 320), bool)
    mask[80:160, 120:220] = True
    color[mask] = (150, 110, 70)
    return color, mask


def found_view(index: int, heat: bool = True) -> ViewResult:
    color, mask = scene()
    heatmap = np.zeros((20, 20), np.float32)
    heatmap[5:9, 10:14] = 0.9
    return ViewResult(index, np.radians(90 * index), True, 0.81, {"crush": 0.7, "hole": 0.1},
                      np.array([0.01, 0.0, 0.1]), 900, signals={"classifier": 2.3, "anomaly": 1.4},
                      heatmap=heatmap if heat else None, crop_box=crop_box(mask) if heat else None)


def decode(data: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(base64.b64decode(data, validate=True), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "not a PNG"
    return image


def example_report() -> ItemReport:
    color, mask = scene()
    views = [report_view(found_view(0), color, mask), report_view(found_view(1, heat=False), color, mask),
             report_view(ViewResult(2, np.pi, False, reason="no item in the gripper <crop empty>"), color, None)]
    return ItemReport("tote-7/item 42", "SKU-D0001", "DIVERT", 0.81, 0.5, {"crush": 0.7, "hole": 0.1},
                      "damage score 0.81 >= 0.50", "effl0-test", views, created=0.0)


def test_report_view_cuts_the_heatmap_box():
    color, mask = scene()
    result = found_view(0)
    view = report_view(result, color, mask)
    assert view.color.shape == (CROP_SIZE, CROP_SIZE, 3) and view.mask.shape == (CROP_SIZE, CROP_SIZE)
    row0, row1, col0, col1 = result.crop_box
    assert row0 < 80 and row1 > 160 and col0 < 120 and col1 > 220   # the window holds the whole item
    # the crop's centre is the item, its corners the background
    assert tuple(view.color[CROP_SIZE // 2, CROP_SIZE // 2]) == (150, 110, 70)
    assert view.mask[CROP_SIZE // 2, CROP_SIZE // 2] and not view.mask[0, 0]
    np.testing.assert_array_equal(view.heatmap, result.heatmap)
    assert view.scores == {"damage": pytest.approx(0.81), "crush": 0.7, "hole": 0.1}
    assert view.signals == {"classifier": 2.3, "anomaly": 1.4}

    missing = report_view(ViewResult(3, 0.0, False, reason="nothing"), color, None)
    assert missing.color is None and missing.heatmap is None and not missing.found


def test_html_has_the_verdict_every_view_and_decodable_images():
    text = render_report(example_report())
    assert '<h1 class="decision">DIVERT</h1>' in text
    assert "tote-7/item 42" in text and "SKU-D0001" in text and "damage score 0.81 &gt;= 0.50" in text
    assert [int(n) for n in re.findall(r"<h2>View (\d+) ", text)] == [0, 1, 2]
    assert "no item: no item in the gripper &lt;crop empty&gt;" in text      # escaped, not markup
    assert "model signals: classifier 2.30 · anomaly 1.40" in text
    images = IMAGE.findall(text)
    # view 0: crop, outline, heat; view 1: crop and outline (no heat map); view 2: none
    assert [kind for kind, _ in images] == ["crop", "outline", "heat", "crop", "outline"]
    for kind, data in images:
        assert decode(data).shape == (CROP_SIZE, CROP_SIZE, 3), kind
    crop, outline, heat = (decode(data)[:, :, ::-1] for _, data in images[:3])
    assert (outline != crop).any() and (heat != crop).any()       # the outline and the heat were drawn
    assert (heat[-20:] == crop[-20:]).all()                        # no heat in the crop's cold bottom rows
    assert text.count('<div class="empty">') == 4                  # view 1's heat map, view 2's three images


def test_report_is_self_contained():
    text = render_report(example_report())
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)    # nothing fetched from elsewhere
    assert "<script" not in text and "url(" not in text


def test_error_verdict_without_scores_renders():
    report = ItemReport("lonely", "none", "ERROR", float("nan"), 0.0, {}, "no synchronised frame", "m", [])
    text = render_report(report)
    assert '<h1 class="decision">ERROR</h1>' in text and "damage score <b>n/a</b>" in text and "nan" not in text


def test_write_report_one_file_per_item(tmp_path):
    report = example_report()
    path = write_report(report, tmp_path / "reports" / report_filename(report.item_id))
    assert path.name == "tote-7_item_42.html" and path.read_text(encoding="utf-8") == render_report(report)
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [path.name]   # no partial file left over
    assert report_filename("../../etc/passwd") == "_.._etc_passwd.html"
    assert report_filename("") == "item.html"
