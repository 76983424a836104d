"""The damage_perception node alone, with its parameter file (for a real cell).

ros2 launch damage_perception damage_perception.launch.py params_file:=/path/to/your.yaml
Remap the camera topics to your driver's, e.g. for realsense2_camera:
  color/image_raw:=/camera/camera/color/image_raw depth/image_raw:=/camera/camera/aligned_depth_to_color/image_raw
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare("damage_perception"), "config",
                                           "damage_perception.yaml"])
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="parameter file of the damage_perception node"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        Node(package="damage_perception", executable="damage_perception_node", name="damage_perception",
             output="screen",
             parameters=[LaunchConfiguration("params_file"),
                         {"use_sim_time": LaunchConfiguration("use_sim_time")}]),
    ])
