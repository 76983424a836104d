"""Static checks of what a cell integrator reads: package.xml, console scripts, YAML, URDF (launch files and
worlds: test_launch_files.py)."""
from __future__ import annotations

import importlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import rclpy
import yaml
from catkin_pkg.package import parse_package

from damage_perception.core.gripper import GripperGeometry

ROOT = Path(__file__).resolve().parents[1]


def console_scripts() -> dict[str, str]:
    text = (ROOT / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+) = \{PACKAGE\}\.([\w.]+:main)"', text))


def test_package_manifests_are_valid():
    assert parse_package(str(ROOT / "package.xml")).name == "damage_perception"
    interfaces = parse_package(str(ROOT / "interfaces/damage_perception_interfaces/package.xml"))
    assert interfaces.name == "damage_perception_interfaces"


def test_every_console_script_has_a_main():
    scripts = console_scripts()
    assert {"damage-perception", "damage_perception_node", "sim_cell", "planner_client"} <= set(scripts)
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(f"damage_perception.{module}"), function))


def flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_every_yaml_parameter_is_declared_by_its_node():
    """A typo in a YAML key would be ignored silently by rclpy: catch it here."""
    from damage_perception.nodes.perception_node import DamagePerceptionNode
    from damage_perception.nodes.planner_client import PlannerClient
    from damage_perception.nodes.sim_cell_node import SimCellNode
    nodes = {"damage_perception": DamagePerceptionNode, "sim_cell": SimCellNode, "planner_client": PlannerClient}
    configs = ["damage_perception.yaml", "sim_cell.yaml",
               *(f"cameras/{path.name}" for path in sorted((ROOT / "config/cameras").glob("*.yaml")))]
    assert {"cameras/realsense_d435.yaml", "cameras/orbbec_femto.yaml"} <= set(configs)
    rclpy.init()
    try:
        for config in configs:
            for node_name, section in yaml.safe_load((ROOT / "config" / config).read_text()).items():
                node = nodes[node_name]()
                missing = [k for k in flatten(section["ros__parameters"]) if not node.has_parameter(k)]
                node.destroy_node()
                assert not missing, f"{config}: {node_name} declares no {missing}"
    finally:
        rclpy.shutdown()


def test_urdf_fingers_match_the_gripper_geometry():
    robot = ET.parse(ROOT / "urdf/inspection_cell.urdf").getroot()
    gripper = GripperGeometry()
    for link in ("gripper_left_finger", "gripper_right_finger"):
        box = robot.find(f"link[@name='{link}']/collision/geometry/box")
        np.testing.assert_allclose([float(v) for v in box.get("size").split()], gripper.finger_size)
    left = robot.find("joint[@name='left_finger_joint']/origin")
    expected = gripper.finger_transforms(0.0)[0][:3, 3]
    np.testing.assert_allclose([float(v) for v in left.get("xyz").split()], expected)
    assert set(gripper.finger_frames) <= {link.get("name") for link in robot.findall("link")}
