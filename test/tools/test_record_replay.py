"""`damage-perception record` of a live cell over DDS, then `replay` of the bag: the same verdicts.

Also, without ROS processes: the replay's frame matching on a small bag written here (a frame missing for a
view stamp is that item's error, the other items go on).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from damage_perception import cli
from damage_perception.cell.processes import ros_environment, start, stop
from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.damage_model import DamageModel
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.inspection import Inspector
from damage_perception.core.station import SHIPPED_MODEL_FILE, StationSettings, config_file
from damage_perception.core.transforms import make_transform
from damage_perception.core.verdict import Decision
from damage_perception.data.loaders import ros_messages as rm
from damage_perception.data.replay_bag import RecordedCell, ReplaySetup, replay_verdicts
from damage_perception.data.study import gallery_episode
from damage_perception.data.study_scores import gallery_of
from damage_perception.ros.conversions import rgbd_to_arrays
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.store.database import InspectionStore
from damage_perception.store.galleries import save_gallery
from test.nodes.conftest import make_client, running

CELL_PARAMS = {"num_items": 3, "damage_rate": 0.5, "seed": 11}   # a crushed, a torn and a pristine carton
CELL = ("sim_cell_node", "sim_cell.yaml", CELL_PARAMS)
EXPECTED_TOPICS = {"/color/image_raw", "/depth/image_raw", "/color/camera_info", "/tf", "/tf_static", "/verdict"}


def enrol(store_path: Path, skus: list[str]) -> None:
    """Galleries for ``skus`` (two or more: product identification runs too)."""
    model = DamageModel.load(SHIPPED_MODEL_FILE)
    store = InspectionStore(store_path)
    for sku in skus:
        save_gallery(store, gallery_of(model, gallery_episode(sku, views=6)))
    store.close()


def node_config(tmp_path: Path, **overrides) -> Path:
    """The node's YAML with ``overrides``: the node runs with it and replay reads it."""
    document = yaml.safe_load(config_file("damage_perception.yaml").read_text())
    document["damage_perception"]["ros__parameters"].update(overrides)
    path = tmp_path / "damage_perception.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def wait_for_line(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"no '{text}' in {log.name}:\n{log.read_text()}"
        time.sleep(0.1)


def record_items(tmp_path: Path, config: Path, bag: Path, count: int) -> list:
    """Run ``count`` items through the live cell while `damage-perception record` records; the live verdicts."""
    node = ("perception_node", str(config), {"goal_deadline": 25.0})
    log = tmp_path / "record.log"
    with running(tmp_path, CELL, node):
        recorder = start([sys.executable, "-m", "damage_perception.cli", "record", "--out", str(bag)],
                         ros_environment(int(os.environ["ROS_DOMAIN_ID"])), log)
        try:
            client = make_client(server_timeout=40.0, item_timeout=40.0)
            wait_for_line(log, "record: recording", 20.0)
            verdicts = [client.run_item().verdict for _ in range(count)]
            time.sleep(1.0)   # the last verdict reaches the recorder
        finally:
            stop(recorder, timeout=10.0)
            print(f"--- record.log ---\n{log.read_text()}")
    assert recorder.returncode == 0 and "record: closed" in log.read_text()
    return verdicts


def test_replay_of_a_recorded_cell_gives_the_live_verdicts(tmp_path, ros_context, capsys):
    store_path, bag, out = tmp_path / "station.db", tmp_path / "cell_bag", tmp_path / "replay"
    catalogue = make_catalogue(CELL_PARAMS["num_items"], CELL_PARAMS["damage_rate"], CELL_PARAMS["seed"],
                               kinds=("carton",))
    enrol(store_path, [catalogue[0].sku, catalogue[2].sku])
    config = node_config(tmp_path, num_views=4, store_path=str(store_path))
    live = record_items(tmp_path, config, bag, len(catalogue))
    assert all(v.decision != Decision.ERROR and len(v.view_stamps) == 4 for v in live), [v.reason for v in live]

    with Reader(bag) as reader:
        assert set(reader.topics) >= EXPECTED_TOPICS, sorted(reader.topics)
        assert reader.topics["/verdict"].msgcount == len(live)
        assert all(reader.topics[t].msgcount > 0 for t in EXPECTED_TOPICS)

    code = cli.main(["replay", str(bag), "--store", str(store_path), "--config", str(config), "--out", str(out)])
    printed = capsys.readouterr().out
    print(printed)
    replayed = {row["item_id"]: row for row in map(json.loads, (out / "verdicts.jsonl").read_text().splitlines())}
    assert code == 0 and f"{len(live)} of {len(live)} items with the identical decision" in printed
    for verdict in live:
        row = replayed[verdict.item_id]
        assert row["decision"] == Decision(verdict.decision).name, row
        assert abs(row["fused_score"] - verdict.fused_score) <= 1e-4, (row, verdict.fused_score)
        assert row["num_views"] == verdict.num_views and "error" not in row
        if verdict.gallery_version:   # against a posed gallery every view ran the registered comparison, as live
            assert row["registered_views"] == verdict.num_views, row
    assert any(verdict.gallery_version for verdict in live)


