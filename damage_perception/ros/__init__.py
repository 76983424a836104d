"""ROS glue on the ROS-free rooms: the node's camera input (``camera_input``), message conversions, the
InspectItem action's messages, debug topics, gallery services, parameters from dataclasses, and stand-ins
for tf2_ros (``tf``, ``tf2_compat``) and message_filters (``sync``) where those are not installed."""
