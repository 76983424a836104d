"""Views of simulated items rendered in the cell, as the node receives them, and a gallery enrolled from them
the way the node's ``~/enrol_sku`` enrols (for tests of the live path with the damage model)."""
from __future__ import annotations

from damage_perception.core.enrolment import EnrolmentViews
from damage_perception.core.verdict import ViewResult
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline
from damage_perception.data.synthesize import episode_rng, render_episode, worker_renderer
from damage_perception.sim.catalogue import sku_spec


def rendered_views(sku: str, damage: str, angles: list[float], seed: int) -> list[ViewInput]:
    """An instance of ``sku`` (``damage`` at severity 0.8, or "pristine") at each wrist angle, fixed cell."""
    renderer, gripper = worker_renderer()
    spec = sku_spec(sku, damage, 0.0 if damage == "pristine" else 0.8, seed, f"{sku}-{damage}-{seed}")
    episode = render_episode(renderer, gripper, spec, angles, episode_rng(seed, 0))
    return [ViewInput(view.depth_m, view.intrinsics, view.camera_from_gripper, list(view.finger_poses), view.color)
            for view in episode.views]


def enrolment_views(pipeline: ViewPipeline, views: list[ViewInput], angles: list[float]
                    ) -> tuple[EnrolmentViews, list[ViewResult]]:
    """The views the node's enrolment keeps (each segmented by the pipeline, added with its camera), and the
    pipeline's result of every view."""
    enrolment, results = EnrolmentViews(), []
    for index, (view, angle) in enumerate(zip(views, angles)):
        result, segment = pipeline.process(view, index=index, wrist_angle=angle)
        results.append(result)
        if result.found:
            enrolment.add(view.color, view.depth_m, segment, angle, view.intrinsics, view.camera_from_gripper)
    return enrolment, results
