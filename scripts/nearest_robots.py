"""How far each robot of an hd-eval report lies from the robots the policy trained on.

A robot's place is its morphology context (``DESIGN.md``: 53 numbers a limb, each in
[-1, 1]) with the limbs in the tree order the policy reads them, padded with zeros to 12
limbs; the distance between two robots is the Euclidean one between those (a limb that one
robot has and the other lacks counts in full). For every robot of the report this finds
its nearest training robot, splits the robots into ``--groups`` equal groups from nearest
to farthest and prints each group's distances, mean return and falls, with the rank
correlation of distance and return. For scale it prints the median distance from each
training robot to its nearest other training robot. Several reports of the same robots
(evaluation seeds) are pooled robot by robot: mean return and mean episode length.

    python scripts/nearest_robots.py training/eval_teacher_cpu_mb4_test*.json \\
        --robots ../shared/unimal/test --train ../shared/unimal/train \\
        [--train training/generated] [--groups 3] [--list] [--json out.json]
    python scripts/nearest_robots.py training/eval_student_mb4_ep_test*.json \\
        --robots ../shared/unimal/test --checkpoint hd_deploy/assets/checkpoints/student

(``--checkpoint``: the training robots the checkpoint records, ``robot_contexts.safetensors``.)
It also splits the robots at hd-export's warning, ``FAR`` x the training robots' spacing.

A coarse measure: it knows nothing of which differences matter to the policy, but it tells
whether the robots a policy fails on are the ones unlike anything it trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hd_deploy.errors import HdError
from hd_deploy.models.checkpoint import read_checkpoint_info, read_contexts
from hd_deploy.morphology.nearness import FAR, distances, fingerprint_and_place
from hd_deploy.morphology.robot import MAX_LIMBS
from hd_deploy.morphology.sources import resolve_robots


def place(path: Path) -> np.ndarray:
    """The robot's context as the policy reads it (the task's padded context), one vector."""
    return fingerprint_and_place(path, MAX_LIMBS)[1].ravel()


def nearest(queries: np.ndarray, pool: np.ndarray, *, exclude_self: bool = False) -> np.ndarray:
    """Distance from each row of ``queries`` to its nearest row of ``pool`` (with
    ``exclude_self``, ``queries`` is ``pool`` and a row does not count as its own nearest)."""
    d = distances(queries, pool)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties broken by order, enough for continuous numbers)."""
    ra, rb = (np.argsort(np.argsort(x)).astype(float) for x in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


def pooled(reports: list[dict]) -> dict:
    """One report of the reports' robots: each robot's mean return and mean episode length
    over the reports (evaluation seeds).

    Raises:
        HdError: A report has no robots, or not the same robots as the first.
    """
    if any(not r.get("robots") for r in reports):
        raise HdError("a report has no robots (not an hd-eval --json report?)")
    names = [r["name"] for r in reports[0]["robots"]]
    rows = [{r["name"]: r for r in rep["robots"]} for rep in reports]
    if any(row.keys() != set(names) for row in rows):
        raise HdError("the reports are not of the same robots")
    return {"robots": [
        {"name": n,
         "return_mean": float(np.mean([row[n]["return_mean"] for row in rows])),
         "episode_length_mean": float(np.mean([row[n]["episode_length_mean"] for row in rows]))}
        for n in names
    ]}  # fmt: skip


def by_distance(report: dict, distance: dict[str, float], *, groups: int, below: float) -> dict:
    """The report's robots in ``groups`` groups from nearest to farthest: each group's
    distance range, robots, mean return and falls (mean episode shorter than ``below``)."""
    robots = sorted(report["robots"], key=lambda r: distance[r["name"]])
    d = np.array([distance[r["name"]] for r in robots])
    ret = np.array([r["return_mean"] for r in robots])
    out = []
    for idx in np.array_split(np.arange(len(robots)), min(groups, len(robots))):
        out.append({
            "distance_min": float(d[idx].min()), "distance_max": float(d[idx].max()),
            "robots": len(idx), "return_mean": float(ret[idx].mean()),
            "falling": int(sum(robots[i]["episode_length_mean"] < below for i in idx)),
        })  # fmt: skip
    return {
        "groups": out,
        "rank_correlation": rank_correlation(d, ret) if len(robots) > 1 else float("nan"),
        "robots": [
            {"name": r["name"], "distance": float(di), "return": float(ri),
             "length": float(r["episode_length_mean"])}
            for r, di, ri in zip(robots, d, ret, strict=True)
        ],
    }  # fmt: skip


def unseen_only(report: dict, reports: list[dict]) -> dict:
    """``report`` without the robots any of ``reports`` marks ``seen_in_training`` (bodies
    the checkpoint trained on under another name; hd-eval records it).

    Raises:
        HdError: A report does not record it.
    """
    if any("seen_in_training" not in r for rep in reports for r in rep["robots"]):
        raise HdError("--unseen: a report does not record seen_in_training "
                      "(scripts/add_eval_fingerprints.py adds it)")  # fmt: skip
    seen = {r["name"] for rep in reports for r in rep["robots"] if r["seen_in_training"]}
    return {"robots": [r for r in report["robots"] if r["name"] not in seen]}


def far_split(robots: list[dict], limit: float, *, below: float) -> list[dict]:
    """The robots (``by_distance``'s list) within ``limit`` of a training robot and beyond
    it: how many, their mean return and falls (what hd-export warns of)."""
    out = []
    for side in ([r for r in robots if r["distance"] <= limit],
                 [r for r in robots if r["distance"] > limit]):  # fmt: skip
        out.append({
            "robots": len(side),
            "return_mean": float(np.mean([r["return"] for r in side])) if side else float("nan"),
            "falling": sum(r["length"] < below for r in side),
        })  # fmt: skip
    return out


def _training_places(args: argparse.Namespace) -> np.ndarray:
    """The training robots' places: from ``--train``'s files or ``--checkpoint``'s record."""
    if args.train:
        return np.stack([place(f) for f in resolve_robots(args.train)])
    info = read_checkpoint_info(args.checkpoint)
    contexts = read_contexts(info)
    if contexts is None:
        raise HdError(f"{args.checkpoint}: records no robot contexts (scripts/add_contexts.py)")
    if info.config.max_limbs != MAX_LIMBS:
        raise HdError(f"{args.checkpoint}: hosts {info.config.max_limbs} limbs, not {MAX_LIMBS}")
    return contexts.reshape(len(contexts), -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "reports", type=Path, nargs="+", help="hd-eval --json reports of the same robots"
    )
    parser.add_argument("--robots", type=Path, action="append", required=True,
                        help="the reports' robots (files or folders)")  # fmt: skip
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", type=Path, action="append",
                        help="the robots the policy trained on (files or folders)")  # fmt: skip
    source.add_argument("--checkpoint", type=Path,
                        help="or: the checkpoint whose recorded robots to use")  # fmt: skip
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--below", type=float, default=1000.0, help="a fall: a mean length below")
    parser.add_argument("--list", action="store_true", help="also print every robot")
    parser.add_argument("--unseen", action="store_true",
                        help="leave out the robots a report marks seen_in_training")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.groups < 1:
        sys.exit("error: --groups must be >= 1")
    try:
        reports = [json.loads(path.read_text()) for path in args.reports]
        report = pooled(reports)
        if args.unseen:
            report = unseen_only(report, reports)
        files = {f.stem: f for f in resolve_robots(args.robots)}
        missing = [r["name"] for r in report["robots"] if r["name"] not in files]
        if missing:
            raise HdError(f"{missing[0]} (in the report) is not among --robots")
        train = _training_places(args)
        names = [r["name"] for r in report["robots"]]
        queries = np.stack([place(files[n]) for n in names])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.exit(f"error: {exc}")
    distance = dict(zip(names, nearest(queries, train).tolist(), strict=True))
    out = by_distance(report, distance, groups=args.groups, below=args.below)
    out["reports"] = [str(p) for p in args.reports]
    out["train_robots"] = len(train)
    out["train_nearest_median"] = (
        float(np.median(nearest(train, train, exclude_self=True))) if len(train) > 1 else None
    )
    scale = out["train_nearest_median"]
    median = float(np.median(list(distance.values())))
    print(
        f"{', '.join(map(str, args.reports))}: {len(names)} robots against {len(train)} "
        f"training robots; median distance to the nearest training robot {median:.2f}"
        + ("" if scale is None else f" (training robots to each other: {scale:.2f})")
    )
    for g in out["groups"]:
        print(
            f"  distance {g['distance_min']:5.2f}-{g['distance_max']:5.2f}: {g['robots']:3d} "
            f"robots, mean return {g['return_mean']:7.1f}, {g['falling']} falling"
        )
    print(f"  rank correlation of distance and return: {out['rank_correlation']:+.2f}")
    if scale is not None:
        out["far"] = far_split(out["robots"], FAR * scale, below=args.below)
        for side, g in zip(("within", "beyond"), out["far"], strict=True):
            print(f"  {side} {FAR:g}x the training robots' spacing ({FAR * scale:.2f}): "
                  f"{g['robots']} robots, mean return {g['return_mean']:.1f}, "
                  f"{g['falling']} falling")  # fmt: skip
    if args.list:
        for r in out["robots"]:
            print(f"  {r['distance']:5.2f} {r['return']:7.1f} {r['length']:6.0f}  {r['name']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
