"""Start the package's nodes as separate processes (the stand-in for `ros2 launch` where launch is absent)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from damage_perception.core.station import config_file


def node_command(module: str, params_file: Path | None = None, params: dict | None = None) -> list[str]:
    """``python -m damage_perception.nodes.<module> --ros-args ...``."""
    command = [sys.executable, "-m", f"damage_perception.nodes.{module}", "--ros-args"]
    if params_file is not None:
        command += ["--params-file", str(params_file)]
    for name, value in (params or {}).items():
        command += ["-p", f"{name}:={value}"]
    return command


def ros_environment(domain_id: int | None = None) -> dict[str, str]:
    """This environment, kept to this host, with the cell's Fast DDS profile, optionally on a given domain."""
    env = os.environ.copy()
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_file("fastdds.xml")))
    env["PYTHONUNBUFFERED"] = "1"
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    return env


def start(command: list[str], env: dict[str, str], log_path: Path | None = None) -> subprocess.Popen:
    """Start a process in its own process group, its output to ``log_path`` (or inherited)."""
    output = open(log_path, "w") if log_path is not None else None  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT if output else None,
                            start_new_session=True)


def stop(process: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGINT (a clean rclpy shutdown), then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
