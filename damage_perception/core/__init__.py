"""ROS-free algorithms: camera geometry, transforms, segmentation, damage scoring and fusion."""
