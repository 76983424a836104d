"""A fleet: three stations (a sim cell and a perception node each, separate processes, real DDS) sharing one
PostgreSQL server that is killed and restarted mid-run, with an enrolment and a rollback while they inspect.

Each station lives in its own namespace (``/stN``, its TF remapped to ``/stN/tf``) on this test's domain.
Every verdict a client received must be on the server exactly once, in that station's order.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import rclpy
import yaml
from damage_perception_interfaces.msg import DamageVerdict
from damage_perception_interfaces.srv import EnrolSku, PresentItem, RollbackGallery
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from damage_perception.cell.processes import (
    config_file,
    node_command,
    ros_environment,
    start,
    stop,
)
from damage_perception.nodes.planner_client import PlannerClient
from damage_perception.store.database import InspectionStore
from damage_perception.store.throwaway_postgres import ThrowawayPostgres
from test.nodes.test_gallery_services import call

STATIONS = ("st1", "st2", "st3")
CELL_PARAMS = {"num_items": 3, "damage_rate": 0.0, "seed": 11, "rate_hz": 5.0}  # one catalogue at every station
NODE_PARAMS = {"num_views": 2, "goal_deadline": 40.0, "enrol_num_views": 4}
TIMEOUT = 120.0


def namespaced_params(source: Path, node: str, station: str, out: Path) -> Path:
    """The package's parameter file for ``node`` under ``/station`` (a params file names nodes fully)."""
    params = yaml.safe_load(source.read_text())[node]
    path = out / f"{station}-{node}.yaml"
    path.write_text(yaml.safe_dump({f"/{station}/{node}": params}))
    return path


def station_command(module: str, node: str, config: str, station: str, params: dict, tmp: Path) -> list[str]:
    remaps = ["-r", f"__ns:=/{station}", "-r", f"/tf:=/{station}/tf", "-r", f"/tf_static:=/{station}/tf_static"]
    return node_command(module, namespaced_params(config_file(config), node, station, tmp), params) + remaps


class Station:
    """One station's processes and the planner client that drives it from the test."""

    def __init__(self, name: str, url: str, tmp: Path, env: dict) -> None:
        self.name, self.tmp, self.env = name, tmp, env
        self.node_params = {**NODE_PARAMS, "store_path": url, "station_id": name,
                            "store_outbox": str(tmp / f"outbox-{name}.db")}
        self.cell = start(station_command("sim_cell_node", "sim_cell", "sim_cell.yaml", name, CELL_PARAMS, tmp),
                          env, tmp / f"{name}-cell.log")
        self.node = self.start_node()
        self.client = PlannerClient(namespace=f"/{name}", parameter_overrides=[
            rclpy.parameter.Parameter("server_timeout", value=TIMEOUT),
            rclpy.parameter.Parameter("item_timeout", value=TIMEOUT)])
        self.received: list[DamageVerdict] = []

    def start_node(self):
        return start(station_command("perception_node", "damage_perception", "damage_perception.yaml", self.name,
                                     self.node_params, self.tmp), self.env, self.tmp / f"{self.name}-node.log")

    def inspect(self) -> DamageVerdict:
        assert self.client.wait_for_cell(), f"{self.name}: the node or the cell never appeared"
        outcome = self.client.run_item(index=0)
        assert outcome is not None, f"{self.name}: no verdict"
        self.received.append(outcome.verdict)
        return outcome.verdict

    def service(self, kind, name: str, request):
        return call(self.client, self.client.create_client(kind, f"/{self.name}/damage_perception/{name}"),
                    request, TIMEOUT)

    def enrol(self, note: str) -> tuple[str, EnrolSku.Response]:
        sku = call(self.client, self.client.present, PresentItem.Request(index=0)).sku
        return sku, self.service(EnrolSku, "enrol_sku", EnrolSku.Request(sku=sku, num_views=0, note=note))

    def kill_node(self, timeout: float = 60.0) -> None:
        """SIGKILL the node and wait until its action server has left the graph (its DDS lease expired:
        a goal sent before would go to the dead server and nowhere else)."""
        os.killpg(self.node.pid, signal.SIGKILL)
        self.node.wait()
        deadline = time.monotonic() + timeout
        while self.client.inspect.server_is_ready() and time.monotonic() < deadline:
            rclpy.spin_once(self.client, timeout_sec=0.2)
        assert not self.client.inspect.server_is_ready(), f"{self.name}: the killed node never left the graph"

    def stop(self) -> None:
        self.client.destroy_node()
        for process in (self.node, self.cell):
            stop(process)


