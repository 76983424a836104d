"""Per-episode variation of the simulated cell: what changes between episodes of a synthetic dataset.

``episode_variation(rng, spec)`` draws, from one generator, everything that a real cell varies between
captures and that stays fixed within one episode (one item turned through its wrist angles):

- the camera (``SceneConfig.jittered``): fx, fy within +-5 %, cx, cy within +-10 px, position within
  +-2.5 cm per axis, orientation within +-2.5 deg per axis; and the lighting: direction, ambient, diffuse;
- the grasp (``random_grasp``): the item shifted along x / away from the palm and tilted about the closing
  axis, fingers still on its faces;
- the colour camera's exposure (+-0.35 stop) and white balance (``ColorModel.jittered``); per-frame noise and
  exposure / white-balance jitter stay as they were;
- the depth sensor's flying pixels (``DepthModel.flying_pixel_rate = FLYING_PIXEL_RATE``).

Use::

    variation = episode_variation(rng, spec)
    renderer.set_scene(variation.scene, variation.depth_model, variation.color_model)  # or variation.apply(renderer)
    renderer.set_item(build_item(spec, gripper, variation.grasp))

``EpisodeVariation.none()`` is today's fixed cell (no variation), and ``scale`` (0..1) scales every range.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from damage_perception.core.gripper import GripperGeometry
from damage_perception.sim.catalogue import ItemSpec
from damage_perception.sim.grasp import GraspPose, random_grasp
from damage_perception.sim.scene import SceneConfig, SceneJitter
from damage_perception.sim.sensor import FLYING_PIXEL_RATE, ColorModel, DepthModel


@dataclass(frozen=True)
class EpisodeVariation:
    """Everything an episode renders with that is not the item itself."""

    scene: SceneConfig = field(default_factory=SceneConfig)
    grasp: GraspPose = GraspPose()
    depth_model: DepthModel = DepthModel()
    color_model: ColorModel = ColorModel()

    @classmethod
    def none(cls) -> EpisodeVariation:
        """The fixed cell: default scene, grasp and sensor models (renders the same bytes as before)."""
        return cls()

    def apply(self, renderer) -> None:
        """Give ``renderer`` (a CellRenderer) this episode's scene and sensor models (not the item: build it with
        ``build_item(spec, gripper, self.grasp)``)."""
        renderer.set_scene(self.scene, self.depth_model, self.color_model)

    def to_dict(self) -> dict:
        """JSON-friendly record of the variation (for episode metadata)."""
        scene = self.scene
        k = scene.intrinsics
        return {
            "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy, "width": k.width, "height": k.height},
            "camera_position": list(scene.camera_position), "camera_target": list(scene.camera_target),
            "camera_rpy_offset": list(scene.camera_rpy_offset),
            "light_direction": list(scene.light_direction), "ambient": scene.ambient, "diffuse": scene.diffuse,
            "grasp": dataclasses.asdict(self.grasp),
            "exposure": self.color_model.exposure, "white_balance": list(self.color_model.white_balance),
            "flying_pixel_rate": self.depth_model.flying_pixel_rate,
        }


def episode_variation(rng: np.random.Generator, spec: ItemSpec | None = None, *,
                      base: EpisodeVariation = EpisodeVariation(), gripper: GripperGeometry = GripperGeometry(),
                      scale: float = 1.0, flying_pixel_rate: float = FLYING_PIXEL_RATE) -> EpisodeVariation:
    """An episode's variation drawn from ``rng`` around ``base`` (deterministic in the generator's state; draws a
    fixed number of values whatever ``spec`` and ``scale`` are). ``spec`` None: default grasp. ``scale`` in
    0..1 scales every range (0 = no variation, but flying pixels at ``flying_pixel_rate``)."""
    jitter = SceneJitter(**{f.name: getattr(SceneJitter(), f.name) * scale for f in dataclasses.fields(SceneJitter)})
    scene = base.scene.jittered(rng, jitter)
    grasp_rng = np.random.default_rng(rng.integers(2**63))  # fixed draw count whether or not there is a spec
    grasp = random_grasp(grasp_rng, spec, gripper, scale) if spec is not None else base.grasp
    color = base.color_model.jittered(rng, exposure_stops=0.35 * scale, temperature=0.08 * scale, tint=0.03 * scale)
    depth = dataclasses.replace(base.depth_model, flying_pixel_rate=flying_pixel_rate)
    return EpisodeVariation(scene, grasp, depth, color)