# -- frame matching, on a bag written here -----------------------------------------------------------
T0 = 1_700_000_000 * 10**9
STEP = 100_000_000   # ns between frames
INTRINSICS = CameraIntrinsics(width=64, height=48, fx=60.0, fy=60.0, cx=32.0, cy=24.0)


def _write_frame(writer: Writer, connections: dict, typestore, ns: int, color_offset_ns: int = 0) -> None:
    """A frame (a wall 0.5 m away), its TF, and camera_info; colour ``color_offset_ns`` later."""
    header = rm.header(ns, "camera_color_optical_frame", typestore)
    color_header = rm.header(ns + color_offset_ns, "camera_color_optical_frame", typestore)
    color = np.full((48, 64, 3), 120, np.uint8)
    depth = np.full((48, 64), 500, np.uint16)
    messages = {"color/image_raw": (ns + color_offset_ns, rm.array_to_image(color, "rgb8", color_header, typestore)),
                "depth/image_raw": (ns, rm.array_to_image(depth, "16UC1", header, typestore)),
                "color/camera_info": (ns, rm.intrinsics_to_camera_info(INTRINSICS, header, typestore))}
    camera_from_gripper = make_transform(translation=(0.0, 0.0, 0.3))
    transforms = [rm.matrix_to_transform_stamped(camera_from_gripper, "camera_color_optical_frame", "gripper_link",
                                                 ns, typestore)]
    transforms += [rm.matrix_to_transform_stamped(np.eye(4), "gripper_link", finger, ns, typestore)
                   for finger in GripperGeometry().finger_frames]
    messages["/tf"] = (ns, typestore.types[rm.TF_MESSAGE](transforms=transforms))
    for topic, (log_ns, msg) in messages.items():
        writer.write(connections[topic], log_ns, typestore.serialize_cdr(msg, connections[topic].msgtype))


def _verdict(typestore, item_id: str, stamps: list[int], decision: int = 0):
    types = typestore.types
    return types[rm.DAMAGE_VERDICT](
        header=rm.header(stamps[-1] if stamps else T0, "gripper_link", typestore), item_id=item_id, sku="SKU-1",
        decision=decision, damage_probability=math.nan, anomaly_score=math.nan, fused_score=0.0, threshold=0.5,
        type_scores=types["damage_perception_interfaces/msg/DamageTypeScores"](
            crush=0.0, tear=0.0, hole=0.0, deconstruction=0.0, spill=0.0, missing_part=0.0),
        num_views=0, view_scores=np.zeros(0, np.float32), view_wrist_angles=np.zeros(0),
        view_stamps=[rm.ns_to_stamp(ns, typestore) for ns in stamps], num_unusable_views=0,
        unusable_view_angles=np.zeros(0), unusable_view_reasons=[], has_damage_location=False,
        damage_location=types["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0), closest_sku="", sku_mismatch=False,
        model_version="geometric-v1", gallery_version="", inspection_seconds=1.0, reason="")


def write_small_bag(path: Path) -> None:
    """Two frames (the second with its colour 5 ms after its depth) and three verdicts: one replayable, one
    naming a frame the bag does not have, one ERROR."""
    typestore = rm.perception_typestore()
    topics = {"color/image_raw": rm.IMAGE, "depth/image_raw": rm.IMAGE, "color/camera_info": rm.CAMERA_INFO,
              "/tf": rm.TF_MESSAGE, "verdict": rm.DAMAGE_VERDICT}
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {t: writer.add_connection(t, m, typestore=typestore) for t, m in topics.items()}
        _write_frame(writer, connections, typestore, T0)
        _write_frame(writer, connections, typestore, T0 + STEP, color_offset_ns=5_000_000)
        for i, (stamps, decision) in enumerate((([T0 + STEP], 2), ([T0, T0 + 3 * STEP], 2), ([], 3))):
            verdict = _verdict(typestore, f"item-{i}", stamps, decision)
            writer.write(connections["verdict"], T0 + 4 * STEP + i, typestore.serialize_cdr(verdict, rm.DAMAGE_VERDICT))


def test_a_missing_frame_is_that_items_error_and_the_others_replay(tmp_path):
    bag = tmp_path / "small_bag"
    write_small_bag(bag)
    cell = RecordedCell(bag)
    assert [v.item_id for v in cell.verdicts] == ["item-0", "item-1", "item-2"]
    assert cell.verdicts[1].view_stamps_ns == (T0, T0 + 3 * STEP)
    setup = ReplaySetup(Inspector(StationSettings(num_views=1, model_path=""), None), rgbd_to_arrays)
    first, missing, error = replay_verdicts(cell, setup)

    assert not first.error and first.num_views == 1 and first.decision is not None   # colour matched within slop
    assert missing.decision is None and not missing.agrees()
    assert "no depth/image_raw message stamped 1700000000.300000000" in missing.error
    assert "0.200 s away" in missing.error
    assert error.skipped and "recorded as ERROR" in error.error
