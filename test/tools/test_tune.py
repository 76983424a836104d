"""`damage-perception tune` end to end on a tiny synthetic dataset."""
import csv

from damage_perception.data.synthesize import SynthSettings, synthesize
from damage_perception.tools import cli


def test_tune_writes_csv_and_plot_and_recommends_one_setting(tmp_path):
    data = tmp_path / "data"
    synthesize(SynthSettings(items=6, damage_rate=0.5, seed=3, views=4, kinds=("carton",), variation=0.0),
               data, workers=1, progress=False)
    out = tmp_path / "tune"
    assert cli.main(["tune", str(data), "--out", str(out), "--max-views", "2,4", "--false-divert-rates", "0.01",
                     "--miss-rates", "0.05", "--workers", "1", "--no-progress"]) == 0
    rows = list(csv.DictReader(open(out / "tune.csv")))
    assert {row["policy"] for row in rows} == {"fixed", "sequential", "nbv"} and len(rows) == 6
    assert sum(row["recommended"] == "True" for row in rows) == 1
    for row in rows:
        assert 1 <= float(row["mean_views"]) <= int(row["max_views"])
    assert (out / "pareto.png").stat().st_size > 10_000
