"""Shared fixtures of the simulator tests: one renderer and a few catalogue items per session."""
from __future__ import annotations

import numpy as np
import pytest

from damage_perception.core.gripper import GripperGeometry
from damage_perception.sim.catalogue import ItemSpec, sku_size
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig


@pytest.fixture(scope="session")
def gripper() -> GripperGeometry:
    return GripperGeometry()


@pytest.fixture(scope="session")
def scene() -> SceneConfig:
    return SceneConfig()


@pytest.fixture(scope="session")
def renderer(scene, gripper) -> CellRenderer:
    return CellRenderer(scene, gripper)


def make_spec(damage: str, sku: str = "SKU-2203", severity: float = 0.7, seed: int = 11) -> ItemSpec:
    """A catalogue-like spec of ``sku`` with the given damage."""
    return ItemSpec(f"test-{damage}-{seed}", sku, sku_size(sku), damage,
                    0.0 if damage == "pristine" else severity, seed)


def render_item(renderer: CellRenderer, item, angle: float, seed: int = 0):
    """Render ``item`` (an ItemModel or None) at ``angle`` with a fresh seeded generator."""
    renderer.set_item(item)
    return renderer.render(angle, np.random.default_rng(seed))


@pytest.fixture(scope="session")
def items(gripper):
    """Pristine and damaged builds of the same SKU, keyed by damage type."""
    return {kind: build_item(make_spec(kind), gripper) for kind in ("pristine", "crush", "hole", "tear")}
