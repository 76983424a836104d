"""evaluate-mvtec and evaluate-images: run on small real / generated folders, write their figures, refuse
bad input with a reason."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from damage_perception.cli import main
from damage_perception.core.appearance import SHIPPED_APPEARANCE_FILE, AppearanceModel
from damage_perception.tools.evaluate_images import photo_split
from test.tools.photo_folders import write_photos

BOTTLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mvtec-ad-bottle" / "bottle"


def _link_subset(target: Path, counts: dict[str, int]) -> Path:
    """A small MVTec layout of symlinks into the shared bottle (the licence forbids copying it)."""
    for folder, count in counts.items():
        (target / folder).mkdir(parents=True)
        for image in sorted((BOTTLE / folder).glob("*.png"))[:count]:
            os.symlink(image, target / folder / image.name)
    return target


@pytest.mark.skipif(not BOTTLE.is_dir(), reason=f"MVTec AD bottle not at {BOTTLE} (../shared/data, not in the repo)")
def test_evaluate_mvtec_separates_real_bottle_defects(tmp_path, capsys):
    root = _link_subset(tmp_path / "bottle", {"train/good": 12, "test/good": 6, "test/broken_large": 5,
                                               "test/contamination": 5})
    assert main(["evaluate-mvtec", str(root), "--out", str(tmp_path / "out"), "--size", "160"]) == 0
    summary = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert summary["reference_images"] == 12
    assert set(summary["per_defect"]) == {"broken_large", "contamination"}
    # Full-size PatchCore gets 1.0 on this category; 12 reference images at 160 px must still rank most
    # defective bottles above the good ones.
    assert summary["overall"]["auroc"] >= 0.8
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("bottle image-level: AUROC")


def test_evaluate_mvtec_refuses_a_folder_without_the_layout(tmp_path, capsys):
    (tmp_path / "cat" / "test").mkdir(parents=True)
    assert main(["evaluate-mvtec", str(tmp_path / "cat"), "--out", str(tmp_path / "out")]) == 2
    assert "not an MVTec AD category" in capsys.readouterr().err


def _photos(folder: Path, count: int, damaged: bool, rng: np.random.Generator) -> None:
    write_photos(folder, count, damaged, rng)


def test_evaluate_images_writes_figures_for_a_seeded_heldout_split(tmp_path, capsys):
    rng = np.random.default_rng(0)
    _photos(tmp_path / "photos" / "damaged", 8, True, rng)
    _photos(tmp_path / "photos" / "intact", 8, False, rng)
    split = photo_split(tmp_path / "photos", seed=3, share=0.25)
    assert [len(split["heldout"][c]) for c in ("damaged", "intact")] == [2, 2]
    assert split == photo_split(tmp_path / "photos", seed=3, share=0.25)
    assert not set(split["heldout"]["damaged"]) & set(split["train"]["damaged"])
    assert main(["evaluate-images", str(tmp_path / "photos"), "--out", str(tmp_path / "out"),
                 "--split", "heldout", "--seed", "3"]) == 0
    summary = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert (summary["damaged"], summary["good"]) == (2, 2)
    assert 0.0 <= summary["auroc"] <= 1.0 and len(summary["operating_points"]) == 2
    # the shipped appearance model (trained on real photos) scores them too, by default, its line last
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("images: AUROC") and lines[-1].startswith("appearance: AUROC")
    assert summary["appearance"]["model"] == AppearanceModel.load(SHIPPED_APPEARANCE_FILE).version
    assert summary["appearance"]["trained_on_these_photos"] is False   # not the folder it was trained on
    assert main(["evaluate-images", str(tmp_path / "photos"), "--out", str(tmp_path / "out"), "--no-appearance"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("images: AUROC")
    assert "appearance" not in json.loads((tmp_path / "out" / "evaluation.json").read_text())


def test_evaluate_images_says_which_class_folder_is_missing(tmp_path, capsys):
    _photos(tmp_path / "photos" / "damaged", 2, True, np.random.default_rng(1))
    assert main(["evaluate-images", str(tmp_path / "photos"), "--out", str(tmp_path / "out")]) == 2
    assert "intact" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "photos")
