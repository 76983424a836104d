"""damage_perception: multi-view RGB-D damage inspection of items held by a robot gripper.

Three rooms, data flowing one way:
- ``core``: algorithms with no ROS (point clouds, segmentation, scoring, fusion); numpy/open3d in, dataclasses out.
- ``sim``: the simulated pick cell's renderer and items (no ROS).
- ``ros``: message conversion and the small stand-ins for tf2_ros / message_filters; ``nodes``: the ROS nodes.
- ``tools``: command-line tools.
"""

__version__ = "0.1.0"
