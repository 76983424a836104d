"""visualization.report_screenshot: the HTML report rendered to a PNG by headless Chromium."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from damage_perception.visualization.item_report import write_report
from damage_perception.visualization.report_screenshot import find_chromium, screenshot, trim_bottom
from test.visualization.test_item_report import example_report


def test_trim_bottom_keeps_the_content_and_a_margin():
    image = np.full((300, 50, 3), 244, np.uint8)
    image[10:120, 5:40] = 0
    trimmed, fits = trim_bottom(image, margin=20)
    assert fits and trimmed.shape[0] == 140
    image[-1, 0] = 0   # content down to the last row: the page may go on below
    assert trim_bottom(image)[1] is False


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (apt-get install -y chromium)")
def test_screenshot_renders_the_report(tmp_path):
    html_path = write_report(example_report(), tmp_path / "report.html")
    png = cv2.imread(str(screenshot(html_path, tmp_path / "report.png", width=800, timeout=120.0)))
    assert png is not None and png.shape[1] == 800 and 200 < png.shape[0] < 3000
    banner = png[40, 400]   # the DIVERT banner is red (#c62828), BGR
    assert banner[2] > 150 and banner[1] < 80 and banner[0] < 80, banner


def test_find_chromium_honours_the_environment(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "surely-not-a-browser-binary")
    assert find_chromium() is None
    if shutil.which("sh"):
        monkeypatch.setenv("CHROMIUM", "sh")
        assert find_chromium() == shutil.which("sh")
