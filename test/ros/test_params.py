import pytest
import rclpy
from rclpy.parameter import Parameter

from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.view_pipeline import ViewPipelineConfig
from damage_perception.ros.params import declare_config


@pytest.fixture
def node_factory():
    rclpy.init()
    nodes = []

    def make(**overrides):
        node = rclpy.create_node("params_test", parameter_overrides=[
            Parameter(name, value=value) for name, value in overrides.items()])
        nodes.append(node)
        return node
    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown()


def test_defaults_come_from_the_dataclass(node_factory):
    node = node_factory()
    config = declare_config(node, "pipeline", ViewPipelineConfig())
    assert config == ViewPipelineConfig()
    assert node.get_parameter("pipeline.segmentation.crop_min").value == [-0.16, -0.16, 0.0]


def test_overrides_reach_nested_fields_and_keep_types(node_factory):
    node = node_factory(**{"pipeline.segmentation.voxel_size": 0.006,
                           "pipeline.segmentation.crop_max": [0.2, 0.2, 0.4],
                           "gripper.finger_frames": ["l", "r"]})
    config = declare_config(node, "pipeline", ViewPipelineConfig())
    gripper = declare_config(node, "gripper", GripperGeometry())
    assert config.segmentation.voxel_size == 0.006
    assert config.segmentation.crop_max == (0.2, 0.2, 0.4)
    assert gripper.finger_frames == ("l", "r")


def test_wrong_length_is_a_clear_error(node_factory):
    node = node_factory(**{"gripper.finger_size": [0.1, 0.2]})
    with pytest.raises(ValueError, match="expected 3"):
        declare_config(node, "gripper", GripperGeometry())
