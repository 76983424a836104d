"""core.inspection.Inspector on rendered views of the simulated cell, without ROS."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from damage_perception.core.inspection import InspectionError, Inspector
from damage_perception.core.station import StationSettings
from damage_perception.core.verdict import Decision, DecisionConfig
from damage_perception.core.view_pipeline import ViewInput
from damage_perception.data.synthesize import render_episode, worker_renderer
from damage_perception.sim.catalogue import ItemSpec, make_catalogue

GEOMETRIC = StationSettings(model_path="", num_views=4)
TORN, PRISTINE = make_catalogue(3, 0.5, 11, kinds=("carton",))[1:]   # a torn and a pristine carton


class RenderedViews:
    """A ViewSource rendering a carton at each requested angle, recording what it was asked and told."""

    def __init__(self, spec: ItemSpec = PRISTINE, fail_at: int | None = None) -> None:
        self.renderer, self.gripper = worker_renderer()
        self.spec = spec
        self.fail_at = fail_at
        self.asked: list[tuple[int, float]] = []
        self.told = []

    def take(self, index: int, angle: float) -> ViewInput:
        self.asked.append((index, angle))
        if index == self.fail_at:
            raise InspectionError(f"view at {angle:.2f} rad not taken")
        view = render_episode(self.renderer, self.gripper, self.spec, [angle], np.random.default_rng(index)).views[0]
        depth = np.where(view.depth_m > 0, view.depth_m, np.nan).astype(np.float32)
        return ViewInput(depth, view.intrinsics, view.camera_from_gripper, list(view.finger_poses), view.color)

    def taken(self, result, segment, view) -> None:
        self.told.append((result.index, result.found, segment.found))


def test_the_policy_asks_the_source_and_every_view_is_judged():
    source = RenderedViews()
    inspector = Inspector(GEOMETRIC, None)
    verdict = inspector.inspect(source, PRISTINE.sku)
    assert [index for index, _ in source.asked] == [0, 1, 2, 3]
    assert [angle for _, angle in source.asked] == pytest.approx([0.0, np.pi / 2, np.pi, 3 * np.pi / 2])
    assert [index for index, *_ in source.told] == [0, 1, 2, 3]
    assert len(verdict.views) == 4 and all(view.found for view in verdict.views), [v.reason for v in verdict.views]
    assert verdict.decision != Decision.ERROR and verdict.fused_score == max(v.score for v in verdict.views)
    assert inspector.model_version == "geometric-v1"


def test_a_torn_carton_is_diverted_and_a_pristine_one_passed():
    inspector = Inspector(dataclasses.replace(GEOMETRIC, num_views=6), None)
    assert inspector.inspect(RenderedViews(TORN), TORN.sku).decision == Decision.DIVERT
    assert inspector.inspect(RenderedViews(PRISTINE), PRISTINE.sku).decision == Decision.PASS


def test_a_view_the_source_cannot_give_ends_the_inspection_with_its_reason():
    source = RenderedViews(fail_at=1)
    with pytest.raises(InspectionError, match="not taken"):
        Inspector(GEOMETRIC, None).inspect(source, PRISTINE.sku)
    assert len(source.asked) == 2 and len(source.told) == 1


def test_a_model_problem_or_an_unknown_policy_is_an_inspection_error_before_any_view():
    source = RenderedViews()
    with pytest.raises(InspectionError, match="damage model unavailable"):
        Inspector(GEOMETRIC, None, "damage model unavailable: x.pt does not exist").inspect(source, PRISTINE.sku)
    with pytest.raises(InspectionError, match="unknown view policy"):
        Inspector(GEOMETRIC, None).inspect(source, PRISTINE.sku, policy="no-such-policy")
    assert source.asked == []


def test_a_model_path_that_does_not_load_becomes_the_model_problem(tmp_path):
    inspector = Inspector.for_station(StationSettings(model_path=str(tmp_path / "absent.pt")))
    assert inspector.model is None and "damage model unavailable" in inspector.model_problem


def test_without_a_model_the_learned_fusion_falls_back_to_max_and_nothing_is_auto_enrolled():
    inspector = Inspector(StationSettings(model_path="", decision=DecisionConfig(fusion="learned")), None)
    assert inspector.decision.fusion == "max"
    verdict = inspector.inspect(RenderedViews(), PRISTINE.sku)
    grown, reason = inspector.auto_enrolment("item-1", verdict, None)
    assert grown is None and "off" in reason
