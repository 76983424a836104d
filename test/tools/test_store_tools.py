"""Recalibration from labelled inspections (`calibrate --store`) and weekly score drift (`drift`), on small
stores built here."""
import csv
import shutil
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from damage_perception import cli
from damage_perception.core.damage_model import DamageModel
from damage_perception.core.metrics import threshold_for_fpr
from damage_perception.core.station import SHIPPED_MODEL_FILE
from damage_perception.store.database import InspectionRecord, InspectionStore

CONFIG = Path(__file__).resolve().parents[2] / "config" / "damage_perception.yaml"
PASS, DIVERT, ERROR = 0, 1, 3


def unix(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def labelled_store(tmp_path) -> tuple[Path, list[float]]:
    """Good and damaged items of the shipped model's version, good items of an older model scored high,
    and one item first labelled good then corrected to damaged; returns the path and the good scores."""
    version = DamageModel.load(SHIPPED_MODEL_FILE).version
    store = InspectionStore(tmp_path / "station.db")
    good = [0.01 * k for k in range(1, 41)]
    for k, score in enumerate(good):
        store.log_inspection(InspectionRecord(f"good-{k}", "SKU-A", PASS, score, 0.5, version))
        store.add_label(f"good-{k}", damaged=False, labeller="qa")
    for k in range(5):
        store.log_inspection(InspectionRecord(f"bad-{k}", "SKU-A", DIVERT, 0.9, 0.5, version))
        store.add_label(f"bad-{k}", damaged=True, damage_type="crush")
    for k in range(10):
        store.log_inspection(InspectionRecord(f"old-{k}", "SKU-A", DIVERT, 0.99, 0.5, "older-model"))
        store.add_label(f"old-{k}", damaged=False)
    store.log_inspection(InspectionRecord("corrected", "SKU-A", PASS, 0.95, 0.5, version))
    store.add_label("corrected", damaged=False)
    store.add_label("corrected", damaged=True, damage_type="tear")  # the later label wins
    store.close()
    return tmp_path / "station.db", good


def written_threshold(config: Path) -> float:
    node = yaml.safe_load(config.read_text())
    return next(iter(node.values()))["ros__parameters"]["decision"]["divert_threshold"]


def test_calibrate_from_the_store_uses_the_current_models_good_labels(labelled_store, tmp_path):
    path, good = labelled_store
    config = tmp_path / "node.yaml"
    shutil.copy(CONFIG, config)
    assert cli.main(["calibrate", "--store", str(path), "--target-fpr", "0.1", "--config", str(config)]) == 0
    expected = threshold_for_fpr(good, 0.1, 0.95)
    assert expected.meets_target and written_threshold(config) == pytest.approx(expected.threshold)
    assert written_threshold(config) < 0.41  # the older model's 0.99 and the corrected 0.95 were left out
    # too few good items for 0.1 %: the threshold goes just above the highest good score, and exit 1 says so
    assert cli.main(["calibrate", "--store", str(path), "--target-fpr", "0.001", "--config", str(config)]) == 1
    assert written_threshold(config) == pytest.approx(max(good))


def test_calibrate_refuses_a_missing_or_unlabelled_store(tmp_path):
    config = tmp_path / "node.yaml"
    shutil.copy(CONFIG, config)
    assert cli.main(["calibrate", "--store", str(tmp_path / "absent.db"), "--config", str(config)]) == 2
    InspectionStore(tmp_path / "empty.db").close()
    assert cli.main(["calibrate", "--store", str(tmp_path / "empty.db"), "--config", str(config)]) == 2
    assert config.read_text() == CONFIG.read_text()


def test_drift_summarises_each_sku_by_iso_week(tmp_path):
    store = InspectionStore(tmp_path / "station.db")
    week7 = [0.1, 0.2, 0.3, 0.4, 0.9]  # Mon 9 Feb 2026 = ISO week 7; Sun 15 Feb is still week 7
    for k, score in enumerate(week7):
        store.log_inspection(InspectionRecord(f"a{k}", "SKU-A", DIVERT if score > 0.5 else PASS, score, 0.5,
                                              created_at=unix("2026-02-09T08:00") + k * 86400 * 1.5))
    for k, score in enumerate([0.5, 0.7]):  # week 8: scores creep up, half diverted
        store.log_inspection(InspectionRecord(f"a{k + 5}", "SKU-A", DIVERT if score > 0.6 else PASS, score, 0.5,
                                              created_at=unix("2026-02-17T10:00")))
    store.log_inspection(InspectionRecord("b0", "SKU-B", PASS, 0.2, 0.5, created_at=unix("2026-02-10T10:00")))
    store.log_inspection(InspectionRecord("b1", "SKU-B", ERROR, float("nan"), float("nan"),
                                          created_at=unix("2026-02-11T10:00")))
    store.close()
    out = tmp_path / "drift"
    assert cli.main(["drift", "--store", str(tmp_path / "station.db"), "--out", str(out)]) == 0
    rows = {(r["sku"], r["iso_week"]): r for r in csv.DictReader((out / "drift.csv").read_text().splitlines())}
    assert set(rows) == {("SKU-A", "2026-W07"), ("SKU-A", "2026-W08"), ("SKU-B", "2026-W07")}
    a7, a8, b7 = rows[("SKU-A", "2026-W07")], rows[("SKU-A", "2026-W08")], rows[("SKU-B", "2026-W07")]
    assert int(a7["count"]) == 5 and float(a7["median_score"]) == pytest.approx(0.3)
    assert float(a7["p95_score"]) == pytest.approx(np.percentile(week7, 95)) and float(a7["divert_share"]) == 0.2
    assert float(a8["median_score"]) == pytest.approx(0.6) and float(a8["divert_share"]) == 0.5
    assert (int(b7["count"]), int(b7["scored"]), float(b7["median_score"])) == (2, 1, pytest.approx(0.2))
    image = cv2.imread(str(out / "drift.png"))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 500


def test_drift_of_an_empty_or_missing_store_says_so(tmp_path):
    assert cli.main(["drift", "--store", str(tmp_path / "absent.db"), "--out", str(tmp_path / "o")]) == 2
    InspectionStore(tmp_path / "empty.db").close()
    assert cli.main(["drift", "--store", str(tmp_path / "empty.db"), "--out", str(tmp_path / "o")]) == 1
