"""The node's ``/diagnostics``: its inputs (frame counters, whether frames arrive) and its store (a fleet:
server reachable or not, outbox backlog), as one DiagnosticArray."""
from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from damage_perception.ros.camera_input import CameraInput
from damage_perception.store.station_store import StationStore

FRESH_SECONDS = 2.0  # frames older than this turn the inputs' status to WARN


def _key_values(values: dict) -> list[KeyValue]:
    return [KeyValue(key=str(key), value=str(value)) for key, value in values.items()]


def inputs_status(node_name: str, camera: CameraInput, counters: dict) -> DiagnosticStatus:
    """Frame and goal counters; WARN with the camera's diagnosis when no frames arrive."""
    fresh = camera.fresh(FRESH_SECONDS)
    return DiagnosticStatus(name=f"{node_name}: inputs", hardware_id="",
                            level=DiagnosticStatus.OK if fresh else DiagnosticStatus.WARN,
                            message="frames arriving" if fresh else camera.monitor.diagnose(FRESH_SECONDS),
                            values=_key_values({**camera.diagnostic_values(), **counters}))


def store_statuses(node_name: str, store: StationStore) -> list[DiagnosticStatus]:
    """The store's state, when there is a store (none: no status)."""
    health = store.health()
    if health is None:
        return []
    return [DiagnosticStatus(name=f"{node_name}: store", hardware_id=store.station_id,
                             level=DiagnosticStatus.OK if health.ok else DiagnosticStatus.WARN,
                             message=health.message, values=_key_values(health.values))]


def diagnostics_array(node_name: str, camera: CameraInput, counters: dict, store: StationStore,
                      stamp: Time) -> DiagnosticArray:
    """Everything the node reports once a second."""
    array = DiagnosticArray(status=[inputs_status(node_name, camera, counters), *store_statuses(node_name, store)])
    array.header.stamp = stamp
    return array
