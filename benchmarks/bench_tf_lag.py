"""How late /tf arrives next to 1 MB camera frames, with and without config/fastdds.xml (no assertions).

    .venv/bin/python benchmarks/bench_tf_lag.py [--without-profile] [--seconds 12]

Starts the simulated cell in its own process and measures, in this one, receive time minus header stamp of
/tf, depth and color messages; prints medians and maxima.
"""
from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without-profile", action="store_true", help="Fast DDS defaults (no fastdds.xml)")
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = str(random.randint(150, 230))
    if args.without_profile:
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = ""
    from damage_perception.cell.processes import node_command, ros_environment, start, stop
    from damage_perception.core.station import config_file
    env = ros_environment(int(os.environ["ROS_DOMAIN_ID"]))
    if not args.without_profile:
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = env["FASTDDS_DEFAULT_PROFILES_FILE"]
    cell = start(node_command("sim_cell_node", config_file("sim_cell.yaml")), env, None)

    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from tf2_msgs.msg import TFMessage
    lags: dict[str, list[float]] = {"tf": [], "depth": [], "color": []}

    def lag(header) -> float:
        return time.time() - (header.stamp.sec + header.stamp.nanosec * 1e-9)
    try:
        rclpy.init()
        node = rclpy.create_node("tf_lag_probe")
        node.create_subscription(TFMessage, "/tf", lambda m: lags["tf"].append(lag(m.transforms[0].header)), 100)
        node.create_subscription(Image, "depth/image_raw", lambda m: lags["depth"].append(lag(m.header)),
                                 qos_profile_sensor_data)
        node.create_subscription(Image, "color/image_raw", lambda m: lags["color"].append(lag(m.header)),
                                 qos_profile_sensor_data)
        end = time.time() + args.seconds
        while time.time() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        stop(cell)
        rclpy.try_shutdown()
    profile = "Fast DDS defaults" if args.without_profile else "config/fastdds.xml"
    for name, values in lags.items():
        values = values[5:]  # discovery
        if values:
            print(f"{profile}: {name:<5} {len(values):4d} msgs, lag median {1000 * np.median(values):7.1f} ms, "
                  f"max {1000 * np.max(values):7.1f} ms")


if __name__ == "__main__":
    main()
