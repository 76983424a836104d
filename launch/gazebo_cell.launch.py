"""The inspection cell in Gazebo (gz sim): the world's RGB-D camera bridged to the damage_perception node.

ros2 launch damage_perception gazebo_cell.launch.py [gz_args:="-r -s --headless-rendering"]

Starts gz sim with worlds/inspection_cell.sdf, ros_gz_bridge's parameter_bridge for the camera's image, depth
image and camera_info (remapped to the node's inputs) and /clock, robot_state_publisher with
urdf/inspection_cell.urdf (camera mount and optical frames on /tf_static), and the damage_perception node
with config/damage_perception.yaml. Every node runs on simulated time.

Gazebo's depth image is 32FC1 in metres (+-inf outside the clip range) and its colour rgb8, both stamped
with camera_color_optical_frame. The arm is not simulated: the wrist and finger TF (gripper_link, fingers)
must come from the cell's joint states, e.g. a joint_state_publisher or the arm's controller.
"""
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import Command, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description():
    share = FindPackageShare("damage_perception")
    world = PathJoinSubstitution([share, "worlds", "inspection_cell.sdf"])
    urdf = PathJoinSubstitution([share, "urdf", "inspection_cell.urdf"])
    node_params = PathJoinSubstitution([share, "config", "damage_perception.yaml"])
    gz_sim = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch",
                                                            "gz_sim.launch.py"])),
        launch_arguments={"gz_args": [LaunchConfiguration("gz_args"), " ", world]}.items())
    bridge = Node(
        package="ros_gz_bridge", executable="parameter_bridge", name="rgbd_camera_bridge", output="screen",
        arguments=["/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock",
                   "/rgbd_camera/image@sensor_msgs/msg/Image[gz.msgs.Image",
                   "/rgbd_camera/depth_image@sensor_msgs/msg/Image[gz.msgs.Image",
                   "/rgbd_camera/camera_info@sensor_msgs/msg/CameraInfo[gz.msgs.CameraInfo"],
        remappings=[("/rgbd_camera/image", "/color/image_raw"),
                    ("/rgbd_camera/depth_image", "/depth/image_raw"),
                    ("/rgbd_camera/camera_info", "/color/camera_info")],
        parameters=[{"use_sim_time": True}])
    robot_state_publisher = Node(
        package="robot_state_publisher", executable="robot_state_publisher", output="screen",
        parameters=[{"robot_description": ParameterValue(Command(["cat ", urdf]), value_type=str),
                     "use_sim_time": True}])
    perception = Node(
        package="damage_perception", executable="damage_perception_node", name="damage_perception",
        output="screen", parameters=[node_params, {"use_sim_time": True}])
    return LaunchDescription([
        DeclareLaunchArgument("gz_args", default_value="-r",
                              description="gz sim options before the world file (-r: run at once; "
                                          "add -s --headless-rendering on a machine without a display)"),
        gz_sim, bridge, robot_state_publisher, perception,
    ])
