"""The node's gallery services over DDS with the sim cell: enrol the held item, roll back, report a label."""
from __future__ import annotations

import io
import json
import sqlite3

import numpy as np
import rclpy
from damage_perception_interfaces.action import InspectItem
from damage_perception_interfaces.srv import EnrolSku, PresentItem, ReportLabel, RollbackGallery

from damage_perception.core.damage_model import DamageModel
from damage_perception.core.gallery import NOMINAL_KEY
from damage_perception.core.registered_comparison import LEARNED_SIGNAL, PRISTINE
from damage_perception.core.station import SHIPPED_MODEL_FILE
from test.nodes.conftest import make_client, running

CELL = ("sim_cell_node", "sim_cell.yaml", {"num_items": 3, "damage_rate": 0.0, "seed": 11})
NODE_PARAMS = {"num_views": 2, "goal_deadline": 30.0, "enrol_num_views": 4}
TIMEOUT = 90.0


def call(node, client, request, timeout: float = TIMEOUT):
    """Call a service from the test's node and wait for the answer."""
    assert client.wait_for_service(timeout_sec=30.0), f"{client.srv_name} never appeared"
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    assert future.done(), f"no answer from {client.srv_name} within {timeout} s"
    return future.result()


def test_enrol_rollback_and_label_through_the_node(tmp_path, ros_context):
    store_path = tmp_path / "station.db"
    # review.keep_pass_fraction 1: every item's views are kept for the review station, PASS ones too
    node = ("perception_node", "damage_perception.yaml", {**NODE_PARAMS, "store_path": str(store_path),
                                                          "review.keep_pass_fraction": 1.0})
    with running(tmp_path, CELL, node):
        planner = make_client(server_timeout=40.0, item_timeout=TIMEOUT)
        enrol = planner.create_client(EnrolSku, "/damage_perception/enrol_sku")
        rollback = planner.create_client(RollbackGallery, "/damage_perception/rollback_gallery")
        label = planner.create_client(ReportLabel, "/damage_perception/report_label")

        def enrol_item(index: int, note: str):
            presented = call(planner, planner.present, PresentItem.Request(index=index))
            return presented.sku, call(planner, enrol, EnrolSku.Request(sku=presented.sku, num_views=0, note=note))

        sku, first = enrol_item(0, "first packaging")
        assert first.success and first.version == 1, first.message
        assert 2 <= first.views_used <= 4
        after_first = planner.run_item(index=0).verdict
        assert after_first.sku == sku and after_first.gallery_version == f"{sku}@v1", after_first.reason

        _, second = enrol_item(0, "new packaging")
        assert second.success and second.version == 2, second.message
        assert planner.run_item(index=0).verdict.gallery_version == f"{sku}@v2"

        rolled = call(planner, rollback, RollbackGallery.Request(sku=sku, version=1))
        assert rolled.success and rolled.active_version == 1, rolled.message
        after_rollback = planner.run_item(index=0).verdict
        assert after_rollback.gallery_version == f"{sku}@v1"

        unknown = call(planner, rollback, RollbackGallery.Request(sku=sku, version=9))
        assert not unknown.success and "no gallery version 9" in unknown.message and unknown.active_version == 1

        labelled = call(planner, label, ReportLabel.Request(item_id=after_rollback.item_id, damaged=True,
                                                            damage_type="crush", labeller="qa-anna"))
        assert labelled.success, labelled.message
        typo = call(planner, label, ReportLabel.Request(item_id="no-such-item", damaged=True))
        assert not typo.success and "no logged inspection of item 'no-such-item'" in typo.message, typo.message
        kept = call(planner, label, ReportLabel.Request(item_id="no-such-item", damaged=True, keep_unlinked=True))
        assert kept.success and "kept unlinked" in kept.message, kept.message

        # An empty gripper, a missing SKU and an enrolment during an inspection are refused with the reason.
        call(planner, planner.present, PresentItem.Request(empty_gripper=True))
        empty = call(planner, enrol, EnrolSku.Request(sku=sku, num_views=2))
        assert not empty.success and "no item in the gripper" in empty.message and empty.version == 0
        nameless = call(planner, enrol, EnrolSku.Request(sku="", num_views=2))
        assert not nameless.success and "no SKU" in nameless.message

        call(planner, planner.present, PresentItem.Request(index=1))
        sent = planner.inspect.send_goal_async(InspectItem.Goal(item_id="busy-check", sku=sku),
                                               feedback_callback=planner._on_feedback)
        handle = planner._wait(sent)
        assert handle is not None and handle.accepted
        busy = call(planner, enrol, EnrolSku.Request(sku=sku, num_views=2))
        assert not busy.success and "inspection" in busy.message, busy.message
        result = planner._wait(handle.get_result_async())
        assert result is not None and result.result.verdict.item_id == "busy-check"

    with sqlite3.connect(store_path) as db:  # what the node committed, read without our store code
        versions = db.execute("SELECT version, active, note, num_views FROM gallery_versions WHERE sku = ? "
                              "ORDER BY version", (sku,)).fetchall()
        labels = db.execute("SELECT l.item_id, l.damaged, l.damage_type, l.labeller, i.gallery_version "
                            "FROM labels l JOIN inspections i ON i.id = l.inspection_id").fetchall()
        kept = db.execute("SELECT i.item_id, COUNT(v.view_index), SUM(v.crop IS NOT NULL) FROM inspections i "
                          "JOIN kept_items k ON k.inspection_id = i.id JOIN kept_views v ON v.inspection_id = i.id "
                          "GROUP BY i.id ORDER BY i.id").fetchall()
        inspected = db.execute("SELECT item_id FROM inspections ORDER BY id").fetchall()
        references = db.execute("SELECT g.version, COUNT(m.view_index) FROM reference_media m JOIN gallery_versions g "
                                "ON g.id = m.gallery_id WHERE g.sku = ? GROUP BY g.version ORDER BY g.version",
                                (sku,)).fetchall()
        crop = db.execute("SELECT crop FROM kept_views WHERE crop IS NOT NULL LIMIT 1").fetchone()[0]
        posed = db.execute("SELECT g.version, COUNT(r.id), COUNT(r.posed), COUNT(g.registered_nominal) FROM "
                           "reference_views r JOIN gallery_versions g ON g.id = r.gallery_id WHERE g.sku = ? "
                           "GROUP BY g.version ORDER BY g.version", (sku,)).fetchall()
        nominal = db.execute("SELECT registered_nominal FROM gallery_versions WHERE version = 1").fetchone()[0]
        blob = db.execute("SELECT r.posed FROM reference_views r JOIN gallery_versions g ON g.id = r.gallery_id "
                          "WHERE g.version = 1 ORDER BY r.id LIMIT 1").fetchone()[0]
        first_views = [json.loads(scores) for (scores,) in db.execute(
            "SELECT v.scores FROM kept_views v WHERE v.found = 1 AND v.inspection_id = "
            "(SELECT MIN(id) FROM inspections)").fetchall()]
    assert versions == [(1, 1, "first packaging", first.views_used), (2, 0, "new packaging", second.views_used)]
    assert labels == [(after_rollback.item_id, 1, "crush", "qa-anna", f"{sku}@v1")]
    # the review station's media: every inspected item's views (2 each, the item found in both) ...
    assert [(item_id, views, crops) for item_id, views, crops in kept] == [(i, 2, 2) for (i,) in inspected]
    assert crop[:2] == b"\xff\xd8"   # a JPEG
    # ... and each gallery version's enrolment crops, one per reference view
    assert references == [(1, first.views_used), (2, second.views_used)]
    # The registered comparison live: every reference view was stored with its crop and camera, each version
    # with its registered nominal ...
    assert posed == [(1, first.views_used, first.views_used, first.views_used),
                     (2, second.views_used, second.views_used, second.views_used)]
    shipped = DamageModel.load(SHIPPED_MODEL_FILE)
    learned = {LEARNED_SIGNAL} if shipped.comparator is not None else set()
    # ... kept with the key of the model that measured it, so another comparator reads the gallery as stale
    nominal = json.loads(nominal)
    assert set(nominal) == set(PRISTINE) | learned | {NOMINAL_KEY}
    assert nominal[NOMINAL_KEY] == shipped.nominal_key
    with np.load(io.BytesIO(blob)) as crop_data:
        assert crop_data["color"].shape == (160, 160, 3) and crop_data["camera_from_gripper"].shape == (4, 4)
    # ... and the first inspection's views were compared with them: computed reg_* signals, not the defaults
    assert len(first_views) == 2
    for scores in first_views:
        assert scores["signal.reg_computed"] == 1.0, scores
        assert {name: scores[f"signal.{name}"] for name in PRISTINE} != PRISTINE
        assert 0.0 < scores["signal.reg_overlap"] < 1.0, scores


def test_without_a_store_or_a_model_every_service_says_why(tmp_path, ros_context):
    # '""' is how an empty string is written on the command line (store_path is empty in the YAML too)
    for params, words in (({"store_path": '""'}, "no store configured"),
                          ({"store_path": str(tmp_path / "s.db"), "model_path": '""'}, "no damage model")):
        node = ("perception_node", "damage_perception.yaml", {**NODE_PARAMS, **params})
        with running(tmp_path, node):
            probe = rclpy.create_node("gallery_probe")
            answer = call(probe, probe.create_client(EnrolSku, "/damage_perception/enrol_sku"),
                          EnrolSku.Request(sku="SKU-X", num_views=2))
            assert not answer.success and words in answer.message, answer.message
            if params["store_path"] == '""':
                rolled = call(probe, probe.create_client(RollbackGallery, "/damage_perception/rollback_gallery"),
                              RollbackGallery.Request(sku="SKU-X", version=1))
                labelled = call(probe, probe.create_client(ReportLabel, "/damage_perception/report_label"),
                                ReportLabel.Request(item_id="i-1", damaged=False))
                assert not rolled.success and not labelled.success
                assert words in rolled.message and words in labelled.message
            probe.destroy_node()
