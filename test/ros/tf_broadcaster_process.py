"""Helper process for test_tf_dds.py: broadcasts static and dynamic transforms until interrupted.

Static:  world -> camera_link (translation 0.5, 0, 1.0), camera_link -> camera_optical (rotation only),
         sent in two calls to check that the static broadcaster republishes both.
Dynamic: world -> gripper at 50 Hz, stamped now, translation (0, 0, t) with t = seconds since start,
         rotating about z at 1 rad/s.
"""
import math
import sys

import rclpy
from rclpy.executors import ExternalShutdownException

from damage_perception.core.transforms import make_transform, rotation_about_z, transform_from_xyz_rpy
from damage_perception.ros.conversions import matrix_to_transform_stamped
from damage_perception.ros.tf import StaticTransformBroadcaster, TransformBroadcaster

WORLD_CAMERA_LINK = make_transform((0.5, 0.0, 1.0))
LINK_OPTICAL = transform_from_xyz_rpy((0, 0, 0), (-math.pi / 2, 0, -math.pi / 2))


def main() -> None:
    rclpy.init(args=sys.argv)
    node = rclpy.create_node("tf_test_broadcaster")
    static = StaticTransformBroadcaster(node)
    stamp = node.get_clock().now().to_msg()
    static.sendTransform(matrix_to_transform_stamped(WORLD_CAMERA_LINK, "world", "camera_link", stamp))
    static.sendTransform([matrix_to_transform_stamped(LINK_OPTICAL, "camera_link", "camera_optical", stamp)])
    dynamic = TransformBroadcaster(node)
    start = node.get_clock().now()

    def tick() -> None:
        now = node.get_clock().now()
        t = (now - start).nanoseconds * 1e-9
        pose = make_transform((0.0, 0.0, t), rotation_about_z(t))
        dynamic.sendTransform(matrix_to_transform_stamped(pose, "world", "gripper", now.to_msg()))

    node.create_timer(0.02, tick)
    print("broadcasting", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
