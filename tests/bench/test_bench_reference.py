"""The reference section: a 12-limb robot, counts, ratios (tiny configs keep it fast)."""

from __future__ import annotations

from pathlib import Path

from hd_deploy.bench.latency import TimingPlan
from hd_deploy.bench.reference import profile_reference, reference_robot
from hd_deploy.envs.task import LocomotionTask
from hd_deploy.models import HyperNetConfig, TeacherConfig, baked_macs, baked_params


def test_reference_robot_has_two_hinges_per_limb() -> None:
    name, xml = reference_robot()
    robot = LocomotionTask(xml, name=name).robot
    assert robot.n_limbs == 12
    assert robot.n_actuators == 2 * (robot.n_limbs - 1)  # the torso has no hinge


def test_reference_section(tmp_path: Path) -> None:
    ref = profile_reference(
        tmp_path,
        plan=TimingPlan(warmup=1, rounds=2, calls_per_round=3),
        bake_repeats=1,
        teacher_config=TeacherConfig.tiny(),
        hypernet_config=HyperNetConfig.tiny(),
    )
    assert ref["n_limbs"] == 12 and ref["n_actuators"] == 22
    t, s = ref["teacher"], ref["student"]
    for m in (t, s):
        assert isinstance(m["params"], int) and isinstance(m["macs"], int)
        assert m["macs_check"]["agree"] is True
        assert (tmp_path / m["onnx_file"]).stat().st_size == m["onnx_bytes"]
    assert set(t["latency_us"]) == {"torch", "onnx"}
    assert "onnx" in s["latency_us"]
    assert ref["params_ratio"] == t["params"] / s["params"]
    assert ref["macs_ratio"] == t["macs"] / s["macs"]
    assert (
        ref["latency_ratio_onnx"] == t["latency_us"]["onnx"]["p50"] / s["latency_us"]["onnx"]["p50"]
    )
    hidden = HyperNetConfig.tiny().hidden
    paper = ref["paper_layout"]
    assert paper["student_macs"] == baked_macs(12, 24, hidden, 1)
    assert paper["student_params"] == baked_params(12, 24, hidden, 1)
    assert paper["widths"] == f"204->{hidden}->{hidden}->24"
    assert ref["paper"] == {"params_ratio": [6, 14], "flops_ratio": [67, 160]}
    assert s["hypernet_params"] > 0 and s["bake_ms"] > 0
