"""Test-wide settings: keep DDS traffic of this run on this host and on a domain of its own."""
import os
import random

import pytest
import rclpy

from damage_perception.store.throwaway_postgres import ThrowawayPostgres

# Set before any rclpy.init in this process and inherited by the nodes the tests start.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(100, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
# Large camera frames otherwise delay reliable /tf by seconds (see config/fastdds.xml).
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE",
                      os.path.join(os.path.dirname(__file__), "..", "config", "fastdds.xml"))


@pytest.fixture
def ros_context():
    """rclpy initialised for the test process."""
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="session")
def postgres_server():
    """One throw-away PostgreSQL server for the whole run (started on first use, removed at the end)."""
    server = ThrowawayPostgres().start()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
    """Where a store lives, once per backend: a fresh SQLite file, or a fresh database on the test server."""
    if request.param == "sqlite":
        return str(tmp_path / "station.db")
    return request.getfixturevalue("postgres_server").create_database()


@pytest.fixture(autouse=True)
def torch_threads():
    """Each test starts from the process's torch threads: a tool run in-process (``cli.main``) sets torch to
    its inference threads (one, beside ONNX Runtime), which would slow the training tests that follow."""
    import torch
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
