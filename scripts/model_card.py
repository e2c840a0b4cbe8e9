"""Write the model card of the shipped checkpoints from the training runs' own records.

Every number comes from a file the project's commands wrote (run.json, progress.csv,
checkpoint.json, hd-eval JSON); nothing is typed in by hand.

    python scripts/model_card.py --runs training --out hd_deploy/assets/MODEL_CARD.md
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def _last_row(path: Path) -> dict:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else {}


def _eval_line(path: Path) -> str:
    if not path.exists():
        return "not measured"
    r = json.loads(path.read_text())
    return (
        f"{r['return_mean']:.1f} (std over robots {r['return_std']:.1f}; "
        f"{len(r['robots'])} robots x {r['episodes']} episodes, seed {r['seed']})"
    )


def _ratio(runs: Path, split: str) -> str:
    t, s = runs / f"eval_teacher_{split}.json", runs / f"eval_student_{split}.json"
    if not (t.exists() and s.exists()):
        return "not measured"
    tm = json.loads(t.read_text())["return_mean"]
    sm = json.loads(s.read_text())["return_mean"]
    return f"{sm / tm:.1%}" if tm > 0 else "undefined (teacher return <= 0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("training"))
    parser.add_argument("--out", type=Path, default=Path("hd_deploy/assets/MODEL_CARD.md"))
    args = parser.parse_args()
    runs = args.runs
    t_run = json.loads((runs / "teacher" / "run.json").read_text())
    t_ckpt = json.loads((runs / "teacher" / "checkpoint" / "checkpoint.json").read_text())
    t_last = _last_row(runs / "teacher" / "progress.csv")
    s_run = json.loads((runs / "student" / "run.json").read_text())
    s_ckpt = json.loads((runs / "student" / "checkpoint" / "checkpoint.json").read_text())
    s_last = _last_row(runs / "student" / "progress.csv")
    extra = t_ckpt["extra"]
    n_unimal = sum("unimal" in r for r in t_run["robots"])
    lines = [
        "# Shipped checkpoints: model card",
        "",
        "Written by `scripts/model_card.py` from the training runs' own records.",
        "Reproduce with `scripts/ship_defaults.sh` (exact commands, seeds, resumable).",
        "",
        "## Teacher (`checkpoints/teacher`)",
        f"- Architecture: `TeacherConfig` {json.dumps(t_ckpt['config'])}",
        f"- Trained with `hd-train` (PPO, seed {t_run['ppo']['seed']}) on {len(t_run['robots'])} "
        f"robots: {n_unimal} UNIMAL training robots and "
        f"{len(t_run['robots']) - n_unimal} generated robots (`hd-generate --count 20 --seed 0`).",
        f"- Environment steps: {extra['env_steps']:,} of the planned "
        f"{t_run['ppo']['total_steps']:,} (iteration {extra['iteration']}); wall time "
        f"{float(extra['wall_s']) / 3600:.2f} h on a 2-core CPU.",
        f"- Recent training return (last 100 episodes, stochastic policy): "
        f"{float(t_last.get('return_recent', 'nan')):.1f}",
        f"- `hd-eval` return, UNIMAL train: {_eval_line(runs / 'eval_teacher_train.json')}",
        f"- `hd-eval` return, UNIMAL test (unseen): {_eval_line(runs / 'eval_teacher_test.json')}",
        "",
        "## Student (`checkpoints/student`)",
        f"- Architecture: `HyperNetConfig` {json.dumps(s_ckpt['config'])}",
        f"- Distilled with `hd-distill` (seed {s_run['distill']['seed']}) from the teacher above "
        f"on the same {len(s_run['robots'])} robots: "
        f"{s_run['distill']['samples_per_robot']} teacher samples per robot, "
        f"{s_run['distill']['epochs']} epochs, DAgger rounds {s_run['distill']['dagger_rounds']}; "
        f"final loss {float(s_last.get('loss', 'nan')):.4g}; wall time "
        f"{float(s_last.get('wall_s', 'nan')) / 60:.1f} min (training only).",
        f"- `hd-eval` return (baked MLPs), UNIMAL train: "
        f"{_eval_line(runs / 'eval_student_train.json')}",
        f"- `hd-eval` return (baked MLPs), UNIMAL test (unseen): "
        f"{_eval_line(runs / 'eval_student_test.json')}",
        f"- Student / teacher return: train {_ratio(runs, 'train')}, test {_ratio(runs, 'test')}",
        "",
        "Returns: sum over a 1000-step episode of the torso's forward velocity (m/s), i.e. "
        "forward displacement / 0.02 s; episodes end early when the robot falls.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
