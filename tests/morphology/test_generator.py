"""Tests for the seeded UNIMAL-style robot generator."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest

from hd_deploy.morphology.generator import GeneratorConfig, generate_robot, write_robots

N_ROBOTS = 200
N_PHYSICS = 20
FRAME_SKIP = 4
CONTROL_STEPS = 200
SETTLE_STEPS = 200  # 1 s at timestep 0.005
STAND_STEPS = 250  # hd-generate's default stand check: 5 s unpowered
GEARS = {150, 200, 250, 300}
RANGES = {
    (-30, 30), (-30, 0), (0, 60), (-60, 30), (0, 90), (-60, 0), (-30, 60),
    (0, 30), (0, 45), (-45, 45), (-45, 0), (-90, 0), (-60, 60),
}  # fmt: skip
UNIMAL_TRAIN = Path(__file__).resolve().parents[2].parent / "shared" / "unimal" / "train"


@pytest.fixture(scope="module")
def robots() -> list[tuple[str, mujoco.MjModel]]:
    """The first N_ROBOTS default robots, text and compiled model."""
    out = []
    for seed in range(N_ROBOTS):
        xml = generate_robot(seed)
        out.append((xml, mujoco.MjModel.from_xml_string(xml)))
    return out


def _hinges(model: mujoco.MjModel) -> list[int]:
    return [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]


def _range_degrees(model: mujoco.MjModel, joint: int) -> tuple[int, int]:
    lo, hi = np.degrees(model.jnt_range[joint])
    return int(round(lo)), int(round(hi))


def _lowest_point(model: mujoco.MjModel, data: mujoco.MjData) -> float:
    lows = []
    for g in range(model.ngeom):
        radius, z = model.geom_size[g, 0], data.geom_xpos[g, 2]
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE:
            half = model.geom_size[g, 1] * abs(data.geom_xmat[g].reshape(3, 3)[2, 2])
            z -= half
        lows.append(z - radius)
    return min(lows)


# Determinism


def test_same_seed_gives_identical_text() -> None:
    for seed in (0, 7, 123):
        assert generate_robot(seed) == generate_robot(seed)
        assert generate_robot(seed, n_limbs=9) == generate_robot(seed, n_limbs=9)


def test_different_seeds_differ() -> None:
    texts = {generate_robot(seed).split("\n", 3)[3] for seed in range(20)}
    assert len(texts) == 20


def test_model_is_named_after_seed(robots) -> None:
    assert '<mujoco model="gen-5">' in robots[5][0]


# Structure


def test_every_robot_compiles_with_unimal_structure(robots) -> None:
    for xml, model in robots:
        assert model.body(1).name == "torso/0"
        assert 2 <= model.nbody - 1 <= 12
        assert model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE and model.jnt_bodyid[0] == 1
        for body in range(2, model.nbody):
            assert model.body(body).name.startswith("limb/")
            assert 1 <= model.body_jntnum[body] <= 2
        assert model.opt.timestep == pytest.approx(0.005)
        assert "<geom" in xml and 'type="plane"' not in xml


def test_default_body_count_resembles_unimal(robots) -> None:
    counts = [model.nbody - 1 for _, model in robots]
    assert min(counts) >= 4 and max(counts) <= 11
    assert set(counts) == set(range(4, 12))


def test_every_hinge_has_one_unimal_motor(robots) -> None:
    for _, model in robots:
        hinges = _hinges(model)
        assert model.nu == len(hinges)
        driven = sorted(int(model.actuator_trnid[a, 0]) for a in range(model.nu))
        assert driven == hinges
        for a in range(model.nu):
            assert int(model.actuator_gear[a, 0]) in GEARS
            assert model.actuator_ctrllimited[a]
            np.testing.assert_array_equal(model.actuator_ctrlrange[a], [-1.0, 1.0])


def test_joint_ranges_are_unimal_classes(robots) -> None:
    for _, model in robots:
        for joint in _hinges(model):
            assert _range_degrees(model, joint) in RANGES
            assert model.jnt_limited[joint]


def test_n_limbs_is_exact() -> None:
    asymmetric = GeneratorConfig(symmetry_prob=0.0)
    for n_limbs in range(2, 13):
        for seed in range(3):
            for config in (GeneratorConfig(), asymmetric):
                xml = generate_robot(seed, n_limbs=n_limbs, config=config)
                assert mujoco.MjModel.from_xml_string(xml).nbody - 1 == n_limbs


@pytest.mark.parametrize("n_limbs", [-1, 0, 1, 13, 20])
def test_n_limbs_out_of_range_raises(n_limbs: int) -> None:
    with pytest.raises(ValueError, match=r"n_limbs must be in \[2, 12\]"):
        generate_robot(0, n_limbs=n_limbs)


def test_torso_sits_drop_clearance_above_lowest_point(robots) -> None:
    for _, model in robots[:50]:
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        assert _lowest_point(model, data) == pytest.approx(0.2, abs=1e-3)


def test_no_contacts_at_start_except_parent_child(robots) -> None:
    for _, model in robots:
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        for con in data.contact[: data.ncon]:
            b1, b2 = model.geom_bodyid[con.geom1], model.geom_bodyid[con.geom2]
            assert model.body_parentid[b1] == b2 or model.body_parentid[b2] == b1


def test_symmetric_robots_are_mirror_images() -> None:
    for seed in range(30):
        model = mujoco.MjModel.from_xml_string(generate_robot(seed))
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        geoms = np.round(np.c_[data.geom_xpos, model.geom_size[:, :2]], 4) + 0.0
        mirrored = geoms * np.array([1.0, -1.0, 1.0, 1.0, 1.0]) + 0.0
        assert sorted(map(tuple, geoms)) == sorted(map(tuple, mirrored))


def test_asymmetric_robots_compile() -> None:
    config = GeneratorConfig(symmetry_prob=0.0, mid_site_prob=1.0, two_joint_prob=1.0)
    for seed in range(20):
        model = mujoco.MjModel.from_xml_string(generate_robot(seed, config=config))
        assert all(model.body_jntnum[2:] == 2)


# Options


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_limbs": 1}, "min_limbs must be in [2, 12], got 1"),
        ({"max_limbs": 13}, "max_limbs must be in [min_limbs=4, 12], got 13"),
        ({"min_limbs": 6, "max_limbs": 5}, "max_limbs must be in [min_limbs=6, 12], got 5"),
        ({"symmetry_prob": 1.5}, "symmetry_prob must be in [0, 1], got 1.5"),
        ({"two_joint_prob": -0.1}, "two_joint_prob must be in [0, 1], got -0.1"),
        ({"limb_density": 0.0}, "limb_density must be > 0, got 0.0"),
        ({"drop_clearance": -1.0}, "drop_clearance must be >= 0, got -1.0"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        GeneratorConfig(**kwargs)
    assert str(err.value) == message


def test_config_changes_count_and_density() -> None:
    config = GeneratorConfig(min_limbs=12, max_limbs=12, limb_density=900.0)
    xml = generate_robot(1, config=config)
    assert mujoco.MjModel.from_xml_string(xml).nbody - 1 == 12
    assert 'density="900"' in xml


def test_write_robots(tmp_path: Path) -> None:
    paths = write_robots(tmp_path / "robots", 3, seed=5)
    assert [p.name for p in paths] == ["gen-5.xml", "gen-6.xml", "gen-7.xml"]
    for seed, path in zip(range(5, 8), paths, strict=True):
        assert path.read_text(encoding="utf-8") == generate_robot(seed)
    with pytest.raises(ValueError, match="count must be >= 0"):
        write_robots(tmp_path, -1)


def test_stand_check_skips_the_robots_that_fold(tmp_path: Path) -> None:
    from hd_deploy.envs.task import stands_unpowered

    # seeds 0-13: gen-1, 4 and 7 (hd-bench's bundled robots) fold within a second unpowered
    folded = [s for s in range(14) if not stands_unpowered(generate_robot(s), STAND_STEPS)]
    assert {1, 4, 7} <= set(folded) and 11 not in folded
    paths = write_robots(tmp_path, 6, seed=0, stand_steps=STAND_STEPS)
    kept = [s for s in range(14) if s not in folded][:6]
    assert [p.name for p in paths] == [f"gen-{s}.xml" for s in kept]
    for seed, path in zip(kept, paths, strict=True):
        assert path.read_text(encoding="utf-8") == generate_robot(seed)


def test_stand_check_gives_up_and_refuses_negative_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hd_deploy.morphology.generator import STAND_DRAWS

    monkeypatch.setattr("hd_deploy.envs.task.stands_unpowered", lambda text, steps: False)
    with pytest.raises(ValueError, match=f"only 0 of {2 * STAND_DRAWS} robots drawn stood"):
        write_robots(tmp_path, 2, stand_steps=10)
    with pytest.raises(ValueError, match="stand_steps must be >= 0"):
        write_robots(tmp_path, 2, stand_steps=-1)


# Physics


def test_random_control_is_stable_and_stays_above_floor() -> None:
    rng = np.random.default_rng(0)
    for seed in range(N_PHYSICS):
        spec = mujoco.MjSpec.from_string(generate_robot(seed))
        spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[50, 50, 1])
        model = spec.compile()
        data = mujoco.MjData(model)
        for _ in range(CONTROL_STEPS):
            data.ctrl[:] = rng.uniform(-1.0, 1.0, model.nu)
            mujoco.mj_step(model, data, nstep=FRAME_SKIP)
        assert np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel))
        data.ctrl[:] = 0.0
        mujoco.mj_step(model, data, nstep=SETTLE_STEPS)
        assert np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel))
        assert data.xpos[1, 2] >= -0.01, f"gen-{seed} fell through the floor"


# Against the real UNIMAL files


@pytest.mark.skipif(not UNIMAL_TRAIN.is_dir(), reason=f"UNIMAL robots absent: {UNIMAL_TRAIN}")
def test_ranges_and_gears_match_unimal_files(robots) -> None:
    real_ranges, real_gears = set(), set()
    for path in sorted(UNIMAL_TRAIN.glob("*.xml")):
        root = ET.parse(path).getroot()
        for joint in root.find("worldbody").iter("joint"):
            if joint.get("type") == "hinge":
                lo, hi = joint.get("range").split()
                real_ranges.add((int(float(lo)), int(float(hi))))
        real_gears |= {int(float(m.get("gear"))) for m in root.iter("motor") if m.get("gear")}
    ours_ranges = {_range_degrees(model, j) for _, model in robots for j in _hinges(model)}
    ours_gears = {int(model.actuator_gear[a, 0]) for _, model in robots for a in range(model.nu)}
    assert ours_ranges == real_ranges == RANGES
    assert ours_gears == real_gears == GEARS
