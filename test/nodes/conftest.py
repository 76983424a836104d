"""Fixtures that start the cell and the node as separate processes, talking over real DDS."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import rclpy

from damage_perception.cell.processes import node_command, ros_environment, start, stop
from damage_perception.core.station import config_file
from damage_perception.nodes.planner_client import PlannerClient


@contextlib.contextmanager
def running(tmp_path: Path, *processes: tuple[str, str | None, dict]):
    """Start ``(module, config, params)`` node processes; stop them (and show their logs on failure)."""
    env = ros_environment(int(os.environ["ROS_DOMAIN_ID"]))
    started = []
    try:
        for module, config, params in processes:
            log = tmp_path / f"{module}.log"
            started.append((start(node_command(module, config_file(config) if config else None, params),
                                  env, log), log))
        yield
    finally:
        for process, _ in started:
            stop(process)
        for process, log in started:
            print(f"--- {log.name} (exit {process.returncode}) ---\n{log.read_text()[-3000:]}")


def make_client(**params) -> PlannerClient:
    """A planner client in the test process with parameter overrides, once the cell and the node are up."""
    overrides = [rclpy.parameter.Parameter(name, value=value) for name, value in params.items()]
    client = PlannerClient(parameter_overrides=overrides)
    assert client.wait_for_cell(), "the node's action server or the cell's service never appeared"
    return client
