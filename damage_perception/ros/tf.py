"""The one import point for tf: tf2_ros where it is installed, else the stand-in in ``tf2_compat``.

Everything in this package does ``from damage_perception.ros.tf import Buffer, TransformListener, ...``,
so the same code runs on a full ROS install (real tf2_ros) and in a pip-only environment.
"""
from __future__ import annotations

try:
    from tf2_ros import (
        Buffer,
        ConnectivityException,
        ExtrapolationException,
        LookupException,
        StaticTransformBroadcaster,
        TransformBroadcaster,
        TransformException,
        TransformListener,
    )
    USING_TF2_ROS = True
except ImportError:
    from damage_perception.ros.tf2_compat import (
        Buffer,
        ConnectivityException,
        ExtrapolationException,
        LookupException,
        StaticTransformBroadcaster,
        TransformBroadcaster,
        TransformException,
        TransformListener,
    )
    USING_TF2_ROS = False

__all__ = ["Buffer", "TransformListener", "TransformBroadcaster", "StaticTransformBroadcaster",
           "TransformException", "LookupException", "ConnectivityException", "ExtrapolationException",
           "USING_TF2_ROS"]
