"""The simulated pick cell, the damage_perception node and the demo planner client (`make demo` does the
same without the launch package, see damage_perception/cell/demo.py)."""
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description():
    config = PathJoinSubstitution([FindPackageShare("damage_perception"), "config"])
    node_params = PathJoinSubstitution([config, "damage_perception.yaml"])
    cell_params = PathJoinSubstitution([config, "sim_cell.yaml"])
    return LaunchDescription([
        DeclareLaunchArgument("num_items", default_value="20"),
        Node(package="damage_perception", executable="sim_cell", name="sim_cell", output="screen",
             parameters=[cell_params, {"num_items": LaunchConfiguration("num_items")}]),
        Node(package="damage_perception", executable="damage_perception_node", name="damage_perception",
             output="screen", parameters=[node_params, {"debug.publish": True}]),
        Node(package="damage_perception", executable="planner_client", name="planner_client",
             output="screen", parameters=[cell_params, {"num_items": LaunchConfiguration("num_items")}]),
    ])
