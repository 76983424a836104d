"""Test-wide settings: keep DDS traffic of this run on this host and on a domain of its own."""
import os
import random

import pytest
import rclpy

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
