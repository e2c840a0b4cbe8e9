"""Average the weights of several checkpoints of one run into one (stochastic weight averaging).

    python scripts/average_checkpoints.py OUT CHECKPOINT CHECKPOINT [...]

Every tensor, the observation normaliser's mean and variance included, becomes the plain
mean over the checkpoints; the result is an ordinary checkpoint every command loads. The
checkpoints must share the model config and the training robots (snapshots of one run,
e.g. from its git history: ``git show COMMIT:training/RUN/checkpoint/model.safetensors``).
``extra`` records the sources and their iterations. Averaging snapshots along one run's
late, slow stretch often generalises better than any one of them; whether it does here is
for ``hd-eval`` to say.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from hd_deploy.errors import HdError
from hd_deploy.models.checkpoint import (
    load_checkpoint,
    read_checkpoint_info,
    read_contexts,
    save_checkpoint,
)


def average_checkpoints(out: str | Path, checkpoints: Sequence[str | Path]) -> Path:
    """Write the weight average of ``checkpoints`` (at least two) to ``out``.

    Raises:
        ValueError: Fewer than two checkpoints, or they differ in kind, config or robots.
        hd_deploy.errors.CheckpointError: A checkpoint cannot be read.
    """
    if len(checkpoints) < 2:
        raise ValueError(f"need at least two checkpoints to average, got {len(checkpoints)}")
    infos = [read_checkpoint_info(c) for c in checkpoints]
    first = infos[0]
    for info in infos[1:]:
        if info.kind != first.kind:
            raise ValueError(f"{info.path}: a {info.kind}, where {first.path} is a {first.kind}")
        if info.config != first.config:
            raise ValueError(f"{info.path}: another model config than {first.path}")
        if info.robots != first.robots:
            raise ValueError(f"{info.path}: other training robots than {first.path}")
    models = [load_checkpoint(c) for c in checkpoints]
    states = [m.state_dict() for m in models]
    averaged = {}
    for name, ref in states[0].items():
        if ref.is_floating_point() and ref.dim() > 0:
            averaged[name] = torch.stack([s[name].double() for s in states]).mean(0).to(ref.dtype)
        else:  # the normaliser's sample count: the largest
            averaged[name] = torch.stack([s[name] for s in states]).max()
    model = models[-1]
    model.load_state_dict(averaged)
    sources = [
        {"path": str(c), "iteration": info.extra.get("iteration")}
        for c, info in zip(checkpoints, infos, strict=True)
    ]
    last = infos[-1]
    return save_checkpoint(
        out,
        model,
        robots=last.robots,
        fingerprints=list(last.robot_fingerprints) if last.robot_fingerprints else None,
        contexts=read_contexts(last),
        extra={"averaged_from": sources, "env_steps": last.extra.get("env_steps")},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="checkpoint folder to write")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="checkpoint folders")
    args = parser.parse_args()
    try:
        path = average_checkpoints(args.out, args.checkpoints)
    except (HdError, ValueError, OSError) as exc:
        sys.exit(f"error: {exc}")
    print(f"{path}: the average of {len(args.checkpoints)} checkpoints")


if __name__ == "__main__":
    main()
