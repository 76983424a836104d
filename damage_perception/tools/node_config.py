"""The node's parameter file read without ROS: ``<prefix>.<field>`` keys into the core config dataclasses,
with the same conversions as ``ros/params.declare_config`` (lists become tuples, numbers floats where the
default is a float), so offline tools judge with exactly the node's configuration."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

ConfigT = TypeVar("ConfigT")


def node_parameters(path: Path, node: str = "damage_perception") -> dict[str, Any]:
    """The ``ros__parameters`` of ``node`` in a parameter YAML file (nested as written)."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    try:
        return dict(document[node]["ros__parameters"])
    except (KeyError, TypeError):
        raise ValueError(f"{path} has no {node}.ros__parameters") from None


def config_from_parameters(parameters: Mapping[str, Any] | None, defaults: ConfigT) -> ConfigT:
    """``defaults`` with the fields that ``parameters`` (the YAML block of its prefix) sets."""
    parameters = parameters or {}
    values = {}
    for field in dataclasses.fields(defaults):
        default = getattr(defaults, field.name)
        if field.name not in parameters:
            continue
        value = parameters[field.name]
        values[field.name] = config_from_parameters(value, default) if dataclasses.is_dataclass(default) \
            else _converted(value, default, field.name)
    return dataclasses.replace(defaults, **values)


def _converted(value: Any, default: Any, name: str) -> Any:
    if isinstance(default, tuple):
        if len(value) != len(default):
            raise ValueError(f"parameter {name} has {len(value)} values, expected {len(default)} like {list(default)}")
        return tuple(type(item)(v) for item, v in zip(default, value))
    if isinstance(default, float):
        return float(value)
    return value
