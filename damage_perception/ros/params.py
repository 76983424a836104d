"""Declare ROS parameters from dataclass defaults and read them back into the dataclass.

A config dataclass of ``core`` is the single source of a stage's defaults; its fields become parameters
``<prefix>.<field>`` (tuples become double arrays), so a YAML file can override any of them.
"""
from __future__ import annotations

import dataclasses
from typing import TypeVar

from rclpy.node import Node

ConfigT = TypeVar("ConfigT")


def declare_config(node: Node, prefix: str, defaults: ConfigT) -> ConfigT:
    """Declare one parameter per field of ``defaults`` and return the configured instance."""
    values = {}
    for field in dataclasses.fields(defaults):
        default = getattr(defaults, field.name)
        if dataclasses.is_dataclass(default):
            values[field.name] = declare_config(node, f"{prefix}.{field.name}", default)
            continue
        value = node.declare_parameter(f"{prefix}.{field.name}", _to_parameter(default)).value
        values[field.name] = _from_parameter(value, default)
    return dataclasses.replace(defaults, **values)


def _to_parameter(value):
    if isinstance(value, tuple):
        return [float(item) if isinstance(item, (int, float)) else item for item in value]
    return value


def _from_parameter(value, default):
    if isinstance(default, tuple):
        return tuple(type(item)(v) for item, v in zip(default, value)) if len(value) == len(default) \
            else _bad_length(value, default)
    if isinstance(default, float):
        return float(value)
    return value


def _bad_length(value, default):
    raise ValueError(f"parameter has {len(value)} values, expected {len(default)} like {list(default)}")