def wait_for_store_status(level: int, station: str, after_ns: int, timeout: float = 60.0) -> DiagnosticStatus:
    """The first store status of ``station`` at ``level`` on /diagnostics stamped after ``after_ns``."""
    listener = rclpy.create_node("fleet_diagnostics_listener")
    found: list[DiagnosticStatus] = []

    def on_array(array: DiagnosticArray) -> None:
        stamp = array.header.stamp.sec * 1_000_000_000 + array.header.stamp.nanosec
        found.extend(s for s in array.status if stamp > after_ns and s.name.endswith(": store")
                     and s.hardware_id == station and s.level == level)

    listener.create_subscription(DiagnosticArray, "/diagnostics", on_array, 10)
    deadline = time.monotonic() + timeout
    while not found and time.monotonic() < deadline:
        rclpy.spin_once(listener, timeout_sec=0.5)
    listener.destroy_node()
    assert found, f"{station}: no store status at level {level!r} on /diagnostics within {timeout} s"
    return found[0]


def server_log(url: str, station: str) -> list[tuple[str, str, int]]:
    server = InspectionStore(url)
    try:
        return [(r.item_id, r.gallery_version, r.decision)
                for r in reversed(server.inspections(station=station, limit=10_000))]
    finally:
        server.close()


def test_three_stations_share_one_server_through_a_crash_an_enrolment_and_a_rollback(tmp_path, ros_context):
    env = ros_environment(int(os.environ["ROS_DOMAIN_ID"]))
    server = ThrowawayPostgres().start()
    stations = []
    try:
        stations = [Station(name, server.url, tmp_path, env) for name in STATIONS]
        sku, first = stations[0].enrol("first packaging")
        assert first.success and first.version == 1, first.message
        for station in stations:   # every station judges with the enrolment made at one of them
            assert station.inspect().gallery_version == f"{sku}@v1"

        _, second = stations[0].enrol("new packaging")   # mid-run, while the other stations go on inspecting
        assert second.success and second.version == 2, second.message
        for station in stations:
            assert station.inspect().gallery_version == f"{sku}@v2"

        killed_ns = rclpy.clock.Clock().now().nanoseconds
        server.kill()
        for station in stations:   # no server: verdicts still come, judged with the gallery last read
            verdict = station.inspect()
            assert verdict.decision != DamageVerdict.ERROR, verdict.reason
            assert verdict.gallery_version == f"{sku}@v2"
        status = wait_for_store_status(DiagnosticStatus.WARN, "st1", killed_ns)
        assert "unreachable" in status.message and "galleries last read" in status.message
        refused = stations[1].service(RollbackGallery, "rollback_gallery", RollbackGallery.Request(sku=sku, version=1))
        assert not refused.success and "unreachable" in refused.message

        third = stations[2]   # and a station dies too, with verdicts only in its outbox
        third.kill_node()
        server.start()
        third.node = third.start_node()
        restarted_ns = rclpy.clock.Clock().now().nanoseconds
        for station in stations:   # a station reads the server again once it has seen it back (diagnostics OK)
            wait_for_store_status(DiagnosticStatus.OK, station.name, restarted_ns)

        rolled = stations[1].service(RollbackGallery, "rollback_gallery", RollbackGallery.Request(sku=sku, version=1))
        assert rolled.success and rolled.active_version == 1, rolled.message
        for station in stations:   # the rollback at st2 counts at every station from its next item
            assert station.inspect().gallery_version == f"{sku}@v1"

        for station in stations:
            expected = [(v.item_id, v.gallery_version, v.decision) for v in station.received]
            deadline = time.monotonic() + 60
            while server_log(server.url, station.name) != expected and time.monotonic() < deadline:
                time.sleep(0.2)   # forwarding is asynchronous: wait for the outbox to drain
            assert server_log(server.url, station.name) == expected, station.name   # once each, in order
    finally:
        for station in stations:
            station.stop()
        for name in STATIONS:
            for log in sorted(tmp_path.glob(f"{name}-*.log")):
                print(f"--- {log.name} ---\n{log.read_text()[-2500:]}")
        server.close()
