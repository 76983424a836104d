"""Synthetic dataset generation: contents, reproducibility across runs and worker counts, CLI, contact sheet."""
from __future__ import annotations

import numpy as np
import pytest

from damage_perception import cli
from damage_perception.core.damage_types import DAMAGE_LABELS
from damage_perception.core.gripper import GripperGeometry
from damage_perception.data.synth_format import DATASET_FILE, SynthDataset, load_json, read_episode, write_episode
from damage_perception.data.synthesize import (
    SynthSettings,
    contact_sheet,
    damage_label_map,
    episode_rng,
    render_episode,
    synthesize,
    view_angles,
)
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig
from test.data.test_synth_format import tree_hashes

SETTINGS = SynthSettings(items=4, damage_rate=0.5, seed=5, views=2)


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    out = tmp_path_factory.mktemp("w1")
    return out, synthesize(SETTINGS, out, workers=1, progress=False)


def test_dataset_matches_catalogue(one_worker):
    out, report = one_worker
    catalogue = make_catalogue(SETTINGS.items, SETTINGS.damage_rate, SETTINGS.seed)
    assert {s.damage for s in catalogue} - {"pristine"}, "pick a seed with a damaged item"
    dataset = SynthDataset(out)
    assert len(dataset) == SETTINGS.items and report.views == SETTINGS.items * SETTINGS.views
    info = load_json(out / DATASET_FILE)
    assert info["generator"]["settings"]["seed"] == SETTINGS.seed and info["counts"]["views"] == report.views
    for spec, episode in zip(catalogue, dataset):
        assert (episode.episode_id, episode.sku, episode.label) == (spec.item_id, spec.sku, spec.damage)
        assert episode.severity == spec.severity and episode.metadata["item_size"] == list(spec.size)
        assert [v.wrist_angle for v in episode.views] == view_angles(SETTINGS.views)
        for view in episode.views:
            assert view.item_mask.any() and view.camera_from_gripper.shape == (4, 4)
            assert len(view.finger_poses) == 2
            assert np.all(view.depth_m[view.item_mask] >= 0)
            damaged = view.damage_mask > 0
            assert not np.any(damaged & ~view.item_mask)
            if episode.label == "pristine":
                assert not damaged.any()
            else:
                assert set(np.unique(view.damage_mask)) <= {0, DAMAGE_LABELS.index(episode.label)}


def test_rendered_episode_round_trips_bit_for_bit(tmp_path):
    spec = next(s for s in make_catalogue(40, 0.9, 2) if s.damage != "pristine")
    gripper = GripperGeometry()
    episode = render_episode(CellRenderer(SceneConfig(), gripper), gripper, spec, [0.4], episode_rng(2, 0))
    view = read_episode(write_episode(episode, tmp_path / "ep")).views[0]
    original = episode.views[0]
    assert np.array_equal(view.depth_m, original.depth_m) and view.depth_m.dtype == original.depth_m.dtype
    assert np.array_equal(view.color, original.color) and np.array_equal(view.item_mask, original.item_mask)
    assert np.array_equal(view.damage_mask, original.damage_mask)


def test_workers_and_reruns_give_identical_bytes(one_worker, tmp_path):
    out, _ = one_worker
    report = synthesize(SETTINGS, tmp_path, workers=2, progress=False)
    assert report.workers == 2
    assert tree_hashes(tmp_path) == tree_hashes(out)


def test_episode_rng_depends_on_seed_and_index_only():
    a = episode_rng(1, 0).random(4)
    assert not np.array_equal(a, episode_rng(1, 1).random(4))
    assert not np.array_equal(a, episode_rng(2, 0).random(4)) and np.array_equal(a, episode_rng(1, 0).random(4))


def test_damage_label_map():
    mask = np.array([[True, False]])
    assert damage_label_map(mask, "tear").tolist() == [[DAMAGE_LABELS.index("tear"), 0]]
    assert damage_label_map(np.array([[5, 0]], np.uint8), "spill").tolist() == [[5, 0]]
    assert damage_label_map(mask, "pristine").dtype == np.uint8


def test_cli(tmp_path, capsys):
    argv = ["synth", "--items", "1", "--views", "1", "--workers", "1", "--no-progress", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    assert "views/s" in capsys.readouterr().out
    assert len(SynthDataset(tmp_path)) == 1
    assert cli.main(argv) == 2  # refuses to overwrite without --force
    assert cli.main(argv + ["--force"]) == 0
    assert cli.main(["synth", "--items", "1"]) == 2  # no --out


def test_contact_sheet_has_a_row_per_type():
    sheet = contact_sheet(seed=3, views=2, types=("pristine", "crush"))
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    assert sheet.shape[0] == 2 * 200 and sheet.shape[1] == 190 + 4 * 200


def test_episodes_vary_camera_and_grasp_and_record_it(one_worker):
    """Per-episode variation (issue 3 "Episodes"): intrinsics and grasp differ between episodes and the
    values drawn are in each episode's metadata; views of one episode share one camera."""
    out, _ = one_worker
    episodes = list(SynthDataset(out))
    fx = {round(episode.views[0].intrinsics.fx, 3) for episode in episodes}
    assert len(fx) == len(episodes)
    for episode in episodes:
        variation = episode.metadata["variation"]
        assert variation["intrinsics"]["fx"] == pytest.approx(episode.views[0].intrinsics.fx)
        assert {v.intrinsics for v in episode.views} == {episode.views[0].intrinsics}
        assert variation["flying_pixel_rate"] > 0
    assert len({str(episode.metadata["variation"]["grasp"]) for episode in episodes}) > 1


def test_variation_zero_is_the_fixed_cell(tmp_path):
    settings = SynthSettings(items=2, damage_rate=0.5, seed=5, views=1, variation=0.0)
    synthesize(settings, tmp_path, workers=1, progress=False)
    fx = {episode.views[0].intrinsics.fx for episode in SynthDataset(tmp_path)}
    assert fx == {SceneConfig().intrinsics.fx}
