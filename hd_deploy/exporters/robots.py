"""Export controllers for many robots from one checkpoint (what ``hd-export`` runs)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hd_deploy.envs.task import LocomotionTask, TaskConfig, build_model, check_at_rest
from hd_deploy.exporters.c import CExportResult, export_c
from hd_deploy.exporters.onnx import (
    ExportError,
    ExportResult,
    export_controller,
    verification_obs,
)
from hd_deploy.models.baked import BakedMLP
from hd_deploy.models.checkpoint import (
    META_FILE,
    checkpoint_hash,
    load_student,
    load_teacher,
    read_checkpoint_info,
    read_training_robots,
)
from hd_deploy.models.teacher import TeacherExport, TeacherPolicy
from hd_deploy.morphology.features import context
from hd_deploy.morphology.nearness import Nearest, pad_context
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.runtime.metadata import build_metadata

FORMATS = ("onnx", "c")
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"


# a baked MLP and its robot's task -> the MLP to export and the record of its tuning
Tuner = Callable[[BakedMLP, LocomotionTask], tuple[BakedMLP, dict[str, Any]]]


def shipped_checkpoint(kind: str) -> Path:
    """The checkpoint shipped with the package for ``kind`` (``"student"`` or ``"teacher"``).

    Raises:
        ExportError: It is not there (training has not produced it yet).
    """
    path = SHIPPED_CHECKPOINTS / kind
    if not (path / META_FILE).is_file():
        raise ExportError(f"no shipped {kind} checkpoint at {path}; pass --checkpoint")
    return path


def output_name(robot_name: str, kind: str) -> str:
    """``<robot>.onnx`` for a student, ``<robot>.teacher.onnx`` for a teacher."""
    return f"{robot_name}.onnx" if kind == "student" else f"{robot_name}.{kind}.onnx"


def export_robots(
    robots: Sequence[str | Path],
    *,
    checkpoint: str | Path | None = None,
    out_dir: str | Path,
    dynamic_batch: bool = False,
    teacher: bool = False,
    progress: bool = False,
    config: TaskConfig = TaskConfig(),
    verify: bool = True,
    on_result: Callable[[ExportResult | CExportResult], None] | None = None,
    formats: Sequence[str] = ("onnx",),
    tune: Tuner | None = None,
) -> list[ExportResult | CExportResult]:
    """Bake (one batched hypernetwork call) and export a controller per robot.

    Args:
        robots: MJCF files or folders of them.
        checkpoint: Student checkpoint (teacher with ``teacher``); None: the shipped one.
        out_dir: Output folder (created); files are ``<robot>.onnx`` or
            ``<robot>.teacher.onnx``.
        dynamic_batch: Symbolic batch dimension instead of batch 1.
        teacher: Export the transformer teacher (same I/O and metadata) instead.
        progress: Show a progress bar on stderr.
        config: Task timing stored in the files.
        verify: Check every file (see :func:`export_controller`).
        on_result: Called with each result as soon as its file is written.
        formats: ``"onnx"`` and/or ``"c"`` (``<robot>.h`` + ``<robot>.c``, students only;
            verified by compiling it when ``verify``).
        tune: Called with each robot's baked MLP and task before its export; what it
            returns (an MLP for the same robot, and the record stored in the controller's
            metadata as ``tuned``) is exported instead (``hd-tune``; students only).

    Returns:
        One result per robot and format, in input order, each with the robot's nearest
        training robot where the checkpoint records their contexts.

    Raises:
        ExportError: No checkpoint, clashing robot names, or a failed check.
        CheckpointError: The checkpoint cannot be read or is of the other kind.
        MorphologyError: A robot cannot be read.
    """
    kind = "teacher" if teacher else "student"
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ExportError(f"formats must be among {list(FORMATS)}, got {list(formats)}")
    if teacher and tune is not None:
        raise ExportError("tuning is for baked students; drop --teacher")
    if teacher and "c" in formats:
        raise ExportError("the C export is for baked students; drop --teacher or --format c")
    files = resolve_robots(robots)
    ckpt = Path(checkpoint) if checkpoint is not None else shipped_checkpoint(kind)
    policy = load_teacher(ckpt) if teacher else load_student(ckpt)
    source_hash = checkpoint_hash(ckpt)
    max_limbs = policy.config.max_limbs
    task_config = TaskConfig(
        timestep=config.timestep, frame_skip=config.frame_skip, max_limbs=max_limbs
    )

    texts, parsed = [], []
    for f in files:
        model, robot = build_model(f, config=task_config)
        check_at_rest(model, robot, frame_skip=task_config.frame_skip)
        parsed.append((model, robot))
        texts.append(_mjcf_text(Path(f)))
    names = [robot.name for _, robot in parsed]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ExportError(f"several robots are named {clashes}; their files would overwrite")
    contexts = [context(robot, model) for model, robot in parsed]
    near = _nearest(ckpt, contexts)
    robots_ = [robot for _, robot in parsed]
    modules: list[BakedMLP | TeacherExport] = []
    if isinstance(policy, TeacherPolicy):
        modules.extend(policy.for_robot(r, c) for r, c in zip(robots_, contexts, strict=True))
    else:
        modules.extend(policy.bake(robots_, contexts))  # one batched hypernetwork call

    out = Path(out_dir)
    results: list[ExportResult | CExportResult] = []
    with _progress(progress, len(files)) as tick:
        for module, robot, text, close in zip(modules, robots_, texts, near, strict=True):
            tick(robot.name)
            done: list[ExportResult | CExportResult] = []
            task = None  # built only where needed: fleets of ONNX files go without
            if tune is not None or "c" in formats:
                task = LocomotionTask(text, config=task_config, name=robot.name)
            tuned = None
            if tune is not None:
                assert isinstance(module, BakedMLP) and task is not None
                module, tuned = tune(module, task)
            if "onnx" in formats:
                done.append(export_controller(
                    module, robot, text, out / output_name(robot.name, kind), kind=kind,
                    source_hash=source_hash, dynamic_batch=dynamic_batch, verify=verify,
                    config=task_config, nearest=close, tuned=tuned,
                ))  # fmt: skip
            if "c" in formats:
                assert isinstance(module, BakedMLP) and task is not None
                near_dict = None if close is None else close.to_dict()
                meta = build_metadata(robot, kind=kind, mjcf=text, source_hash=source_hash,
                                      config=task_config, nearest=near_dict,
                                      tuned=tuned)  # fmt: skip
                obs = verification_obs(module, task, seed=0) if verify else None
                done.append(replace(export_c(module, meta, out, verify_obs=obs), nearest=close))
            for result in done:
                results.append(result)
                if on_result is not None:
                    on_result(result)
            tick(None)
    return results


def _nearest(ckpt: Path, contexts: list[np.ndarray]) -> list[Nearest | None]:
    """Each robot's nearest training robot of the checkpoint, from the robots' contexts
    (None where the checkpoint records no robot contexts)."""
    training = read_training_robots(read_checkpoint_info(ckpt))
    if training is None:
        return [None] * len(contexts)
    rows = training.places.shape[1]
    return [training.nearest(pad_context(ctx, rows)) for ctx in contexts]


def _mjcf_text(path: Path) -> str:
    """The file's own text, with every ``<include file=...>`` spliced in verbatim.

    Splicing keeps each attribute's text as written, so the embedded robot compiles to the
    same numbers and the same fingerprint. (MuJoCo's own single-file rewrite, ``to_xml``,
    keeps about six significant digits: values near a rounding edge of the fingerprint,
    such as a 50 degree range, then changed the robot's identity.)
    """
    text = path.read_text(encoding="utf-8")
    if "<include" not in text:
        return text
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
        _splice_includes(root, path.parent, seen=(path.resolve(),))
    except ET.ParseError as exc:
        raise ExportError(f"{path}: malformed MJCF: {exc}") from exc
    return ET.tostring(root, encoding="unicode")


def _splice_includes(element, folder: Path, *, seen: tuple[Path, ...]) -> None:
    """Replace each ``<include>`` child (recursively) by the children of its file's root."""
    import xml.etree.ElementTree as ET

    for i, child in reversed(list(enumerate(element))):
        if child.tag != "include":
            _splice_includes(child, folder, seen=seen)
            continue
        name = child.get("file", "")
        target = (folder / name).resolve()
        if target in seen:
            raise ExportError(f"{target}: includes itself")
        if not target.is_file():
            raise ExportError(f"{folder / name}: included file not found")
        included = ET.fromstring(target.read_text(encoding="utf-8"))
        _splice_includes(included, target.parent, seen=(*seen, target))
        element.remove(child)
        for k, part in enumerate(list(included)):
            element.insert(i + k, part)


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[str | None], None]]:
    """A transient rich progress bar on stderr (or nothing); yields ``tick(name)``.

    ``tick(name)`` shows the robot being exported; ``tick(None)`` marks it done.
    """
    if not enabled:
        yield lambda name: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("exporting {task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=total)

        def tick(name: str | None) -> None:
            if name is None:
                bar.advance(task)
            else:
                bar.update(task, description=name)

        yield tick
