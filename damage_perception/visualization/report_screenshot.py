"""Render an HTML report to a PNG with headless Chromium (Debian: ``apt-get install -y chromium``).

    .venv/bin/python -m damage_perception.visualization.report_screenshot REPORT.html OUT.png [--width 1200]

Chromium's ``--screenshot`` captures the window only, so the page is rendered in a tall window and the
uniform background below the content is trimmed off.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
HEIGHTS = (3000, 12000)   # px; window heights tried until the page fits
BOTTOM_MARGIN = 20        # px of background kept below the content


class ScreenshotError(RuntimeError):
    """No Chromium, or it failed to render."""


def find_chromium() -> str | None:
    """Path of a Chromium / Chrome binary: ``$CHROMIUM`` if set, else the first candidate on PATH."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _render(chromium: str, html_path: Path, png_path: Path, width: int, height: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="report_chromium_") as profile:
        command = [chromium, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                   f"--user-data-dir={profile}", "--force-device-scale-factor=1",
                   f"--window-size={width},{height}", f"--screenshot={png_path}", html_path.resolve().as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(1, "--no-sandbox")   # Chromium refuses to run its sandbox as root
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 or not png_path.exists():
        raise ScreenshotError(f"{chromium} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def trim_bottom(image: np.ndarray, margin: int = BOTTOM_MARGIN) -> tuple[np.ndarray, bool]:
    """``image`` without the rows below the content that are all the page background (the bottom-left
    pixel's colour), keeping ``margin`` of them; and whether the bottom row was such a row (False: the
    content reaches the bottom edge and may go on below)."""
    background = image[-1, 0]
    plain = (image == background).all(axis=-1).all(axis=1)
    if not plain[-1]:
        return image, False
    content = np.flatnonzero(~plain)
    last = int(content[-1]) if content.size else 0
    return image[:min(image.shape[0], last + 1 + margin)], True


def screenshot(html_path: Path | str, png_path: Path | str, width: int = 1200, timeout: float = 60.0) -> Path:
    """Render ``html_path`` at ``width`` px to ``png_path``, as tall as its content; the PNG's path."""
    chromium = find_chromium()
    if chromium is None:
        raise ScreenshotError(f"no Chromium found (looked for $CHROMIUM and {', '.join(CANDIDATES)}); "
                              "install one with: apt-get install -y chromium")
    html_path, png_path = Path(html_path), Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    for height in HEIGHTS:
        _render(chromium, html_path, png_path, width, height, timeout)
        image = cv2.imread(str(png_path), cv2.IMREAD_COLOR)
        if image is None:
            raise ScreenshotError(f"Chromium wrote an unreadable PNG to {png_path}")
        trimmed, fits = trim_bottom(image)
        if fits:
            break
    cv2.imwrite(str(png_path), trimmed, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return png_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args()
    print(f"wrote {screenshot(args.html, args.png, args.width)}")


if __name__ == "__main__":
    main()
