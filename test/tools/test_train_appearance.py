"""train-appearance end to end on a tiny photo folder made here: trains on exactly the complement of
evaluate-images' held-out share, writes a loadable model file, resumes, and evaluate-images --appearance scores
with it side by side with the classifier."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from damage_perception.cli import main
from damage_perception.core.appearance import AppearanceModel
from damage_perception.tools.evaluate_images import photo_split
from test.tools.photo_folders import write_photos


def _photos(folder: Path, count: int, damaged: bool, rng: np.random.Generator) -> None:
    write_photos(folder, count, damaged, rng, largest=160, prefix="d" if damaged else "i")


def test_train_appearance_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    _photos(photos / "damaged", 10, True, rng)
    _photos(photos / "intact", 10, False, rng)
    out = tmp_path / "models" / "app.pt"
    command = ["train-appearance", str(photos), "--out", str(out), "--size", "64", "--copies", "2", "--epochs", "2",
               "--seed", "3", "--no-progress"]
    assert main(command) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith(f"wrote {out}")
    model = AppearanceModel.load(out)
    assert (model.size, model.backbone) == (64, "efficientnet-lite0") and model.version.startswith("app-lite0-64px")
    assert out.stat().st_size < 20e6
    # Trained on exactly the complement of evaluate-images --split heldout --seed 3, split into fit and inner val.
    record = json.loads((tmp_path / "models" / "app.work" / "training.json").read_text())
    split = photo_split(photos, seed=3, share=0.25)
    train = {str(p) for name in ("damaged", "intact") for p in split["train"][name]}
    assert set(record["fit"]) | set(record["val"]) == train and not set(record["fit"]) & set(record["val"])
    assert len(record["history"]) == 2 and model.meta["fit_photos"] == len(record["fit"])
    # A second run finds its checkpoint (and cached copies) and does not train again.
    assert main(command) == 0
    assert any(line.startswith("train-appearance: resumed") for line in capsys.readouterr().out.splitlines())
    # evaluate-images scores the held-out share with both models.
    assert main(["evaluate-images", str(photos), "--out", str(tmp_path / "eval"), "--split", "heldout",
                 "--seed", "3", "--appearance", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("images: AUROC") and lines[-1].startswith("appearance: AUROC")
    summary = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert summary["appearance"]["model"] == model.version
    assert (summary["appearance"]["damaged"], summary["appearance"]["good"]) == (2, 2)
    assert summary["appearance"]["ms_per_image"] > 0 and 0 <= summary["appearance"]["auroc"] <= 1
    rows = [json.loads(line) for line in (tmp_path / "eval" / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all("appearance_score" in row for row in rows)
    assert summary["appearance"]["trained_on_these_photos"] is False   # the held-out share of its seed
    # Scoring every photo includes the ones it was trained on: said, and kept in the figures' record.
    assert main(["evaluate-images", str(photos), "--out", str(tmp_path / "eval_all"), "--appearance", str(out)]) == 0
    assert any("warning: the appearance model was trained on photos of" in line
               for line in capsys.readouterr().out.splitlines())
    summary = json.loads((tmp_path / "eval_all" / "evaluation.json").read_text())
    assert summary["appearance"]["trained_on_these_photos"] is True


def test_a_corrupt_appearance_file_is_refused_with_the_reason(tmp_path, capsys):
    rng = np.random.default_rng(1)
    _photos(tmp_path / "photos" / "damaged", 2, True, rng)
    _photos(tmp_path / "photos" / "intact", 2, False, rng)
    (tmp_path / "bad.pt").write_bytes(b"\x00garbage")
    assert main(["evaluate-images", str(tmp_path / "photos"), "--out", str(tmp_path / "eval"),
                 "--appearance", str(tmp_path / "bad.pt")]) == 2
    assert "unreadable" in capsys.readouterr().err


def test_train_appearance_refuses_a_folder_without_both_classes(tmp_path, capsys):
    _photos(tmp_path / "photos" / "damaged", 4, True, np.random.default_rng(2))
    assert main(["train-appearance", str(tmp_path / "photos"), "--out", str(tmp_path / "app.pt")]) == 2
    assert "intact" in capsys.readouterr().err


def test_a_member_seed_draws_another_inner_validation_from_the_same_training_share(tmp_path):
    rng = np.random.default_rng(2)
    photos = tmp_path / "photos"
    _photos(photos / "damaged", 10, True, rng)
    _photos(photos / "intact", 10, False, rng)
    records = {}
    for member in (None, 5):
        out = tmp_path / f"member-{member}.pt"
        extra = [] if member is None else ["--member-seed", str(member)]
        assert main(["train-appearance", str(photos), "--out", str(out), "--size", "64", "--copies", "1",
                     "--epochs", "1", "--seed", "3", "--no-progress", *extra]) == 0
        records[member] = json.loads((tmp_path / f"member-{member}.work" / "training.json").read_text())
        assert records[member]["member_seed"] == (3 if member is None else 5)
    default, other = records[None], records[5]
    # the held-out share of seed 3 is left out by both; only the inner validation moves
    assert set(default["fit"]) | set(default["val"]) == set(other["fit"]) | set(other["val"])
    assert set(default["val"]) != set(other["val"])
