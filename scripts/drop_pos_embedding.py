"""A teacher without its learned positional embedding, as close to the given one as it gets.

    python scripts/drop_pos_embedding.py CHECKPOINT OUT

MetaMorph adds a learned embedding per limb slot to every token; the variant the
HyperDistill authors train (ModuMorph's "MetaMorph*") has none, so a limb's role can come
only from its morphology context, not from where it stands in the token sequence. This
writes CHECKPOINT's teacher with ``pos_embedding`` off: the mean of the slot embeddings
over the slots stays (folded into the token embedding's bias, so the tokens keep their
average offset), each slot's own deviation goes. Where CHECKPOINT is a run's (it holds
``trainer_state.pt``), the state is carried too, Adam's moments matched by parameter name,
so that ``hd-train --init OUT --init-state`` branches the run without a fresh Adam.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from hd_deploy.errors import HdError
from hd_deploy.models import TeacherPolicy, load_teacher, save_checkpoint
from hd_deploy.models.checkpoint import read_checkpoint_info, read_contexts

PARTS = ("actor", "critic")  # the two transformers, each with its own slot embedding


def drop_pos_embedding(teacher: TeacherPolicy) -> TeacherPolicy:
    """``teacher`` without positional embedding, each slot's embedding replaced by their mean.

    Raises:
        ValueError: ``teacher`` has no positional embedding.
    """
    if not teacher.config.pos_embedding:
        raise ValueError("the teacher has no positional embedding to drop")
    out = TeacherPolicy(dataclasses.replace(teacher.config, pos_embedding=False))
    state = dict(teacher.state_dict())
    for part in PARTS:
        pos = state.pop(f"{part}.pos")
        scale = getattr(teacher, part)._scale  # tokens are embedded, then scaled, then + pos
        state[f"{part}.embed.bias"] = state[f"{part}.embed.bias"] + pos.mean(0) / scale
    out.load_state_dict(state)
    return out


def carry_optimizer(state: dict, old: TeacherPolicy, new: TeacherPolicy) -> dict:
    """Adam's ``state_dict`` of ``old`` made ``new``'s: each parameter's moments by name."""
    old_names = [n for n, _ in old.named_parameters()]
    new_names = [n for n, _ in new.named_parameters()]
    groups = state["param_groups"]
    if len(groups) != 1 or groups[0]["params"] != list(range(len(old_names))):
        raise ValueError("the optimiser state is not one group over the teacher's parameters")
    index = {n: i for i, n in enumerate(old_names)}
    moments = {
        j: state["state"][index[n]] for j, n in enumerate(new_names) if index[n] in state["state"]
    }
    return {"state": moments, "param_groups": [dict(groups[0], params=list(range(len(new_names))))]}


def write(checkpoint: str | Path, out: str | Path) -> Path:
    """Write CHECKPOINT's teacher without positional embedding (and its run state) to OUT."""
    if Path(out).resolve() == Path(checkpoint).resolve():
        raise ValueError(f"{out}: the checkpoint itself; write the new teacher to another folder")
    info = read_checkpoint_info(checkpoint)
    if info.kind != "teacher":
        raise ValueError(f"{checkpoint}: a {info.kind}; only a teacher has a positional embedding")
    teacher = load_teacher(checkpoint)
    new = drop_pos_embedding(teacher)
    path = save_checkpoint(
        out,
        new,
        robots=info.robots,
        fingerprints=list(info.robot_fingerprints) if info.robot_fingerprints else None,
        contexts=read_contexts(info),
        extra={**info.extra, "pos_embedding_dropped_from": str(checkpoint)},
    )
    state_file = Path(checkpoint) / "trainer_state.pt"
    if state_file.is_file():
        state = torch.load(state_file, weights_only=True, map_location="cpu")
        state["optimizer"] = carry_optimizer(state["optimizer"], teacher, new)
        torch.save(state, path / "trainer_state.pt")
    else:  # a state left in OUT by an earlier write belongs to another teacher
        (path / "trainer_state.pt").unlink(missing_ok=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="teacher checkpoint folder")
    parser.add_argument("out", type=Path, help="checkpoint folder to write")
    args = parser.parse_args()
    try:
        path = write(args.checkpoint, args.out)
    except (HdError, ValueError, OSError) as exc:
        sys.exit(f"error: {exc}")
    carried = " and its run state" if (path / "trainer_state.pt").is_file() else ""
    print(f"{path}: the teacher without positional embedding{carried}")


if __name__ == "__main__":
    main()
