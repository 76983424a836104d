"""Declare ROS parameters from dataclass defaults and read them back into the dataclass.

A config dataclass of ``core`` is the single source of a stage's defaults; its fields become parameters
``<prefix>.<field>`` (tuples become double arrays), so a YAML file can override any of them. Values are
converted back with ``core.station.coerce``, as offline tools read the same file.
"""
from __future__ import annotations

import dataclasses
from typing import TypeVar

from rclpy.node import Node

from damage_perception.core.station import coerce

ConfigT = TypeVar("ConfigT")


def declare_config(node: Node, prefix: str, defaults: ConfigT) -> ConfigT:
    """Declare one parameter per field of ``defaults`` (``<prefix>.<field>``, or ``<field>`` for an empty
    prefix) and return the configured instance."""
    values = {}
    for field in dataclasses.fields(defaults):
        name = f"{prefix}.{field.name}" if prefix else field.name
        default = getattr(defaults, field.name)
        if dataclasses.is_dataclass(default):
            values[field.name] = declare_config(node, name, default)
            continue
        value = node.declare_parameter(name, _to_parameter(default)).value
        values[field.name] = coerce(value, default, name)
    return dataclasses.replace(defaults, **values)


def _to_parameter(value):
    if isinstance(value, tuple):
        return [float(item) if isinstance(item, (int, float)) else item for item in value]
    return value
