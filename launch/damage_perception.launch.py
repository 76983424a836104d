"""The damage_perception node alone, with its parameter file (for a real cell).

ros2 launch damage_perception damage_perception.launch.py [params_file:=/path/to/your.yaml] [camera:=NAME]

camera:=NAME lays config/cameras/NAME.yaml over params_file: the topic names of a camera driver
(realsense_d435: realsense2_camera with align_depth.enable:=true; orbbec_femto: orbbec_camera with
depth_registration:=true). See docs/real_cameras.md. Without it the node listens on color/image_raw,
depth/image_raw and color/camera_info, or on what params_file names.
"""
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description():
    share = FindPackageShare("damage_perception")
    default_params = PathJoinSubstitution([share, "config", "damage_perception.yaml"])
    camera = LaunchConfiguration("camera")
    camera_params = PathJoinSubstitution([share, "config", "cameras", [camera, ".yaml"]])
    no_camera = PythonExpression(["'", camera, "' == ''"])
    sim_time = {"use_sim_time": LaunchConfiguration("use_sim_time")}
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="parameter file of the damage_perception node"),
        DeclareLaunchArgument("camera", default_value="",
                              description="camera preset in config/cameras/ (realsense_d435, orbbec_femto)"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        Node(package="damage_perception", executable="damage_perception_node", name="damage_perception",
             output="screen", condition=IfCondition(no_camera),
             parameters=[LaunchConfiguration("params_file"), sim_time]),
        Node(package="damage_perception", executable="damage_perception_node", name="damage_perception",
             output="screen", condition=UnlessCondition(no_camera),
             parameters=[LaunchConfiguration("params_file"), camera_params, sim_time]),
    ])
