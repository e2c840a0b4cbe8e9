"""Which regularisation lets the hypernetwork generalise to robots it was not distilled on?

Trains one fresh student per setting on a distillation run's collected data with some
training robots held out, and reports the open-loop imitation error (relative to a zero
action, see scripts/imitation_gap.py) on the robots it trained on, on the held-out ones and,
with ``--unseen``, on robots from another folder labelled by the teacher. Every setting sees
the same robots, samples and seed; only the named options change.

    python scripts/generalisation_sweep.py training/student_gpu3 \\
        --teacher training/teacher_gpu/checkpoint --unseen ../shared/unimal/test \\
        --setting base: --setting dropout:context_dropout=0.3 \\
        --setting noise:context_noise=0.2 --setting wd:weight_decay=0.05 \\
        --out training/sweep

A setting is ``NAME:key=value,...`` with keys of DistillConfig (lr, weight_decay,
context_noise, ...) or HyperNetConfig (context_dropout, context_d, hidden, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from hd_deploy.models import HyperNetConfig, HyperNetPolicy, load_teacher
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.train.bc import set_cosine_lr
from hd_deploy.train.config import DistillConfig
from hd_deploy.train.distill import (
    ImitationError,
    imitation_errors,
    make_optimizer,
    train_epoch,
)
from hd_deploy.train.rollout import DistillData, collect

SETS = ("train", "held_out", "unseen")


def parse_setting(text: str) -> tuple[str, DistillConfig, HyperNetConfig]:
    """``NAME:key=value,...`` -> (name, distill config, student config) on the CPU defaults."""
    name, _, body = text.partition(":")
    distill, model = DistillConfig(device="cpu"), HyperNetConfig.small()
    d_keys = {f.name for f in dataclasses.fields(DistillConfig)}
    m_keys = {f.name for f in dataclasses.fields(HyperNetConfig)}
    for item in filter(None, body.split(",")):
        key, _, raw = item.partition("=")
        if key in d_keys:
            kind = type(getattr(distill, key))
            distill = dataclasses.replace(distill, **{key: kind(raw)})
        elif key in m_keys:
            kind = type(getattr(model, key))
            model = dataclasses.replace(model, **{key: kind(raw)})
        else:
            raise SystemExit(f"error: setting {name!r}: unknown option {key!r}")
    return name or "base", distill, model


def split_robots(n_robots: int, holdout_every: int, among: int) -> tuple[list[int], list[int]]:
    """Every ``holdout_every``-th of the first ``among`` robots is held out."""
    held = [r for r in range(min(among, n_robots)) if r % holdout_every == holdout_every - 1]
    return [r for r in range(n_robots) if r not in held], held


def summarise(errors: list[ImitationError]) -> dict:
    rel = np.array([e.relative for e in errors])
    executed = np.array([e.executed_relative for e in errors])
    return {"relative_median": float(np.median(rel)), "relative_mean": float(rel.mean()),
            "loss_mean": float(np.mean([e.loss for e in errors])),
            "executed_relative_median": float(np.median(executed))}  # fmt: skip


def run_setting(
    name: str,
    distill: DistillConfig,
    model: HyperNetConfig,
    train: DistillData,
    evals: dict[str, DistillData],
    teacher,
    *,
    epochs: int,
    eval_every: int,
    seed: int,
) -> dict:
    """Train one fresh student on ``train``; evaluate on every set of ``evals`` along the way."""
    torch.manual_seed(seed)
    student = HyperNetPolicy(model)
    student.normalizer.load_state_dict(teacher.normalizer.state_dict())
    opt = make_optimizer(student, distill)
    curve, t0 = [], time.time()
    for epoch in range(epochs):
        set_cosine_lr(opt, distill.lr, epoch, epochs, distill.warmup_epochs)
        loss = train_epoch(student, opt, train, distill, torch.device("cpu"))
        if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
            row = {"epoch": epoch + 1, "loss": loss, "wall_s": round(time.time() - t0, 1)}
            for key, data in evals.items():
                row[key] = summarise(imitation_errors(student, data))
            curve.append(row)
            print(f"{name:>12} epoch {epoch + 1:3d} loss {loss:.4f} " + " ".join(
                f"{k} {row[k]['relative_median']:.3f}" for k in evals))  # fmt: skip
    return {"name": name, "distill": distill.to_dict(), "student": model.to_dict(),
            "curve": curve, "final": curve[-1]}  # fmt: skip


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in SETS if k in results[0]["final"]]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), sharey=False)
    for ax, key in zip(np.atleast_1d(axes), keys, strict=True):
        for res in results:
            epochs = [r["epoch"] for r in res["curve"]]
            ax.plot(epochs, [r[key]["relative_median"] for r in res["curve"]], label=res["name"])
        ax.set_title(f"{key.replace('_', ' ')} robots")
        ax.set_xlabel("epoch")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    np.atleast_1d(axes)[0].set_ylabel("imitation error / zero action (median)")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="distillation run folder (data.npz, run.json)")
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--setting", action="append", required=True)
    parser.add_argument("--unseen", type=Path, help="folder of robots no setting trains on")
    parser.add_argument("--unseen-samples", type=int, default=1000)
    parser.add_argument("--holdout-every", type=int, default=5)
    parser.add_argument(
        "--holdout-among",
        type=int,
        default=100,
        help="hold out among the run's first N robots (UNIMAL train)",
    )
    parser.add_argument("--samples", type=int, default=4000, help="per training robot")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    settings = [parse_setting(s) for s in args.setting]
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    teacher = load_teacher(args.teacher)

    data = DistillData.load(args.run / "data.npz")
    train_ids, held_ids = split_robots(data.n_robots, args.holdout_every, args.holdout_among)
    rng = np.random.default_rng(args.seed)
    sets = {"train": data.select(train_ids, args.samples, rng),
            "held_out": data.select(held_ids, args.samples, rng)}  # fmt: skip
    del data
    probe = sets["train"].select(range(0, len(train_ids), max(1, len(train_ids) // 20)))
    if args.unseen:
        cache = args.out / f"unseen_{args.unseen.name}_{args.unseen_samples}.npz"
        if cache.exists():
            unseen = DistillData.load(cache)
        else:
            cfg = DistillConfig(samples_per_robot=args.unseen_samples, n_workers=2, seed=0)
            unseen = collect(args.teacher, resolve_robots([args.unseen]), config=cfg)
            unseen.save(cache)
    print(f"{len(train_ids)} training robots ({sets['train'].n_samples} samples), "
          f"{len(held_ids)} held out")  # fmt: skip

    evals = {"train": probe, "held_out": sets["held_out"]}
    if args.unseen:
        evals["unseen"] = unseen
    results = []
    for name, distill, model in settings:
        res = run_setting(
            name,
            distill,
            model,
            sets["train"],
            evals,
            teacher,
            epochs=args.epochs,
            eval_every=args.eval_every,
            seed=args.seed,
        )
        results.append(res)
        (args.out / "sweep.json").write_text(json.dumps(
            {"run": str(args.run), "epochs": args.epochs, "samples": args.samples,
             "held_out": held_ids, "results": results}, indent=2))  # fmt: skip
        plot(results, args.out / "sweep.png")


if __name__ == "__main__":
    main()
