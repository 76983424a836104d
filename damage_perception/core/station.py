"""The station's settings: every setting of an inspection, its default, and the damage model it judges with.

``StationSettings`` is the single source of the perception node's parameters: its plain fields are top-level
parameters (``color_topic``, ``num_views``, ...), its config dataclasses become ``<prefix>.<field>``
parameters (``gripper.*``, ``pipeline.*``, ``decision.*``, ...). ``ros/params.declare_config`` declares them
on a node; ``settings_from_parameters`` reads the same names from a parameter file's dictionary, so offline
tools (``replay``) judge with exactly the node's configuration: both convert values with ``coerce``.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from ament_index_python.packages import get_package_share_directory

from damage_perception.core.damage_model import DamageModel, ModelLoadError, use_inference_threads
from damage_perception.core.enrolment import AutoEnrolConfig
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.identification import IdentificationConfig
from damage_perception.core.policies import StoppingRule
from damage_perception.core.verdict import DecisionConfig
from damage_perception.core.view_pipeline import ViewPipelineConfig

SHIPPED_MODEL = "shipped"   # model_path value naming the model file installed with the package
PACKAGE_ROOT = Path(__file__).resolve().parents[2]   # the source tree (or the install's site-packages)
SHIPPED_MODEL_FILE = PACKAGE_ROOT / "damage_perception" / "models" / "damage_model.pt"
GEOMETRIC_VERSION = "geometric-v1"   # model_version of verdicts judged by the geometric score alone

ConfigT = TypeVar("ConfigT")


@dataclass(frozen=True)
class StationSettings:
    """What the perception node listens to, how it inspects, and with which model (its parameters)."""

    # Inputs.
    color_topic: str = "color/image_raw"
    depth_topic: str = "depth/image_raw"
    camera_info_topic: str = "color/camera_info"
    camera_frame: str = "camera_color_optical_frame"   # for frames with an empty header.frame_id, if allowed
    allow_empty_frame_id: bool = False   # False: frames without a frame_id are rejected (a throttled WARN)
    gripper_frame: str = "gripper_link"
    presentation_frame: str = "inspection_pose"        # wrist angles are rotations about this frame's z
    sync_slop: float = 0.02
    sync_queue_size: int = 10
    tf_timeout: float = 0.5
    # The inspection.
    goal_deadline: float = 30.0
    view_timeout: float = 5.0
    settle_tolerance_deg: float = 2.0
    view_retries: int = 2             # an unusable view is tried again at its angle this often (fresh frame)
    policy: str = "fixed"
    num_views: int = 6
    model_path: str = SHIPPED_MODEL   # "shipped" = SHIPPED_MODEL_FILE, "" = the geometric score alone
    store_path: str = ""              # SQLite file, or postgresql://... for a fleet's shared server
    station_id: str = ""              # names this station in every verdict ("" = the host name)
    store_outbox: str = ""            # fleet: local SQLite outbox ("" = ~/.ros/damage_perception/outbox-<station>.db)
    wrist_goal_topic: str = "arm/wrist_goal"
    reachable_wrist_angles: tuple[float, float] = (-math.pi, math.pi)
    # The stages' configs (parameters <prefix>.<field>).
    gripper: GripperGeometry = field(default_factory=GripperGeometry)
    pipeline: ViewPipelineConfig = field(default_factory=ViewPipelineConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    stopping: StoppingRule = field(default_factory=StoppingRule)
    identification: IdentificationConfig = field(default_factory=IdentificationConfig)
    auto_enrol: AutoEnrolConfig = field(default_factory=AutoEnrolConfig)


def config_file(name: str) -> Path:
    """A file of the package's config/: the source tree's when running from it, else the installed share."""
    source = PACKAGE_ROOT / "config" / name
    if source.is_file():
        return source
    return Path(get_package_share_directory("damage_perception")) / "config" / name


def load_station_model(model_path: str) -> DamageModel | None:
    """The damage model ``model_path`` names ('shipped' = the installed one, '' = none); ModelLoadError
    when the file does not load or has no fitted fusion."""
    if not model_path:
        return None
    path = SHIPPED_MODEL_FILE if model_path == SHIPPED_MODEL else Path(model_path).expanduser()
    model = DamageModel.load(path)
    if model.fusion is None:
        raise ModelLoadError(f"{path} has no fitted fusion (train it with damage-perception train)")
    use_inference_threads()
    return model


def coerce(value: Any, default: Any, name: str) -> Any:
    """A parameter value in the type of its dataclass default: lists become tuples of the default's item
    types (of the same length), numbers become floats where the default is a float."""
    if isinstance(default, tuple):
        if len(value) != len(default):
            raise ValueError(f"parameter {name} has {len(value)} values, expected {len(default)} like "
                             f"{list(default)}")
        return tuple(type(item)(v) for item, v in zip(default, value))
    if isinstance(default, float):
        return float(value)
    return value


def settings_from_parameters(parameters: Mapping[str, Any] | None, defaults: ConfigT) -> ConfigT:
    """``defaults`` with the fields that ``parameters`` (a parameter file's block, nested as written) sets."""
    parameters = parameters or {}
    values = {}
    for item in dataclasses.fields(defaults):
        if item.name not in parameters:
            continue
        default, value = getattr(defaults, item.name), parameters[item.name]
        values[item.name] = settings_from_parameters(value, default) if dataclasses.is_dataclass(default) \
            else coerce(value, default, item.name)
    return dataclasses.replace(defaults, **values)


def parameter_file_settings(path: Path | str, node: str = "damage_perception") -> StationSettings:
    """The station settings that ``node``'s ``ros__parameters`` in a parameter YAML file describe."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    try:
        parameters = dict(document[node]["ros__parameters"])
    except (KeyError, TypeError):
        raise ValueError(f"{path} has no {node}.ros__parameters") from None
    return settings_from_parameters(parameters, StationSettings())
