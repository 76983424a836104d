"""`damage-perception identify` on a tiny catalogue study: accuracy figures and the mismatch rule's calibration."""
import json
from pathlib import Path

import pytest

from damage_perception import cli


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("catalogue")
    assert cli.main(["study", "--out", str(out), "--split", "catalogue", "--skus-per-kind", "3", "--items-per-sku", "2",
                     "--damage-rate", "0.0", "--views", "2", "--gallery-views", "4", "--kinds", "carton,book",
                     "--seed", "5", "--workers", "1", "--no-progress"]) == 0
    return out


def test_identify_ranks_each_item_among_the_enrolled_skus_and_calibrates_the_margin(catalogue, tmp_path, capsys):
    assert cli.main(["identify", str(catalogue), "--out", str(tmp_path), "--top-k", "3",
                     "--target-false-alarm", "0.0", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "identification.json").read_text())
    assert summary["skus"] == 6 and summary["queries"] == 12
    assert set(summary["per_kind"]) == {"carton", "book"}
    assert summary["top1"] >= 0.75 and summary["top5"] >= summary["top1"]   # 6 SKUs, new grasps and angles
    rule = summary["mismatch_rule"]
    assert rule["false_alarm"]["k=1"] == 0.0          # the margin is the smallest with no false alarm here
    assert 0.0 <= rule["margin"] <= 1.0
    caught = rule["mislabels_flagged"]["k=1"]["any_sku"]
    assert caught["claims"] == 12 and 0.0 <= caught["flagged"] <= 1.0
    rows = (tmp_path / "identification_items.jsonl").read_text().splitlines()
    assert len(rows) == 12 and len(json.loads(rows[0])["top5"]) == 5
    assert "top-1" in capsys.readouterr().out


def test_identify_needs_two_skus_with_a_gallery(catalogue, tmp_path, capsys):
    assert cli.main(["identify", str(catalogue), "--out", str(tmp_path), "--max-skus", "1", "--no-progress"]) == 2
    assert "fewer than two SKUs" in capsys.readouterr().err
