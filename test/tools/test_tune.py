"""`damage-perception tune` end to end on a tiny synthetic dataset."""
import csv

from damage_perception import cli
from damage_perception.data.synthesize import SynthSettings, synthesize


def test_tune_writes_csv_and_plot_and_recommends_one_setting(tmp_path):
    data = tmp_path / "data"
    synthesize(SynthSettings(items=6, damage_rate=0.5, seed=3, views=4, kinds=("carton",), variation=0.0),
               data, workers=1, progress=False)
    out = tmp_path / "tune"
    assert cli.main(["tune", str(data), "--out", str(out), "--max-views", "2,4", "--false-divert-rates", "0.01",
                     "--miss-rates", "0.05", "--workers", "1", "--no-progress"]) == 0
    rows = list(csv.DictReader((out / "tune.csv").read_text().splitlines()))
    assert {row["policy"] for row in rows} == {"fixed", "sequential", "nbv"} and len(rows) == 6
    assert sum(row["recommended"] == "True" for row in rows) == 1
    for row in rows:
        assert 1 <= float(row["mean_views"]) <= int(row["max_views"])
    assert (out / "pareto.png").stat().st_size > 10_000


def test_recommendation_skips_settings_that_send_everything_to_review():
    from damage_perception.tools.tune import recommend
    rows = [{"r": 0.50, "review_rate": 0.99, "false_divert_rate": 0.0, "mean_seconds": 1.0, "mean_views": 2},
            {"r": 0.495, "review_rate": 0.01, "false_divert_rate": 0.0, "mean_seconds": 3.0, "mean_views": 6},
            {"r": 0.30, "review_rate": 0.0, "false_divert_rate": 0.0, "mean_seconds": 0.5, "mean_views": 1}]
    assert recommend(rows, "r", target_fpr=0.001, max_review_rate=0.05) == 1
    assert recommend(rows[:1], "r", target_fpr=0.001, max_review_rate=0.05) == 0  # nothing better: say so
    # the constraints come first: a much better recall that floods REVIEW or over-diverts is not recommended
    rows.append({"r": 0.9, "review_rate": 0.02, "false_divert_rate": 0.01, "mean_seconds": 1.0, "mean_views": 2})
    assert recommend(rows, "r", target_fpr=0.001, max_review_rate=0.05) == 1
