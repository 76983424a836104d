"""Fleet tools on a real throw-away PostgreSQL server: `store migrate`, `store copy` (two stations' SQLite
files join a fleet, re-runnable), `store labels`, `drift` and `calibrate --store` per station and fleet-wide."""
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from damage_perception import cli
from damage_perception.core.damage_model import DamageModel
from damage_perception.core.metrics import threshold_for_fpr
from damage_perception.core.station import SHIPPED_MODEL_FILE
from damage_perception.store.database import (
    InspectionRecord,
    InspectionStore,
    StoredView,
)
from damage_perception.store.schema import MIGRATIONS
from test.tools.test_store_tools import CONFIG, PASS, unix, written_threshold


def station_file(path: Path, station: str, goods: list[float], version: str, sku_versions: int) -> Path:
    """A station's SQLite file: labelled good items, one damaged, and ``sku_versions`` gallery versions."""
    store = InspectionStore(path, station_id=station)
    for k, score in enumerate(goods):
        store.log_inspection(InspectionRecord(f"{station}-good-{k}", "SKU-A", PASS, score, 0.5, version,
                                              created_at=unix("2026-02-02") + k))
        store.add_label(f"{station}-good-{k}", damaged=False, labeller=f"qa-{station}")
    store.log_inspection(InspectionRecord(f"{station}-bad", "SKU-A", 1, 0.9, 0.5, version,
                                          created_at=unix("2026-02-10")))
    store.add_label(f"{station}-bad", damaged=True, damage_type="crush")
    rng = np.random.default_rng(len(station))
    for _ in range(sku_versions):
        store.enrol(f"SKU-{station}", [StoredView(rng.normal(size=(4, 8)).astype(np.float32), 0.0)])
    if sku_versions > 1:
        store.activate(f"SKU-{station}", 1)
    store.close()
    return path


@pytest.fixture
def fleet(tmp_path, postgres_server):
    """A fresh fleet database with two stations' files copied in; returns (url, per-station good scores)."""
    version = DamageModel.load(SHIPPED_MODEL_FILE).version
    goods = {"st1": [0.01 * k for k in range(1, 31)], "st2": [0.02 * k for k in range(1, 21)]}
    url = postgres_server.create_database()
    assert cli.main(["store", "migrate", url]) == 0
    for station, scores in goods.items():
        path = station_file(tmp_path / f"{station}.db", station, scores, version, 2)
        assert cli.main(["store", "copy", str(path), url]) == 0
    return url, goods


def test_migrate_creates_the_schema_on_a_server(postgres_server, capsys):
    url = postgres_server.create_database()
    assert cli.main(["store", "migrate", url]) == 0
    assert f"schema version {len(MIGRATIONS)}" in capsys.readouterr().out
    assert InspectionStore(url).schema_version == len(MIGRATIONS)


def test_copy_joins_stations_to_the_fleet_once_with_labels_and_galleries(fleet, tmp_path, capsys):
    url, _ = fleet
    server = InspectionStore(url)
    assert server.stations() == ["st1", "st2"]
    assert len(server.inspections(station="st1")) == 31 and len(server.inspections(station="st2")) == 21
    assert len(server.labels()) == 52 and all(link is not None for _, link, *_ in server.labels())
    assert server.gallery_versions("SKU-st1") == [(1, True, 1), (2, False, 1)]   # numbers and rollback kept
    assert cli.main(["store", "copy", str(tmp_path / "st1.db"), url]) == 0   # again: nothing new
    assert "0 new verdicts, 0 new labels" in capsys.readouterr().out
    assert len(server.inspections()) == 52 and len(server.labels()) == 52
    other = station_file(tmp_path / "st3.db", "st3", [0.5], "m", 0)
    local = InspectionStore(other)
    local.enrol("SKU-st1", [StoredView(np.ones((2, 8), np.float32), 0.0)])   # a SKU the fleet has already
    local.close()
    assert cli.main(["store", "copy", str(other), url]) == 0
    assert "kept their versions there: SKU-st1" in capsys.readouterr().out
    assert server.gallery_versions("SKU-st1") == [(1, True, 1), (2, False, 1)]
    server.close()


def test_drift_per_station_and_for_the_fleet(fleet, tmp_path):
    url, _ = fleet
    for station, expected in (("st1", 31), ("st2", 21), (None, 52)):
        out = tmp_path / f"drift-{station}"
        assert cli.main(["drift", "--store", url, "--out", str(out)] + (["--station", station] if station else [])) == 0
        rows = list(csv.DictReader((out / "drift.csv").read_text().splitlines()))
        assert sum(int(r["count"]) for r in rows) == expected
    assert cli.main(["drift", "--store", url, "--station", "nowhere", "--out", str(tmp_path / "x")]) == 1


def test_calibrate_from_a_fleet_server_per_station_or_all(fleet, tmp_path):
    url, goods = fleet
    for station, scores in (("st2", goods["st2"]), (None, goods["st1"] + goods["st2"])):
        config = tmp_path / "node.yaml"
        shutil.copy(CONFIG, config)
        argv = ["calibrate", "--store", url, "--target-fpr", "0.2", "--config", str(config)]
        assert cli.main(argv + (["--station", station] if station else [])) == 0
        assert written_threshold(config) == pytest.approx(float(threshold_for_fpr(scores, 0.2, 0.95).threshold))


def test_labels_per_station_as_csv(fleet, tmp_path):
    url, _ = fleet
    out = tmp_path / "labels.csv"
    assert cli.main(["store", "labels", url, "--station", "st2", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 21 and {r["station_id"] for r in rows} == {"st2"}
    assert sum(r["damaged"] == "1" for r in rows) == 1 and rows[0]["labeller"] == "qa-st2"


def test_tools_say_when_a_server_is_unreachable(tmp_path, capsys):
    url = f"postgresql://nobody@/nodb?host={tmp_path}"
    assert cli.main(["drift", "--store", url, "--out", str(tmp_path / "d")]) == 2
    assert cli.main(["store", "copy", str(tmp_path / "missing.db"), url]) == 2
    assert "does not exist" in capsys.readouterr().err
