"""Static checks of launch/*.launch.py and worlds/*.sdf (launch, launch_ros and Gazebo are not installable here).

Every launch file parses; every package it starts or includes is this one or a known external one; every
executable of this package is a console script; every file it names in this package's share exists and is
installed by setup.py. The Gazebo launch bridges exactly the topics the node subscribes to (with the right
types, from topics the world's camera publishes) and runs every node on simulated time; the world's camera
agrees with the URDF, the node's parameters and the simulated camera.
"""
from __future__ import annotations

import ast
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from damage_perception.core.transforms import transform_from_xyz_rpy
from damage_perception.sim.scene import OPTICAL_FROM_LINK_RPY, SceneConfig

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "damage_perception"
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
WORLDS = sorted((ROOT / "worlds").glob("*.sdf"))
# Packages a launch file may start or include besides this one, and the executables it may run from them
# (exec dependencies of the Gazebo launch; not installable in this environment, so only their names are checked).
EXTERNAL_PACKAGES = {"ros_gz_sim": set(), "ros_gz_bridge": {"parameter_bridge"},
                     "robot_state_publisher": {"robot_state_publisher"}}
CAMERA_INPUTS = {"color_topic": "sensor_msgs/msg/Image", "depth_topic": "sensor_msgs/msg/Image",
                 "camera_info_topic": "sensor_msgs/msg/CameraInfo"}
# What a gz rgbd_camera sensor publishes under its <topic> (gz-sensors RgbdCameraSensor), as ROS types.
RGBD_OUTPUTS = {"image": "sensor_msgs/msg/Image", "depth_image": "sensor_msgs/msg/Image",
                "camera_info": "sensor_msgs/msg/CameraInfo", "points": "sensor_msgs/msg/PointCloud2"}
# The node input each gz output must feed: colour to colour, depth to depth, camera_info to camera_info.
FEEDS = {"image": "color_topic", "depth_image": "depth_topic", "camera_info": "camera_info_topic"}
BRIDGE_ARGUMENT = re.compile(r"^(?P<topic>[^@\[\]]+)@(?P<ros_type>[\w/]+)(?P<direction>[@\[\]])(?P<gz_type>[\w.]+)$")


# -- reading launch files -------------------------------------------------------------------------------------
def call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        return getattr(node.func, "id", None) or getattr(node.func, "attr", None)
    return None


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if call_name(node) == name]


def keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {kw.arg: kw.value for kw in call.keywords}


def assignments(tree: ast.AST) -> dict[str, ast.expr]:
    """Simple `name = value` assignments anywhere in the file (launch files are one function deep)."""
    return {node.targets[0].id: node.value for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}


def resolve(node: ast.expr, names: dict[str, ast.expr]) -> ast.expr:
    while isinstance(node, ast.Name) and node.id in names:
        node = names[node.id]
    return node


def constant(node: ast.expr, names: dict[str, ast.expr]):
    """The literal value of ``node`` (following names), or None when it is built at launch time."""
    try:
        return ast.literal_eval(resolve(node, names))
    except ValueError:
        return None


def share_path(call: ast.expr, names: dict[str, ast.expr]) -> tuple[str, str] | None:
    """(package, glob pattern) of PathJoinSubstitution([FindPackageShare(pkg), ...]), parts computed at launch
    time (LaunchConfiguration) as '*'; None for any other expression."""
    call = resolve(call, names)
    if call_name(call) != "PathJoinSubstitution":
        return None
    parts = call.args[0].elts
    head = resolve(parts[0], names)
    if call_name(head) == "PathJoinSubstitution":  # a folder of a share joined further
        base = share_path(head, names)
        if base is None:
            return None
        package, pattern = base[0], [base[1]]
    elif call_name(head) == "FindPackageShare":
        package, pattern = ast.literal_eval(head.args[0]), []
    else:
        return None
    for part in parts[1:]:
        items = part.elts if isinstance(part, ast.List) else [part]
        pattern.append("".join(v if isinstance(v := constant(item, names), str) else "*" for item in items))
    return package, "/".join(pattern)


def share_paths(tree: ast.AST) -> list[tuple[str, str]]:
    """share_path of every PathJoinSubstitution in the file."""
    names = assignments(tree)
    return [path for call in calls(tree, "PathJoinSubstitution") if (path := share_path(call, names))]


def dict_entries(node: ast.expr, names: dict[str, ast.expr]) -> dict | None:
    """The constant keys of a dict literal with their values (None where computed at launch time)."""
    node = resolve(node, names)
    if not isinstance(node, ast.Dict):
        return None
    return {constant(k, names): constant(v, names) for k, v in zip(node.keys, node.values) if k is not None}


