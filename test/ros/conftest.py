"""Fixtures for tests that put messages through real rclpy/DDS.

The DDS isolation (a random ROS_DOMAIN_ID in 100..200, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) is set in
os.environ before any rclpy.init by test/conftest.py; it is repeated here so this folder is isolated even
when collected on its own. Child processes inherit os.environ.
"""
from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(100, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


class RosHarness:
    """An rclpy context of its own, and nodes on it spun by a SingleThreadedExecutor in a thread.

    The thread calls spin_once in a loop and is joined before the executor is shut down and the nodes are
    destroyed, so no callback is in flight at teardown (rclpy's executor shutdown from another thread
    races with running handlers).
    """

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes: list[Node] = []
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    def node(self, name: str, spin: bool = True) -> Node:
        node = rclpy.create_node(name, context=self.context)
        self.nodes.append(node)
        if spin:
            self.executor.add_node(node)
            if self._thread is None:
                self._running.set()
                self._thread = threading.Thread(target=self._spin, daemon=True)
                self._thread.start()
        return node

    def _spin(self) -> None:
        while self._running.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=2.0)
        for node in self.nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def ros() -> Iterator[RosHarness]:
    """rclpy on a private context, with a spinning executor."""
    harness = RosHarness()
    yield harness
    harness.close()


def _wait_for(condition: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()


@pytest.fixture
def wait_for() -> Callable[..., bool]:
    """``wait_for(condition, timeout)``: poll until the condition holds; its final value."""
    return _wait_for
