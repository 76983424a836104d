"""The one import point for message synchronisation: message_filters where installed, else our stand-in.

For camera topics pass ``qos_profile=rclpy.qos.qos_profile_sensor_data`` to ``Subscriber``: a best-effort
subscription hears both best-effort and reliable publishers (a reliable one would miss best-effort
drivers).
"""
from __future__ import annotations

try:
    from message_filters import ApproximateTimeSynchronizer, SimpleFilter, Subscriber, TimeSynchronizer
    USING_MESSAGE_FILTERS = True
except ImportError:
    from damage_perception.ros.message_filters_compat import (
        ApproximateTimeSynchronizer,
        SimpleFilter,
        Subscriber,
        TimeSynchronizer,
    )
    USING_MESSAGE_FILTERS = False

__all__ = ["SimpleFilter", "Subscriber", "TimeSynchronizer", "ApproximateTimeSynchronizer", "USING_MESSAGE_FILTERS"]
