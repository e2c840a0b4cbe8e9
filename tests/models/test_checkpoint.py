"""Checkpoints: exact round trip, hashes, and one-line errors for broken files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save as save_numpy

from hd_deploy.models import (
    CheckpointError,
    HyperNetConfig,
    HyperNetPolicy,
    TeacherConfig,
    TeacherPolicy,
    checkpoint_hash,
    load_checkpoint,
    load_student,
    load_teacher,
    read_checkpoint_info,
    save_checkpoint,
)
from hd_deploy.models.checkpoint import CONTEXTS_FILE, read_contexts

from ._helpers import RobotCase, pad_batch, perturb_hypernet, randomize_normalizer

ROBOTS = ("robot_a", "robot_b")


@pytest.fixture
def teacher() -> TeacherPolicy:
    torch.manual_seed(0)
    model = TeacherPolicy(TeacherConfig.tiny())
    randomize_normalizer(model.normalizer, 0)
    return model.eval()


@pytest.fixture
def student() -> HyperNetPolicy:
    torch.manual_seed(1)
    model = HyperNetPolicy(HyperNetConfig.tiny())
    randomize_normalizer(model.normalizer, 1)
    perturb_hypernet(model, 1)
    return model.eval()


def test_teacher_round_trip_gives_identical_actions(
    tmp_path: Path, teacher: TeacherPolicy, random_cases: list[RobotCase]
) -> None:
    save_checkpoint(tmp_path / "t", teacher, robots=ROBOTS, extra={"step": 10})
    loaded = load_teacher(tmp_path / "t")
    assert not loaded.training and loaded.config == teacher.config
    p, c, m, _ = pad_batch(random_cases, 12)
    assert torch.equal(loaded.action_mean(p, c, m), teacher.action_mean(p, c, m))
    assert torch.equal(loaded.value(p, c, m), teacher.value(p, c, m))
    assert torch.equal(loaded.normalizer.var, teacher.normalizer.var)
    info = read_checkpoint_info(tmp_path / "t" / "checkpoint.json")
    assert info.kind == "teacher" and info.robots == ROBOTS and info.extra == {"step": 10}


def test_student_round_trip_gives_identical_actions(
    tmp_path: Path, student: HyperNetPolicy, random_cases: list[RobotCase]
) -> None:
    save_checkpoint(tmp_path, student, robots=ROBOTS)
    loaded = load_checkpoint(tmp_path)
    assert isinstance(loaded, HyperNetPolicy)
    p, c, m, _ = pad_batch(random_cases, 12)
    assert torch.equal(loaded.action_mean(p, c, m), student.action_mean(p, c, m))
    assert torch.equal(loaded.normalizer.mean, student.normalizer.mean)


def test_files_are_safetensors_and_json(tmp_path: Path, teacher: TeacherPolicy) -> None:
    save_checkpoint(tmp_path, teacher, robots=ROBOTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "model.safetensors"]
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["format_version"] == 1 and meta["kind"] == "teacher"
    assert meta["config"] == teacher.config.to_dict()
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
    assert "actor.embed.weight" in keys and not any(k.startswith("normalizer.") for k in keys)


def test_hash_is_stable_and_tracks_content(tmp_path: Path, teacher: TeacherPolicy) -> None:
    save_checkpoint(tmp_path / "a", teacher, robots=ROBOTS)
    save_checkpoint(tmp_path / "b", teacher, robots=ROBOTS)
    h = checkpoint_hash(tmp_path / "a")
    assert len(h) == 16 and h == checkpoint_hash(tmp_path / "b")
    with torch.no_grad():
        teacher.actor.head.bias.add_(1e-3)
    save_checkpoint(tmp_path / "b", teacher, robots=ROBOTS)
    assert checkpoint_hash(tmp_path / "b") != h


def test_wrong_kind_is_refused(tmp_path: Path, student: HyperNetPolicy) -> None:
    save_checkpoint(tmp_path, student, robots=ROBOTS)
    with pytest.raises(CheckpointError, match="is a student checkpoint, expected a teacher"):
        load_teacher(tmp_path)
    assert isinstance(load_student(tmp_path), HyperNetPolicy)


def edit_meta(directory: Path, **changes: object) -> None:
    path = directory / "checkpoint.json"
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(meta.get(key), dict):
            meta[key].update(value)
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_dir", r"checkpoint.json: no such file"),
        ("no_weights", r"model.safetensors: no such file"),
        ("corrupt", r"model.safetensors: corrupted safetensors file"),
        ("bad_json", r"checkpoint.json: not valid JSON"),
        ("version", r"checkpoint.json: format_version 99 is not supported \(expected 1\)"),
        ("kind", r"checkpoint.json: unknown kind 'critic'"),
        ("shape", r"model.safetensors: shape mismatch for 'actor.pos': file has \(12, 16\), "
         r"config needs \(12, 32\)"),
        ("unknown_key", r"checkpoint.json: TeacherConfig: unknown keys \['wings'\]"),
        ("layers", r"model.safetensors: tensors do not match the config: missing \[\], "
         r"unexpected \['actor.layers.0"),
    ],
)  # fmt: skip
def test_broken_checkpoints_raise_one_line_errors(
    tmp_path: Path, teacher: TeacherPolicy, breakage: str, message: str
) -> None:
    d = tmp_path / "ckpt"
    save_checkpoint(d, teacher, robots=ROBOTS)
    if breakage == "no_dir":
        d = tmp_path / "missing"
    elif breakage == "no_weights":
        (d / "model.safetensors").unlink()
    elif breakage == "corrupt":
        (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage")
    elif breakage == "bad_json":
        (d / "checkpoint.json").write_text("{not json")
    elif breakage == "version":
        edit_meta(d, format_version=99)
    elif breakage == "kind":
        edit_meta(d, kind="critic")
    elif breakage == "shape":
        edit_meta(d, config={"d_model": 32, "value_d_model": 16})
    elif breakage == "unknown_key":
        edit_meta(d, config={"wings": 2})
    elif breakage == "layers":
        edit_meta(d, config={"n_layers": 0})
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(d)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_extra_must_be_json(tmp_path: Path, teacher: TeacherPolicy) -> None:
    with pytest.raises(ValueError, match="checkpoint metadata is not plain JSON"):
        save_checkpoint(tmp_path, teacher, robots=ROBOTS, extra={"x": object()})
    with pytest.raises(TypeError, match="cannot checkpoint a Linear"):
        save_checkpoint(tmp_path, torch.nn.Linear(2, 2), robots=ROBOTS)  # type: ignore[arg-type]


def test_fingerprints_of_the_training_robots_are_recorded(
    tmp_path: Path, teacher: TeacherPolicy
) -> None:
    fps = ("0123456789abcdef", "fedcba9876543210")
    save_checkpoint(tmp_path / "list", teacher, robots=ROBOTS, fingerprints=fps)
    by_name = dict(zip(ROBOTS, fps, strict=True))
    save_checkpoint(tmp_path / "map", teacher, robots=ROBOTS, fingerprints=by_name)
    for name in ("list", "map"):
        info = read_checkpoint_info(tmp_path / name)
        assert info.robots == ROBOTS and info.robot_fingerprints == fps
        assert info.trained_on(fps[1]) is True and info.trained_on("0" * 16) is False
        meta = json.loads((tmp_path / name / "checkpoint.json").read_text())
        assert meta["robot_fingerprints"] == list(fps)
    with pytest.raises(ValueError, match="1 fingerprints for 2 robots"):
        save_checkpoint(tmp_path / "bad", teacher, robots=ROBOTS, fingerprints=fps[:1])
    with pytest.raises(ValueError, match=r"no fingerprint for robots \['robot_b'\]"):
        save_checkpoint(tmp_path / "bad", teacher, robots=ROBOTS, fingerprints={"robot_a": "x"})


def test_checkpoints_without_fingerprints_load_and_cannot_tell(
    tmp_path: Path, teacher: TeacherPolicy
) -> None:
    save_checkpoint(tmp_path / "old", teacher, robots=ROBOTS)  # as written before fingerprints
    meta = json.loads((tmp_path / "old" / "checkpoint.json").read_text())
    assert "robot_fingerprints" not in meta
    info = read_checkpoint_info(tmp_path / "old")
    assert info.robot_fingerprints is None and info.trained_on("0123456789abcdef") is None
    load_teacher(tmp_path / "old")


def test_recording_fingerprints_keeps_the_hash(tmp_path: Path, teacher: TeacherPolicy) -> None:
    save_checkpoint(tmp_path / "a", teacher, robots=ROBOTS)
    save_checkpoint(tmp_path / "b", teacher, robots=ROBOTS, fingerprints=["1" * 16, "2" * 16])
    assert checkpoint_hash(tmp_path / "a") == checkpoint_hash(tmp_path / "b")
    save_checkpoint(tmp_path / "c", teacher, robots=ROBOTS[:1], fingerprints=["1" * 16])
    assert checkpoint_hash(tmp_path / "c") != checkpoint_hash(tmp_path / "a")  # names count


def test_robot_contexts_are_recorded_beside_the_weights(
    tmp_path: Path, teacher: TeacherPolicy
) -> None:
    cfg = teacher.config
    ctx = np.random.default_rng(0).uniform(-1, 1, (2, cfg.max_limbs, cfg.context_dim))
    save_checkpoint(tmp_path / "a", teacher, robots=ROBOTS, contexts=ctx)
    got = read_contexts(read_checkpoint_info(tmp_path / "a"))
    assert got is not None and got.dtype == np.float32
    np.testing.assert_allclose(got, ctx, atol=1e-3)  # stored in float16
    save_checkpoint(tmp_path / "b", teacher, robots=ROBOTS)
    assert read_contexts(read_checkpoint_info(tmp_path / "b")) is None  # as written before
    save_checkpoint(tmp_path / "a2", teacher, robots=ROBOTS, contexts=ctx)
    save_checkpoint(tmp_path / "a2", teacher, robots=ROBOTS)  # over it: the record goes
    assert read_contexts(read_checkpoint_info(tmp_path / "a2")) is None
    assert checkpoint_hash(tmp_path / "a") == checkpoint_hash(tmp_path / "b")  # the same model
    with pytest.raises(ValueError, match=r"robot contexts of shape \(1, "):
        save_checkpoint(tmp_path / "c", teacher, robots=ROBOTS, contexts=ctx[:1])
    bad = ctx.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="expected finite"):
        save_checkpoint(tmp_path / "c", teacher, robots=ROBOTS, contexts=bad)
    # a file of another checkpoint's robots, and one that is not safetensors
    (tmp_path / "a" / CONTEXTS_FILE).write_bytes(save_numpy({"contexts": ctx[:1]}))
    with pytest.raises(CheckpointError, match=r"contexts of shape \(1, "):
        read_contexts(read_checkpoint_info(tmp_path / "a"))
    (tmp_path / "a" / CONTEXTS_FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a robot-contexts file"):
        read_contexts(read_checkpoint_info(tmp_path / "a"))


@pytest.mark.parametrize("stored", [["x"], "ab", [1, 2]])
def test_bad_fingerprints_raise_one_line_errors(
    tmp_path: Path, teacher: TeacherPolicy, stored: object
) -> None:
    save_checkpoint(tmp_path, teacher, robots=ROBOTS)
    edit_meta(tmp_path, robot_fingerprints=stored)
    with pytest.raises(CheckpointError, match="'robot_fingerprints' must be a list of strings"):
        read_checkpoint_info(tmp_path)


def test_compacted_checkpoint_loads_as_the_rounded_model(
    tmp_path: Path, student: HyperNetPolicy, random_cases: list[RobotCase]
) -> None:
    from safetensors.torch import load_file, save_file

    from hd_deploy.models.checkpoint import compact_checkpoint

    save_checkpoint(tmp_path, student, robots=ROBOTS)
    size = (tmp_path / "model.safetensors").stat().st_size
    compact_checkpoint(tmp_path)
    assert (tmp_path / "model.safetensors").stat().st_size < 0.6 * size
    stored = load_file(str(tmp_path / "model.safetensors"))
    assert {t.dtype for t in stored.values()} == {torch.float16}
    loaded = load_student(tmp_path)
    for name, value in student.state_dict().items():
        if name in stored:  # float32 again, each weight rounded once to float16
            assert torch.equal(loaded.state_dict()[name], value.half().float())
    p, c, m, _ = pad_batch(random_cases, 12)
    got, want = loaded.action_mean(p, c, m), student.action_mean(p, c, m)
    assert (got - want).abs().max() < 3e-3 * want.abs().max()  # about 1e-3 of the actions
    before = (tmp_path / "model.safetensors").read_bytes()
    compact_checkpoint(tmp_path)  # already compact: the same file
    assert (tmp_path / "model.safetensors").read_bytes() == before
    with pytest.raises(CheckpointError, match="compact dtype 'int8'"):
        compact_checkpoint(tmp_path, "int8")
    save_file({k: v.double() for k, v in stored.items()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="dtype mismatch"):  # widening only from halves
        load_student(tmp_path)