def launch_nodes(tree: ast.AST) -> list[dict[str, ast.expr]]:
    return [keywords(call) for call in calls(tree, "Node")]


def console_scripts() -> set[str]:
    return set(re.findall(r'"([\w-]+) = \{PACKAGE\}\.[\w.]+:main"', (ROOT / "setup.py").read_text()))


def installed_share_files() -> set[str]:
    """Paths relative to share/damage_perception of every file setup.py's data_files installs there."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    setup_call = next(call for call in calls(tree, "setup"))
    data_files = keywords(setup_call)["data_files"]

    def glob(pattern: str) -> list[str]:
        return sorted(str(path.relative_to(ROOT)) for path in ROOT.glob(pattern))

    entries = eval(compile(ast.Expression(data_files), "setup.py", "eval"),  # noqa: S307 - our own setup.py
                   {"__builtins__": {}, "PACKAGE": PACKAGE, "glob": glob})
    prefix = f"share/{PACKAGE}"
    installed = set()
    for destination, files in entries:
        if destination == prefix or destination.startswith(prefix + "/"):
            installed |= {f"{destination[len(prefix) + 1:]}/{Path(name).name}".lstrip("/") for name in files}
    return installed


def node_inputs(node: dict[str, ast.expr], names: dict[str, ast.expr]) -> dict[str, str]:
    """Fully qualified camera topics the damage_perception node of a launch file subscribes to."""
    values: dict[str, str] = {}
    for item in resolve(node["parameters"], names).elts:
        item = resolve(item, names)
        if isinstance(item, ast.Dict):
            values.update({k: v for k, v in dict_entries(item, names).items() if k in CAMERA_INPUTS})
        elif (path := share_path(item, names)) is not None:
            package, pattern = path
            assert package == PACKAGE and "*" not in pattern, "parameter files of the node must be named outright"
            params = yaml.safe_load((ROOT / pattern).read_text())["damage_perception"]["ros__parameters"]
            values.update({k: params[k] for k in CAMERA_INPUTS if k in params})
        else:
            pytest.fail(f"cannot read the node's parameters statically: {ast.dump(item)}")
    remap = dict(constant(node["remappings"], names) or []) if "remappings" in node else {}
    namespace = constant(node["namespace"], names) if "namespace" in node else ""
    assert set(values) == set(CAMERA_INPUTS), f"camera topics not all set: {values}"

    def qualified(topic: str) -> str:
        topic = remap.get(topic, topic)
        return topic if topic.startswith("/") else "/" + "/".join(p for p in (namespace.strip("/"), topic) if p)

    return {key: qualified(topic) for key, topic in values.items()}


# -- the launch files -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_parses_and_starts_known_packages(launch_file):
    tree = ast.parse(launch_file.read_text())
    assert any(isinstance(node, ast.FunctionDef) and node.name == "generate_launch_description"
               for node in tree.body)
    names = assignments(tree)
    nodes = launch_nodes(tree)
    assert nodes, "a launch file starts at least one node"
    for node in nodes:
        package, executable = constant(node["package"], names), constant(node["executable"], names)
        if package == PACKAGE:
            assert executable in console_scripts(), f"{executable} is not a console script of setup.py"
        else:
            assert package in EXTERNAL_PACKAGES, f"unknown package {package}: add it to EXTERNAL_PACKAGES"
            assert executable in EXTERNAL_PACKAGES[package], f"{package} has no executable {executable}"
    for package, _ in share_paths(tree):
        assert package == PACKAGE or package in EXTERNAL_PACKAGES, package


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_files_that_exist_and_are_installed(launch_file):
    tree = ast.parse(launch_file.read_text())
    installed = installed_share_files()
    own = [pattern for package, pattern in share_paths(tree) if package == PACKAGE]
    for pattern in own:
        found = sorted(str(path.relative_to(ROOT)) for path in ROOT.glob(pattern))
        assert found, f"{pattern} names nothing in the package"
        missing = [name for name in found if (ROOT / name).is_file() and name not in installed
                   or (ROOT / name).is_dir() and not any(f.startswith(name + "/") for f in installed)]
        assert not missing, f"setup.py data_files does not install {missing}"
    for name in re.findall(r'"([\w]+\.(?:yaml|sdf|urdf))"', launch_file.read_text()):
        assert any(pattern.endswith("/" + name) for pattern in own), f"{name} not found through FindPackageShare"


def test_every_package_file_a_user_reaches_is_installed():
    """The launch files, parameter files, camera presets, URDF and worlds all reach share/damage_perception."""
    installed = installed_share_files()
    for pattern in ("launch/*.launch.py", "config/*.yaml", "config/cameras/*.yaml", "urdf/*", "worlds/*.sdf"):
        files = [str(path.relative_to(ROOT)) for path in ROOT.glob(pattern)]
        assert files and set(files) <= installed, pattern


GAZEBO_LAUNCH_FILES = [path for path in LAUNCH_FILES if "ros_gz_sim" in path.read_text()]


def test_there_is_a_gazebo_launch_file():
    assert [path.name for path in GAZEBO_LAUNCH_FILES] == ["gazebo_cell.launch.py"]


@pytest.mark.parametrize("launch_file", GAZEBO_LAUNCH_FILES, ids=lambda p: p.name)
def test_gazebo_bridge_feeds_exactly_the_node_inputs(launch_file):
    tree = ast.parse(launch_file.read_text())
    names = assignments(tree)
    nodes = launch_nodes(tree)
    bridges = [n for n in nodes if constant(n["executable"], names) == "parameter_bridge"]
    perception = [n for n in nodes if constant(n["package"], names) == PACKAGE]
    assert len(bridges) == 1 and len(perception) == 1
    bridge = bridges[0]
    inputs = node_inputs(perception[0], names)

    (world_package, world_pattern), = [p for p in share_paths(tree) if p[1].endswith(".sdf")]
    assert world_package == PACKAGE
    published = {"/clock": ("rosgraph_msgs/msg/Clock", None)}
    for sensor in ET.parse(ROOT / world_pattern).getroot().iter("sensor"):
        if sensor.get("type") == "rgbd_camera":
            base = "/" + sensor.findtext("topic").strip().strip("/")
            published.update({f"{base}/{suffix}": (ros_type, suffix) for suffix, ros_type in RGBD_OUTPUTS.items()})

    remap = dict(constant(bridge.get("remappings", ast.List(elts=[])), names))
    bridged = {}
    for argument in constant(bridge["arguments"], names):
        match = BRIDGE_ARGUMENT.match(argument)
        assert match, f"not a parameter_bridge argument: {argument}"
        gz_topic = match["topic"]
        assert gz_topic in published, f"the world publishes no {gz_topic}"
        ros_type, output = published[gz_topic]
        assert match["ros_type"] == ros_type, f"{gz_topic} carries {ros_type}, not {match['ros_type']}"
        assert match["direction"] == "[", f"{gz_topic} must be bridged from Gazebo to ROS only ('[')"
        bridged[remap.get(gz_topic, gz_topic)] = (match["ros_type"], output)

    assert set(bridged) - {"/clock"} == set(inputs.values()), (
        f"bridged {sorted(bridged)} but the node subscribes to {sorted(inputs.values())}")
    assert "/clock" in bridged, "simulated time needs the /clock bridge"
    for key, topic in inputs.items():
        ros_type, output = bridged[topic]
        assert ros_type == CAMERA_INPUTS[key], f"{topic}: node expects {CAMERA_INPUTS[key]}, bridge gives {ros_type}"
        assert FEEDS[output] == key, f"gz {output} is bridged to the node's {key} ({topic})"


@pytest.mark.parametrize("launch_file", GAZEBO_LAUNCH_FILES, ids=lambda p: p.name)
def test_gazebo_launch_runs_every_node_on_sim_time(launch_file):
    tree = ast.parse(launch_file.read_text())
    names = assignments(tree)
    for node in launch_nodes(tree):
        dicts = [dict_entries(item, names) for item in resolve(node.get("parameters", ast.List(elts=[])), names).elts]
        sim_time = [d["use_sim_time"] for d in dicts if d and "use_sim_time" in d]
        assert sim_time == [True], f"{constant(node['package'], names)} does not run on simulated time"


@pytest.mark.parametrize("launch_file", GAZEBO_LAUNCH_FILES, ids=lambda p: p.name)
def test_gazebo_launch_publishes_the_urdf(launch_file):
    tree = ast.parse(launch_file.read_text())
    names = assignments(tree)
    publishers = [n for n in launch_nodes(tree) if constant(n["package"], names) == "robot_state_publisher"]
    assert len(publishers) == 1
    text = ast.unparse(publishers[0]["parameters"])
    assert "robot_description" in text and "urdf" in text
    assert (PACKAGE, "urdf/inspection_cell.urdf") in share_paths(tree)


# -- the Gazebo world -------------------------------------------------------------------------------------------
def pose_matrix(element: ET.Element | None) -> np.ndarray:
    text = element.findtext("pose") if element is not None else None
    values = [float(v) for v in text.split()] if text else [0.0] * 6
    return transform_from_xyz_rpy(values[:3], values[3:])


def urdf_joint(child: str) -> ET.Element:
    robot = ET.parse(ROOT / "urdf/inspection_cell.urdf").getroot()
    joint = robot.find(f"joint/child[@link='{child}']/..")
    assert joint is not None, f"no URDF joint has child {child}"
    return joint


def origin_matrix(joint: ET.Element) -> np.ndarray:
    origin = joint.find("origin")
    return transform_from_xyz_rpy([float(v) for v in origin.get("xyz", "0 0 0").split()],
                                  [float(v) for v in origin.get("rpy", "0 0 0").split()])


@pytest.fixture(params=WORLDS, ids=lambda p: p.name)
def world(request) -> ET.Element:
    return ET.parse(request.param).getroot()


def camera_sensor(world: ET.Element) -> tuple[ET.Element, ET.Element, ET.Element]:
    """(model, link, sensor) of the world's one rgbd_camera."""
    found = [(model, link, sensor) for model in world.iter("model") for link in model.iter("link")
             for sensor in link.iter("sensor") if sensor.get("type") == "rgbd_camera"]
    assert len(found) == 1, "the cell has one RGB-D camera"
    return found[0]


