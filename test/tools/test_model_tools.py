"""study -> train -> evaluate -> calibrate -> enrol, end to end on a tiny study (the commands of docs/models.md)."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from damage_perception import cli
from damage_perception.core.damage_model import DamageModel
from damage_perception.store.database import InspectionStore
from damage_perception.store.galleries import load_gallery

CONFIG = Path(__file__).resolve().parents[2] / "config" / "damage_perception.yaml"


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study")
    assert cli.main(["study", "--out", str(out), "--split", "train", "--skus-per-kind", "2", "--items-per-sku", "3",
                     "--damage-rate", "0.6", "--views", "3", "--gallery-views", "4", "--kinds", "carton,blister",
                     "--seed", "3", "--workers", "1", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def model_file(study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model.pt"
    assert cli.main(["train", str(study), "--out", str(out), "--steps", "6", "--batch", "8", "--validation-share",
                     "0.5", "--checkpoints", str(out.parent / "checkpoints"), "--no-progress"]) == 0
    return out


def test_study_index_lists_galleries_before_items_of_each_sku(study):
    entries = json.loads((study / "study.json").read_text())["episodes"]
    assert len(entries) == 4 * (1 + 3)
    first_role = {}
    for entry in entries:
        first_role.setdefault(entry["sku"], entry["role"])
    assert set(first_role.values()) == {"gallery"}


def test_train_writes_a_small_model_with_fitted_fusion_and_checkpoints(model_file):
    model = DamageModel.load(model_file)
    assert model.fusion is not None and model.version.startswith("effl0-head-s6-seed0-")
    assert model_file.stat().st_size < 25e6
    assert (model_file.parent / "checkpoints" / "validation_scores.jsonl").is_file()


def test_train_is_deterministic_for_a_seed(study, model_file, tmp_path):
    again = tmp_path / "again.pt"
    assert cli.main(["train", str(study), "--out", str(again), "--steps", "6", "--batch", "8", "--validation-share",
                     "0.5", "--checkpoints", str(tmp_path / "checkpoints"), "--no-progress"]) == 0
    assert DamageModel.load(again).version == DamageModel.load(model_file).version


def test_evaluate_writes_figures_and_plots(study, model_file, tmp_path):
    out = tmp_path / "eval"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["good_items"] + summary["damaged_items"] == summary["items"] == 12
    assert 0.0 <= summary["auroc"] <= 1.0
    point = summary["operating_points"][0]
    assert point["target_fpr"] == 0.001 and point["measurable"] is False  # far too few good items: says so
    assert set(summary["signals_alone"]) == {"fused", "classifier", "anomaly", "shape_extra", "shape_missing",
                                             "geometric", "reg_missing", "reg_extra", "reg_colour", "reg_feature"}
    assert (out / "roc.png").stat().st_size > 10_000 and (out / "reliability.png").stat().st_size > 5_000


def test_calibrate_writes_a_threshold_above_every_good_item_and_admits_the_bound(study, model_file, tmp_path):
    evaluation = tmp_path / "eval"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(evaluation),
                     "--no-progress"]) == 0
    config = tmp_path / "node.yaml"
    shutil.copy(CONFIG, config)
    code = cli.main(["calibrate", "--scores", str(evaluation / "scores.jsonl"), "--model", str(model_file),
                     "--target-fpr", "0.001", "--config", str(config)])
    assert code == 1  # a handful of good items cannot show 0.1 %
    threshold = yaml.safe_load(config.read_text())["damage_perception"]["ros__parameters"]["decision"][
        "divert_threshold"]
    from damage_perception.data.study_scores import load_scores
    model = DamageModel.load(model_file)
    good = [i.item_probability(model.fusion) for i in load_scores(evaluation / "scores.jsonl") if not i.damaged]
    assert threshold > max(good)
    assert "calibrate: FPR <=" in config.read_text()


def test_enrol_from_a_study_and_roll_back(study, model_file, tmp_path):
    store_path = tmp_path / "station.db"
    for _ in range(2):
        assert cli.main(["enrol", "--store", str(store_path), "--model", str(model_file), "--study", str(study),
                         "--no-progress"]) in (0, 1)  # 1: a SKU whose reference views all fell off the image
    store = InspectionStore(store_path)
    enrolled = [sku for sku in ("SKU-T0001", "SKU-T0002", "BL-T0001", "BL-T0002") if store.gallery(sku)]
    assert enrolled
    sku = enrolled[0]
    assert load_gallery(store, sku).version == 2
    store.close()
    assert cli.main(["enrol", "--store", str(store_path), "--rollback", sku, "1"]) == 0
    store = InspectionStore(store_path)
    assert load_gallery(store, sku).version == 1
    store.close()


def test_refit_fusion_keeps_the_head_and_changes_the_version_with_the_fusion(study, model_file, tmp_path):
    refitted = tmp_path / "refitted.pt"
    assert cli.main(["train", str(study), "--refit-fusion", str(model_file), "--out", str(refitted),
                     "--validation-share", "0.5", "--seed", "1", "--checkpoints", str(tmp_path / "checkpoints"),
                     "--no-progress"]) == 0
    before, after = DamageModel.load(model_file), DamageModel.load(refitted)
    for name, tensor in before.head.state_dict().items():
        assert (tensor == after.head.state_dict()[name]).all(), name
    assert after.version.startswith("effl0-head-s6-seed0-")
    assert (after.version != before.version) == (after.fusion.to_dict() != before.fusion.to_dict())


def test_refit_keeping_the_item_model_changes_only_the_view_models(study, model_file, tmp_path):
    common = [str(study), "--validation-share", "0.5", "--seed", "1", "--checkpoints", str(tmp_path / "checkpoints"),
              "--no-progress"]
    scores = tmp_path / "eval"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(scores), "--no-progress"]) == 0
    common += ["--fusion-scores", str(scores / "scores.jsonl")]
    assert cli.main(["train", "--refit-fusion", str(model_file), "--out", str(tmp_path / "plain.pt"),
                     "--keep-item-model", *common]) == 2   # nothing to keep: the model has no boosted item model
    boosted, kept = tmp_path / "boosted.pt", tmp_path / "kept.pt"
    assert cli.main(["train", "--refit-fusion", str(model_file), "--out", str(boosted), "--boosted-fusion",
                     *common]) == 0
    assert cli.main(["train", "--refit-fusion", str(boosted), "--out", str(kept), "--keep-item-model",
                     "--no-geometric", *common]) == 0
    before, after = DamageModel.load(boosted), DamageModel.load(kept)
    assert after.fusion.boosted.to_dict() == before.fusion.boosted.to_dict()
    assert before.fusion.reads_geometric and not after.fusion.reads_geometric
    assert "-nogeo-gb-" in after.version and after.version != before.version
    balanced = tmp_path / "balanced.pt"
    assert cli.main(["train", "--refit-fusion", str(model_file), "--out", str(balanced), "--boosted-fusion",
                     "--balance-types", *common]) == 0
    assert "-gb-typebal-" in DamageModel.load(balanced).version   # what the weights do: test_fusion


def test_refit_on_several_scores_files_fits_on_their_union(study, model_file, tmp_path):
    scores = tmp_path / "eval"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(scores), "--no-progress"]) == 0
    lines = (scores / "scores.jsonl").read_text().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(lines[::2]))
    second.write_text("".join(lines[1::2]))
    common = [str(study), "--refit-fusion", str(model_file), "--validation-share", "1", "--boosted-fusion",
              "--checkpoints", str(tmp_path / "checkpoints"), "--no-progress"]
    whole, split, half = tmp_path / "whole.pt", tmp_path / "split.pt", tmp_path / "half.pt"
    assert cli.main(["train", *common, "--out", str(whole), "--fusion-scores", str(scores / "scores.jsonl")]) == 0
    assert cli.main(["train", *common, "--out", str(split), "--fusion-scores", str(second), str(first)]) == 0
    assert cli.main(["train", *common, "--out", str(half), "--fusion-scores", str(first)]) == 0
    fitted = {name: DamageModel.load(path).fusion for name, path in (("whole", whole), ("split", split),
                                                                     ("half", half))}
    def coefficients(fusion) -> np.ndarray:   # the same items in another order: equal up to summation order
        return np.array([*fusion.view.coef, fusion.view.intercept, *fusion.item.coef, fusion.item.intercept])

    assert fitted["split"].fitted_prior == fitted["whole"].fitted_prior
    assert np.allclose(coefficients(fitted["split"]), coefficients(fitted["whole"]), rtol=1e-9, atol=1e-12)
    assert not np.allclose(coefficients(fitted["half"]), coefficients(fitted["whole"]), rtol=1e-3)


def test_tune_replays_the_policies_over_a_model_scored_study(study, model_file, tmp_path):
    scores = tmp_path / "eval"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(scores), "--no-progress"]) == 0
    out = tmp_path / "tune"
    assert cli.main(["tune", str(scores / "scores.jsonl"), "--model", str(model_file), "--out", str(out),
                     "--max-views", "1,3", "--no-progress"]) == 0
    rows = list(csv.DictReader((out / "tune.csv").open()))
    fixed = {int(row["max_views"]): float(row["mean_views"]) for row in rows if row["policy"] == "fixed"}
    assert fixed == {1: 1.0, 3: 3.0}
    assert all(float(row["mean_views"]) <= int(row["max_views"]) for row in rows)
    assert (out / "pareto.png").stat().st_size > 10_000


def test_train_comparator_adds_a_comparator_the_refitted_fusion_reads(study, model_file, tmp_path):
    cache, first = tmp_path / "pairs", tmp_path / "comparator.pt"
    command = ["train-comparator", str(study), "--model", str(model_file), "--cache", str(cache), "--steps", "10",
               "--check-share", "0.5", "--no-progress"]
    assert cli.main([*command, "--out", str(first)]) == 0
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{sku}.npz" for sku in
                                                            {e["sku"] for e in json.loads(
                                                                (study / "study.json").read_text())["episodes"]})
    again = tmp_path / "again.pt"
    assert cli.main([*command, "--out", str(again)]) == 0   # from the cached pairs, to the same weights
    model = DamageModel.load(first)
    assert model.comparator is not None and "-cmp10-" in model.version
    assert DamageModel.load(again).version == model.version
    scores = tmp_path / "eval"
    assert cli.main(["evaluate", str(study), "--model", str(first), "--out", str(scores), "--no-progress"]) == 0
    items = [json.loads(line) for line in (scores / "scores.jsonl").read_text().splitlines()]
    # (a gallery of fewer than 3 found views has no nominal: its items' views go without the comparator's score)
    compared = [view for item in items if item["has_gallery"] for view in item["signals"] if "reg_learned" in view]
    assert len(compared) >= 10 and len({view["reg_learned"] for view in compared}) == len(compared)
    refitted = tmp_path / "refitted.pt"
    assert cli.main(["train", str(study), "--refit-fusion", str(first), "--out", str(refitted), "--boosted-fusion",
                     "--fusion-scores", str(scores / "scores.jsonl"), "--validation-share", "0.5",
                     "--checkpoints", str(tmp_path / "checkpoints"), "--no-progress"]) == 0
    fusion = DamageModel.load(refitted).fusion
    assert "reg_learned" in fusion.view.names and "reg_learned_max" in fusion.boosted.names
    drawn = tmp_path / "drawn"
    assert cli.main(["evaluate", str(study), "--model", str(refitted), "--out", str(drawn), "--scores",
                     str(scores / "scores.jsonl"), "--comparator-tail", "2", "--no-progress"]) == 0
    assert (drawn / "comparator_tail.png").stat().st_size > 20_000   # two rows of view, reference and change map
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(tmp_path / "none"),
                     "--comparator-tail", "2", "--no-progress"]) == 0
    assert not (tmp_path / "none" / "comparator_tail.png").exists()   # no comparator: nothing to draw


def test_evaluate_puts_another_models_own_scores_beside_the_same_items(study, model_file, tmp_path):
    first = tmp_path / "first"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(first), "--no-progress"]) == 0
    second = tmp_path / "second"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(second), "--scores",
                     str(first / "scores.jsonl"), "--compare-model", str(model_file), "--compare-scores",
                     str(first / "scores.jsonl"), "--no-progress"]) == 0
    summary = json.loads((second / "evaluation.json").read_text())
    assert summary["compared_with"]["auroc"] == summary["auroc"] and not summary["compared_with"]["scored_again"]
    part = tmp_path / "part.jsonl"
    part.write_text("".join((first / "scores.jsonl").read_text().splitlines(keepends=True)[1:]))
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(tmp_path / "third"),
                     "--scores", str(first / "scores.jsonl"), "--compare-model", str(model_file),
                     "--compare-scores", str(part), "--no-progress"]) == 2   # not the same items


def test_train_comparator_also_trains_on_the_same_views_misregistered(study, model_file, tmp_path):
    cache, out = tmp_path / "pairs", tmp_path / "comparator.pt"
    assert cli.main(["train-comparator", str(study), "--model", str(model_file), "--cache", str(cache), "--steps", "5",
                     "--check-share", "0", "--misregister-seed", "3", "--out", str(out), "--no-progress"]) == 0
    assert "-cmp5-mr-" in DamageModel.load(out).version
    misregistered = tmp_path / "pairs-misregistered-3"
    assert sorted(p.name for p in misregistered.iterdir()) == sorted(p.name for p in cache.iterdir())
    moved = 0
    for path in cache.iterdir():
        with np.load(path) as plain, np.load(misregistered / path.name) as knocked:
            if not plain.files:
                continue
            # the same views with the same labels; only what the reference shows beside them moved
            assert np.array_equal(plain["query"], knocked["query"])
            assert np.array_equal(plain["labels"], knocked["labels"])
            moved += int(not np.array_equal(plain["aligned"], knocked["aligned"]))
    assert moved >= 2


def test_train_comparator_refuses_studies_that_share_skus(study, model_file, tmp_path):
    assert cli.main(["train-comparator", str(study), str(study), "--model", str(model_file), "--steps", "2",
                     "--out", str(tmp_path / "c.pt"), "--cache", str(tmp_path / "pairs"), "--no-progress"]) == 2
    assert not (tmp_path / "c.pt").exists()


def test_evaluate_puts_anomalib_patchcore_beside_the_model_on_the_same_items(study, model_file, tmp_path):
    from damage_perception.baselines.anomalib_patchcore import AnomalibUnavailable, import_anomalib
    try:
        import_anomalib()
    except AnomalibUnavailable as error:   # an optional extra (requirements-anomalib.txt)
        pytest.skip(f"anomalib unavailable: {error}")
    out = tmp_path / "eval"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(out), "--anomalib",
                     "--no-progress"]) == 0
    side = json.loads((out / "evaluation.json").read_text())["anomalib_comparison"]
    assert side["items"] == side["good_items"] + side["damaged_items"] > 0
    for row in ("fused", "ours", "anomalib_patchcore"):
        assert 0.0 <= side[row]["auroc"] <= 1.0 and side[row]["median_ms_per_image"] > 0, row
    assert side["fused"]["model_version"] == DamageModel.load(model_file).version


def test_scores_written_before_the_reference_reading_get_the_reading_scoring_gives(study, model_file, tmp_path):
    from damage_perception.core.fusion import REFERENCE_READING
    scored = tmp_path / "scored"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(scored), "--no-progress"]) == 0
    items = [json.loads(line) for line in (scored / "scores.jsonl").read_text().splitlines()]
    readings = {}
    for item in items:
        readings.setdefault(item["sku"], set()).update(view[REFERENCE_READING] for view in item["signals"])
    assert readings and all(len(values) == 1 for values in readings.values())   # one per SKU, on every view
    older = tmp_path / "older.jsonl"   # as written before the reading existed
    for item in items:
        item["signals"] = [{k: v for k, v in view.items() if k != REFERENCE_READING} for view in item["signals"]]
    older.write_text("".join(json.dumps(item) + "\n" for item in items))
    completed = tmp_path / "completed"
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(completed), "--scores",
                     str(older), "--add-reference-readings", "--no-progress"]) == 0
    for item in map(json.loads, (completed / "scores.jsonl").read_text().splitlines()):
        (reading,) = readings[item["sku"]]
        assert [view[REFERENCE_READING] for view in item["signals"]] == pytest.approx([reading] * len(item["signals"]),
                                                                                      abs=1e-5)
    refitted = tmp_path / "refitted.pt"
    assert cli.main(["train", str(study), "--refit-fusion", str(model_file), "--validation-share", "1",
                     "--boosted-fusion", "--fusion-scores", str(completed / "scores.jsonl"), "--checkpoints",
                     str(tmp_path / "checkpoints"), "--no-progress", "--out", str(refitted)]) == 0
    model = DamageModel.load(refitted)
    assert model.fusion.reads_reference and "-gb-ref-" in model.version
    assert cli.main(["evaluate", str(study), "--model", str(model_file), "--out", str(tmp_path / "none"),
                     "--add-reference-readings", "--no-progress"]) == 2
