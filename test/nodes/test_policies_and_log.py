"""Live policies and the inspection log, with the cell and the node in separate processes over DDS."""
from __future__ import annotations

import os
import signal

from damage_perception_interfaces.msg import DamageVerdict

from damage_perception.cell.processes import node_command, ros_environment, start, stop
from damage_perception.core.station import config_file
from damage_perception.store.database import InspectionStore
from test.nodes.conftest import make_client, running

CELL = ("sim_cell_node", "sim_cell.yaml", {"num_items": 6, "damage_rate": 0.5, "seed": 3})
NODE = ("perception_node", "damage_perception.yaml", {"num_views": 6, "goal_deadline": 25.0})


def test_each_policy_runs_live_within_its_budget(tmp_path, ros_context):
    outcomes = {}
    with running(tmp_path, CELL, NODE):
        for policy in ("fixed", "sequential", "nbv"):
            client = make_client(policy=policy, server_timeout=30.0, item_timeout=40.0)
            outcomes[policy] = client.run_item()
            client.destroy_node()
    for policy, outcome in outcomes.items():
        assert outcome is not None, policy
        verdict = outcome.verdict
        assert verdict.decision != DamageVerdict.ERROR, f"{policy}: {verdict.reason}"
        assert 1 <= verdict.num_views <= 6
    assert outcomes["fixed"].verdict.num_views == 6
    # the sequential test stops as soon as the evidence settles the item (2 views at the least)
    sequential = outcomes["sequential"].verdict
    assert sequential.num_views < 6 or sequential.decision == DamageVerdict.REVIEW


def test_sigkill_of_the_node_loses_no_verdict_a_client_received(tmp_path, ros_context):
    log = tmp_path / "station.db"
    env = ros_environment(int(os.environ["ROS_DOMAIN_ID"]))
    cell = start(node_command(CELL[0], config_file(CELL[1]), CELL[2]), env, tmp_path / "cell.log")
    node = start(node_command(NODE[0], config_file(NODE[1]), {**NODE[2], "num_views": 2,
                                                               "store_path": str(log)}),
                 env, tmp_path / "node.log")
    try:
        client = make_client(server_timeout=30.0, item_timeout=30.0)
        received = [client.run_item() for _ in range(3)]
        os.killpg(node.pid, signal.SIGKILL)
        node.wait()
    finally:
        stop(node)
        stop(cell)
    assert all(outcome is not None for outcome in received)
    store = InspectionStore(log)
    assert store.integrity_ok()
    logged = {record.item_id: record for record in store.inspections()}
    for outcome in received:
        assert outcome.item_id in logged
        assert logged[outcome.item_id].decision == outcome.verdict.decision