def test_world_is_sdf_1_9_or_newer_with_a_rendering_sensors_system(world):
    assert tuple(int(v) for v in world.get("version").split(".")) >= (1, 9)
    plugins = {plugin.get("name") for plugin in world.iter("plugin")}
    assert "gz::sim::systems::Sensors" in plugins, "without the Sensors system no camera renders"
    assert world.find("world/light") is not None


def test_world_camera_sits_at_the_urdf_camera_mount(world):
    model, link, sensor = camera_sensor(world)
    assert sensor.get("name") == "rgbd_camera"
    world_from_sensor = pose_matrix(model) @ pose_matrix(link) @ pose_matrix(sensor)
    mount = urdf_joint(link.get("name"))
    assert mount.find("parent").get("link") == "world"
    np.testing.assert_allclose(world_from_sensor, origin_matrix(mount), atol=1e-6)


def test_world_camera_frame_is_the_urdf_optical_frame_the_node_uses(world):
    _, link, sensor = camera_sensor(world)
    frame = sensor.findtext("gz_frame_id")
    node = yaml.safe_load((ROOT / "config/damage_perception.yaml").read_text())["damage_perception"]
    assert frame == node["ros__parameters"]["camera_frame"]
    optical = urdf_joint(frame)
    assert optical.find("parent").get("link") == link.get("name"), "optical frame hangs off the sensor's link"
    # Gazebo cameras look along the link's +x; the REP 103 optical frame is that link turned by (-pi/2, 0, -pi/2).
    np.testing.assert_allclose(origin_matrix(optical), transform_from_xyz_rpy((0, 0, 0), OPTICAL_FROM_LINK_RPY),
                               atol=1e-6)


def test_world_camera_matches_the_simulated_camera(world):
    _, _, sensor = camera_sensor(world)
    camera = sensor.find("camera")
    intrinsics = SceneConfig().intrinsics
    width, height = int(camera.findtext("image/width")), int(camera.findtext("image/height"))
    assert (width, height) == (intrinsics.width, intrinsics.height)
    fx_from_fov = width / 2 / math.tan(float(camera.findtext("horizontal_fov")) / 2)
    assert fx_from_fov == pytest.approx(intrinsics.fx, abs=0.5)
    lens = {key: float(camera.findtext(f"lens/intrinsics/{key}")) for key in ("fx", "fy", "cx", "cy")}
    assert lens == pytest.approx({"fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx,
                                  "cy": intrinsics.cy})
    assert camera.find("distortion") is None, "the node's pinhole model; camera_info D stays zero"
    # The presented item (about 0.6 m away) lies inside both clip ranges.
    distance = float(np.linalg.norm(np.subtract(SceneConfig().camera_target, SceneConfig().camera_position)))
    for clip in (camera.find("clip"), camera.find("depth_camera/clip")):
        assert float(clip.findtext("near")) < distance - 0.15 and distance + 0.3 < float(clip.findtext("far"))
