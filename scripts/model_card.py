"""Write the model card of the shipped checkpoints from the training runs' own records.

Every number comes from a file the project's commands wrote (run.json, progress.csv,
checkpoint.json, hd-eval JSON); nothing is typed in by hand.

    python scripts/model_card.py --runs training --out hd_deploy/assets/MODEL_CARD.md
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from hd_deploy.runtime.episodes import STANDSTILL_RETURN, STANDSTILL_SPEED
from hd_deploy.train.config import WARMUP_FACTOR, PPOConfig
from hd_deploy.train.sampling import training_return, training_return_column

# The evaluation sets compared seed by seed: name in eval_<run>_<name>.json, and label
SPLITS = (("train", "UNIMAL train"), ("test", "UNIMAL test"),
          ("mutate200", "held-out `mutate200`"))  # fmt: skip
# The paper's teacher (MetaMorph-style, 100M steps), mean return over robots, as
# ../shared/unimal/README.md quotes it from the authors' plotting code
PAPER_TEACHER = {"train": 3600, "test": 1170}


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


def _pair(runs: Path, teacher: str, student: str, name: str) -> tuple[dict, dict] | None:
    """Teacher and student hd-eval reports ``eval_<run>_<name>.json``; None unless both exist."""
    t, s = runs / f"eval_{teacher}_{name}.json", runs / f"eval_{student}_{name}.json"
    if not (t.exists() and s.exists()):
        return None
    return json.loads(t.read_text()), json.loads(s.read_text())


def _seed_names(split: str) -> list[str]:
    """Report names of ``split`` at every evaluation seed: seed 0 is ``<split>``, seed k
    ``<split>_seed<k>``."""
    return [split] + [f"{split}_seed{k}" for k in range(1, 10)]


def _per_robot(report: dict) -> dict[str, float]:
    return {r["name"]: r["return_mean"] for r in report["robots"]}


def _ratio(runs: Path, teacher: str, student: str, split: str) -> str:
    pair = _pair(runs, teacher, student, split)
    if pair is None:
        return "not measured"
    tm, sm = (r["return_mean"] for r in pair)
    return f"{sm / tm:.1%}" if tm > 0 else "undefined (teacher return <= 0)"


def _median_ratio(runs: Path, teacher: str, student: str, split: str, floor: float = 200.0):
    """Median per-robot student / teacher return over robots where the teacher exceeds
    ``floor``, and how many robots that is; None if unmeasured."""
    pair = _pair(runs, teacher, student, split)
    if pair is None:
        return None
    tr, sr = (_per_robot(r) for r in pair)
    ratios = sorted(sr[n] / tr[n] for n in tr if n in sr and tr[n] > floor)
    if not ratios:
        return None
    mid = len(ratios) // 2
    median = ratios[mid] if len(ratios) % 2 else 0.5 * (ratios[mid - 1] + ratios[mid])
    return median, len(ratios)


def _seed_lines(runs: Path, teacher: str, student: str) -> list[str]:
    """Returns per evaluation seed and pooled, per split measured at more than one seed.

    Seed 0 is ``eval_<run>_<split>.json``, seed k ``eval_<run>_<split>_seed<k>.json``.
    """
    lines = []
    for split, label in SPLITS:
        pairs = [p for name in _seed_names(split) if (p := _pair(runs, teacher, student, name))]
        if len(pairs) < 2:
            continue
        tm = [t["return_mean"] for t, _ in pairs]
        sm = [s["return_mean"] for _, s in pairs]
        seeds = ", ".join(str(t["seed"]) for t, _ in pairs)
        episodes = pairs[0][0]["episodes"]
        lines.append(
            f"- {label[0].upper()}{label[1:]} at evaluation seeds {seeds} ({episodes} episode"
            f"{'s' if episodes != 1 else ''} each): teacher "
            f"{' / '.join(f'{x:.1f}' for x in tm)}, student "
            f"{' / '.join(f'{x:.1f}' for x in sm)}, student / teacher "
            f"{' / '.join(f'{b / a:.1%}' for a, b in zip(tm, sm, strict=True))}; "
            f"pooled over the seeds {sum(sm) / sum(tm):.1%}."
        )
    return lines


def _deficit_line(runs: Path, teacher: str, student: str) -> list[str]:
    """Which training robots carry the student's shortfall, pooled over evaluation seeds."""
    pairs = [p for name in _seed_names("train") if (p := _pair(runs, teacher, student, name))]
    if not pairs:
        return []
    gap: dict[str, float] = {}
    for t_report, s_report in pairs:
        t, s = _per_robot(t_report), _per_robot(s_report)
        for n in t.keys() & s.keys():
            gap[n] = gap.get(n, 0.0) + (t[n] - s[n]) / len(pairs)
    # shares of the deficits only: robots where the student leads would cancel them out
    total = sum(g for g in gap.values() if g > 0)
    if total <= 0:
        return []
    worst = sorted(gap, key=gap.get, reverse=True)  # type: ignore[arg-type]
    top, ten = worst[0], sum(max(gap[n], 0.0) for n in worst[:10])
    seeds = f"{len(pairs)} evaluation seed{'s' if len(pairs) > 1 else ''}"
    return [
        f"- Train shortfall: robot `{top}` alone carries {gap[top] / total:.0%} of the "
        f"student's return deficit against the teacher, summed over the robots where it "
        f"trails (mean over {seeds}), the ten worst robots {ten / total:.0%}."
    ]


def _limits(runs: Path, teacher: str, student: str) -> list[str]:
    lines = ["", "## Limits", *_deficit_line(runs, teacher, student)]
    t = {sp: runs / f"eval_{teacher}_{sp}.json" for sp in ("train", "test")}
    if t["train"].exists() and t["test"].exists():
        tm = {sp: json.loads(t[sp].read_text())["return_mean"] for sp in t}
        lines.append(
            f"- Unseen robots: the teacher's zero-shot return on UNIMAL test is "
            f"{tm['test']:.1f}, {tm['test'] / tm['train']:.0%} of its {tm['train']:.1f} on "
            "train; the student copies what the teacher carries over, no more."
        )
    lines += _nearest_line(runs, teacher)
    measured = {sp: pooled_mean(runs, teacher, sp) for sp in PAPER_TEACHER}
    mean = {sp: m for sp, m in measured.items() if m is not None}
    if len(mean) == len(PAPER_TEACHER):
        lines.append(
            "- Against the paper's MetaMorph-style teacher (100M PPO steps: about "
            f"{PAPER_TEACHER['train']} on UNIMAL train, {PAPER_TEACHER['test']} zero-shot on "
            "test; `../shared/unimal/README.md`), this teacher reaches "
            + ", ".join(
                f"{mean[sp]:.0f} on {sp} ({mean[sp] / PAPER_TEACHER[sp]:.0%})"
                for sp in PAPER_TEACHER
            )  # fmt: skip
            + " (pooled over the evaluation seeds): it trained a small fraction of those steps."
        )
    gap = runs / f"gap_{student}.json"
    if gap.exists():
        report = json.loads(gap.read_text())
        parts = [f"{Path(x['set']).name} {x['relative_median']:.2f}" for x in report["sets"]]
        lines.append(
            "- Open-loop imitation error on teacher-driven states relative to a zero action "
            f"(median over robots; 0 = exact copy, 1 = no better than zero): {', '.join(parts)} "
            f"(`scripts/imitation_gap.py`, {report['samples']} states per robot). Where it is "
            "near 1 the hypernetwork's context-to-weights mapping does not carry over to those "
            "morphologies."
        )
        if all("executed_relative_median" in x for x in report["sets"]):  # reports since 12-02
            parts = [
                f"{Path(x['set']).name} {x['executed_relative_median']:.2f} "
                f"({x['teacher_saturated']:.0%} of the teacher's commands beyond +-1)"
                for x in report["sets"]
            ]
            lines.append(
                "- The same on the executed actions (student and teacher clipped to [-1, 1], "
                f"as the controls are): {', '.join(parts)}."
            )
    sweep = runs / "sweep" / "sweep.json"
    if sweep.exists():
        report = json.loads(sweep.read_text())
        parts = [
            f"{r['name']} {r['final']['held_out']['relative_median']:.2f} / "
            f"{r['final'].get('unseen', {}).get('relative_median', float('nan')):.2f}"
            for r in report["results"]
        ]
        lines.append(
            "- Regularising the hypernetwork did not fix it: fresh students trained "
            f"{report['epochs']} epochs on the distillation data with {len(report['held_out'])} "
            "UNIMAL training robots held out reach, held-out / unseen (median relative error), "
            f"{'; '.join(parts)} (`scripts/generalisation_sweep.py`, plot "
            f"`{(runs / 'sweep' / 'sweep.png').as_posix()}`). Robots the student never saw stay "
            "near or above a zero action whatever the regulariser. A likely reason (untested): the "
            "teacher is a clone of independently trained per-robot experts, so its behaviour "
            "need not vary smoothly with morphology."
        )
    return lines


def _nearest(runs: Path, teacher: str) -> dict | None:
    """``scripts/nearest_robots.py --json`` for the teacher's test reports, if measured."""
    path = runs / f"nearest_{teacher}_test.json"
    return json.loads(path.read_text()) if path.exists() else None


def _nearest_line(runs: Path, teacher: str) -> list[str]:
    near = _nearest(runs, teacher)
    if near is None:
        return []
    groups = "; ".join(
        f"{g['distance_min']:.1f}-{g['distance_max']:.1f}: {g['return_mean']:.0f} "
        f"({g['falling']} of {g['robots']} falling)"
        for g in near["groups"]
    )
    return [
        "- Which unseen robots: the farther a UNIMAL test robot lies from every robot the "
        "teacher trained on, the lower its return. Distance to the nearest training robot "
        "(morphology context, limbs in tree order, padded to 12; the training robots lie "
        f"{near['train_nearest_median']:.2f} from each other at the median), teacher's "
        f"return: {groups}; rank correlation {near['rank_correlation']:+.2f} "
        f"(`scripts/nearest_robots.py`, {len(near['reports'])} evaluation seeds pooled). "
        "hd-export measures each robot it exports against the model's training robots "
        "the same way and warns when it lies far from all of them."
    ]


def _reports(runs: Path, run: str, split: str) -> list[dict]:
    """``run``'s hd-eval reports of ``split``, one per evaluation seed measured."""
    paths = (runs / f"eval_{run}_{name}.json" for name in _seed_names(split))
    return [json.loads(p.read_text()) for p in paths if p.exists()]


def pooled_per_robot(reports: list[dict]) -> dict[str, float]:
    """Per-robot return averaged over ``reports`` (one per evaluation seed)."""
    sums: dict[str, float] = {}
    for report in reports:
        for name, value in _per_robot(report).items():
            sums[name] = sums.get(name, 0.0) + value / len(reports)
    return sums


def pooled_mean(runs: Path, run: str, split: str) -> float | None:
    """``run``'s mean return over the robots of ``split``, pooled over the evaluation seeds
    measured; None if unmeasured."""
    means = pooled_per_robot(_reports(runs, run, split))
    return sum(means.values()) / len(means) if means else None


def per_robot_table(runs: Path, teacher: str, student: str, split: str = "test") -> list[str]:
    """A table of every robot of ``split``: teacher and student return, averaged over the
    evaluation seeds both were measured at."""
    t_reports, s_reports = _reports(runs, teacher, split), _reports(runs, student, split)
    seeds = {r["seed"] for r in t_reports} & {r["seed"] for r in s_reports}
    t = pooled_per_robot([r for r in t_reports if r["seed"] in seeds])
    s = pooled_per_robot([r for r in s_reports if r["seed"] in seeds])
    names = sorted(t.keys() & s.keys(), key=lambda n: -t[n])
    if not names:
        return []
    near = _nearest(runs, teacher)
    distance = {r["name"]: r["distance"] for r in near["robots"]} if near else {}
    extra = (" The distance is to the nearest robot the teacher trained on (morphology "
             "context, `scripts/nearest_robots.py`).") if distance else ""  # fmt: skip
    lines = [
        "",
        f"## Per-robot returns, UNIMAL {split}",
        "",
        f"`hd-eval`, deterministic, mean over evaluation seeds "
        f"{', '.join(map(str, sorted(seeds)))}; sorted by the teacher's return. No ratio "
        f"(-) where the teacher's return is under {STANDSTILL_RETURN:.0f} "
        f"({STANDSTILL_SPEED} m/s): a ratio to a near-standstill says nothing.{extra}",
        "",
        "| robot | teacher | student | student / teacher |" + (" distance |" if distance else ""),
        "|---|---|---|---|" + ("---|" if distance else ""),
    ]
    for n in names:
        ratio = f"{s[n] / t[n]:.0%}" if t[n] >= STANDSTILL_RETURN else "-"
        far = (f" {distance[n]:.2f} |" if n in distance else " - |") if distance else ""
        lines.append(f"| {n} | {t[n]:.1f} | {s[n]:.1f} | {ratio} |{far}")
    return lines


def _held_out_line(runs: Path, teacher: str, student: str, split: str = "mutate200") -> list[str]:
    """Both models on robots neither trained on, beside UNIMAL test (``eval_<run>_<split>``)."""
    pair = _pair(runs, teacher, student, split)
    if pair is None:
        return []
    t, s = pair
    line = (
        f"- Held-out `{split}` ({len(t['robots'])} robots outside both models' training draws, "
        f"{t['episodes']} episode each, seed {t['seed']}): teacher {t['return_mean']:.1f}, "
        f"student {s['return_mean']:.1f} ({s['return_mean'] / t['return_mean']:.1%})."
    )
    unseen = _unseen_means(t, s)
    if unseen is not None:
        n, tm, sm = unseen
        line += (
            f" {len(t['robots']) - n} of them are bodies a model trained on under another name "
            f"(by fingerprint; `scripts/add_eval_fingerprints.py`); on the {n} neither "
            f"trained on: teacher {tm:.1f}, student {sm:.1f} ({sm / tm:.1%})."
        )
    return [line]


def _unseen_means(t: dict, s: dict) -> tuple[int, float, float] | None:
    """How many robots neither report's checkpoint trained on (by the reports' per-robot
    ``seen_in_training``), and both models' mean return on them; None when the reports do
    not say, or every robot is unseen."""
    if any("seen_in_training" not in r for rep in (t, s) for r in rep["robots"]):
        return None
    seen = {r["name"] for rep in (t, s) for r in rep["robots"] if r["seen_in_training"]}
    if not seen:
        return None
    means = [[r["return_mean"] for r in rep["robots"] if r["name"] not in seen] for rep in (t, s)]
    return len(means[0]), sum(means[0]) / len(means[0]), sum(means[1]) / len(means[1])


def previous_lines(runs: Path, previous: str | None) -> list[str]:
    """The pair these checkpoints replace (``TEACHER:STUDENT`` run names), seeds pooled."""
    if not previous:
        return []
    names = previous.split(":")
    rows = []
    for split, label in SPLITS:
        values = []
        for run in names:
            mean = pooled_mean(runs, run, split)
            values.append("-" if mean is None else f"{mean:.1f}")
        if split != "mutate200" or values.count("-") < len(values):
            rows.append(f"| {label} | {' | '.join(values)} |")
    return [
        "",
        "## The pair these checkpoints replace",
        "",
        f"`{names[0]}` and `{names[1]}` (their runs: `training/` or git history), `hd-eval` return "
        "pooled over the seeds measured:",
        "",
        "| robots | teacher | student |",
        "|---|---|---|",
        *rows,
    ]


def plot_returns(runs: Path, teacher: str, student: str, out: Path) -> bool:
    """Per-robot student against teacher return, one panel per split; False if unmeasured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [(split, _pair(runs, teacher, student, split)) for split in ("train", "test")]
    splits = [(split, pair) for split, pair in pairs if pair is not None]
    if not splits:
        return False
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 4.8), squeeze=False)
    for ax, (split, (t_report, s_report)) in zip(axes[0], splits, strict=True):
        t, s = _per_robot(t_report), _per_robot(s_report)
        names = sorted(set(t) & set(s))
        x, y = [t[n] for n in names], [s[n] for n in names]
        top = max(max(x), max(y), 1.0) * 1.05
        low = min(min(x), min(y), 0.0)
        ax.plot([low, top], [low, top], color="0.5", lw=1, label="student = teacher")
        ax.plot([low, top], [0.9 * low, 0.9 * top], color="0.5", lw=1, ls=":", label="90%")
        ax.scatter(x, y, s=14, alpha=0.7)
        ax.set(xlim=(low, top), ylim=(low, top), xlabel="teacher return",
               ylabel="student return (baked MLP)",
               title=f"UNIMAL {split}: {len(names)} robots")  # fmt: skip
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("hd-eval return per robot, 3 episodes, seed 0")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def robot_mix(robots: list[str]) -> str:
    """Where a run's robots came from: "100 UNIMAL train, 100 train_mutate, 32 generated"."""
    kinds = {"UNIMAL train": 0, "train_mutate": 0, "generated": 0, "other": 0}
    for r in robots:
        parent = Path(r).parent.name
        if "unimal" in r and parent == "train":
            kinds["UNIMAL train"] += 1
        elif parent == "train_mutate":
            kinds["train_mutate"] += 1
        elif parent.startswith("generated"):
            kinds["generated"] += 1
        else:
            kinds["other"] += 1
    return ", ".join(f"{n} {k}" for k, n in kinds.items() if n)


def zero_shot_curve(progress: Path) -> list[tuple[int, float, float]]:
    """``(env steps, training return, zero-shot return)`` at every evaluated iteration."""
    with progress.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval_return")]
    return [(int(r["env_steps"]), training_return(r), float(r["eval_return"])) for r in rows]


#: how ``training_return`` averaged, by the column it read
TRAINING_RETURN_KIND = {
    "return_robots": "the mean over robots of each one's recent episodes",
    "return_recent": "the last 100 episodes",
}


def thin(points: list, most: int = 12) -> list:
    """At most ``most`` of ``points``, evenly spaced, the last always among them."""
    if len(points) <= most:
        return points
    step = -(-len(points) // most)  # ceil: never more than ``most``
    return points[::-1][::step][::-1]


def _kl_stop(ppo: dict) -> str:
    """How a run's update stops at its target KL, and which estimate it compares."""
    config = PPOConfig.from_dict(ppo)
    if config.kl_stop == "minibatch":
        return f"an update takes no gradient step past an approximate KL ({config.kl_estimator}) of"
    return f"an update's epochs stop at KL ({config.kl_estimator})"


def _ppo_lines(run: dict, ckpt: dict, last: dict, run_dir: Path) -> list[str]:
    extra, ppo = ckpt["extra"], run["ppo"]
    lines = [
        f"- Trained with `hd-train` (PPO, seed {ppo['seed']}) on {len(run['robots'])} robots "
        f"({robot_mix(run['robots'])}): {ppo['n_envs']} environments x {ppo['rollout_steps']} "
        f"steps an iteration, {ppo['epochs']} epochs, minibatch {ppo['minibatch_size']}, "
        f"lr {ppo['lr']} ({ppo['lr_schedule']})"
        + (f", {_kl_stop(ppo)} {ppo['target_kl']}" if ppo.get("target_kl") else "")
        + (
            f", {ppo['critic_warmup']} critic-only iterations first"
            if ppo.get("critic_warmup")
            else ""
        )
        + (
            f", learning rate warmed up from {WARMUP_FACTOR}x over {ppo['lr_warmup']} iterations"
            if ppo.get("lr_warmup")
            else ""
        )
        + (", value loss clipped as MetaMorph's" if ppo.get("clip_value") else "")  # fmt: skip
        + ".",
        f"- Environment steps: {extra['env_steps']:,} of the planned "
        f"{ppo['total_steps']:,} (iteration {extra['iteration']}); wall time "
        f"{float(extra['wall_s']) / 3600:.2f} h on {_ppo_device(extra)}.",
        f"- Training return (stochastic policy; "
        f"{TRAINING_RETURN_KIND[training_return_column(last)]}): {training_return(last):.1f}",
    ]
    if extra.get("precision") == "bf16":
        lines.append("- Matrix products in bfloat16 (`--precision bf16`) when this checkpoint "
                     "was written (the run's README says from which iteration).")  # fmt: skip
    curve = zero_shot_curve(run_dir / "progress.csv")
    if curve:
        n_eval = len(run.get("eval_robots") or [])
        shown = thin(curve)
        which = "" if shown == curve else f" ({len(shown)} of {len(curve)}, evenly spaced)"
        lines.append(
            f"- Zero-shot return while training (deterministic, one episode on each of the "
            f"{n_eval} eval robots), against the training return{which}: "
            + ", ".join(f"{z:.0f} / {r:.0f} at {s / 1e6:.2f}M steps" for s, r, z in shown)
            + f". Learning curve: `{(run_dir / 'learning_curve.png').as_posix()}`."
        )
    return lines + _ppo_init_lines(run, run_dir.parent)


def _ppo_init_lines(run: dict, training: Path) -> list[str]:
    """Where a PPO run started from (``hd-train --init``), recursively: that run's lines as
    sub-items (its steps and wall time come before this run's)."""
    source = init_source(run, training)
    if source is None:
        return []
    init_dir, where = source
    init_run = json.loads((init_dir / "run.json").read_text())
    init_ckpt = json.loads((init_dir / "checkpoint" / "checkpoint.json").read_text())
    sub = _ppo_lines(init_run, init_ckpt, _last_row(init_dir / "progress.csv"), init_dir)
    return [f"- Started (`--init`) from {where}, trained before as follows:",
            *(f"  {line}" for line in sub)]  # fmt: skip


def _ppo_device(extra: dict) -> str:
    """Where hd-train ran (checkpoints before the ``device`` field ran on the 2-core CPU)."""
    dev = extra.get("device", "cpu")
    return "a 2-core CPU" if dev == "cpu" else f"{dev} with {extra['workers']} physics workers"


def _device(ckpt: dict) -> str:
    dev = ckpt["extra"].get("device", "cpu")
    return "a 2-core CPU" if dev == "cpu" else f"a GPU ({dev}) with 16 rollout workers"


def _clone_lines(run: dict, ckpt: dict, last: dict) -> list[str]:
    experts = Path(run["experts"])
    records = [json.loads((experts / f"{name}.json").read_text()) for name, _ in run["robots"]]
    steps = sum(r["env_steps"] for r in records)
    wall = sum(r["wall_s"] for r in records)
    det = [r["return_deterministic"] for r in records]
    c = run["clone"]
    n_unimal = sum("unimal" in src for _, src in run["robots"])
    return [
        f"- Route: `hd-experts` then `hd-clone` (seed {c['seed']}). One MLP expert per robot "
        f"({n_unimal} UNIMAL training robots and {len(records) - n_unimal} generated robots, "
        f"`hd-generate training/generated --count 32 --seed 1000 --stand-steps 0`), "
        f"plain PPO, "
        f"{records[0]['env_steps']:,} steps each ({steps:,} in all, {wall / 3600:.2f} "
        f"core-hours, two robots at a time on a 2-core CPU). Expert deterministic return: "
        f"mean {sum(det) / len(det):.1f}, min {min(det):.1f}, max {max(det):.1f}.",
        f"- Cloning: {c['samples_per_robot']} expert samples per robot (exploration noise "
        f"{c['action_noise']}), {c['dagger_rounds']} DAgger rounds of "
        f"{c['dagger_samples_per_robot']} samples per robot (teacher drives, experts label), "
        f"{c['epochs']} epochs, Adam lr {c['lr']}; final loss "
        f"{float(last.get('loss', 'nan')):.4g}; wall time "
        f"{float(last.get('wall_s', 'nan')) / 60:.1f} min (training and DAgger collection) on "
        f"{_device(ckpt)}.",
    ]


def _samples(run: dict, last: dict) -> str:
    """How many teacher samples per robot each collection of a distillation run labelled; for
    a run that collected nothing (``--data`` and no DAgger round done), how many it trained on."""
    d = run["distill"]
    if _collected_nothing(run, last):
        return f"{int(last.get('samples', 0)):,} samples (`--data`)"
    text = f"{d['samples_per_robot']} teacher samples per robot"
    if d.get("start_samples_per_robot"):
        text += (
            f" (and {d['start_samples_per_robot']} more from {d['start_steps']}-step episode "
            "openings, `--start-samples`)"
        )
    return text


def _collected_nothing(run: dict, last: dict) -> bool:
    """Whether a distillation run labelled no teacher samples itself (``--data`` and no DAgger
    round done)."""
    return bool(run.get("data")) and not int(last.get("round", run["distill"]["dagger_rounds"]))


def _timed(run: dict, last: dict) -> str:
    """What a distillation run's wall time covers."""
    return "training" if _collected_nothing(run, last) else "training and DAgger collection"


def trained(d: dict, last: dict) -> str:
    """The epochs and DAgger rounds a distillation run went through (its last progress.csv
    row), against those it planned (run.json) when it stopped short of them."""
    epochs, rounds = int(last.get("epoch", d["epochs"])), int(last.get("round", d["dagger_rounds"]))
    text = f"{epochs} epochs" if epochs == d["epochs"] else f"{epochs} of its {d['epochs']} epochs"
    text += f", DAgger rounds {rounds}"
    return text if rounds == d["dagger_rounds"] else f"{text} of its {d['dagger_rounds']}"


def extended_line(run_dir: Path) -> list[str]:
    """The teacher data ``scripts/extend_data.py`` collected for a run before it trained
    (its ``extended.json``), a stage whose time the run's own progress.csv does not hold."""
    path = run_dir / "extended.json"
    if not path.exists():
        return []
    rec = json.loads(path.read_text())
    return [
        f"- Before it, `scripts/extend_data.py` carried over `{rec['run']}`'s data and "
        f"labelled the {rec['robots_added']} added robots with the teacher "
        f"({rec['samples_added']:,} samples, {rec['wall_s'] / 60:.1f} min, "
        f"{rec['workers']} rollout workers)."
    ]


def collection_line(run_dir: Path) -> list[str]:
    """The first teacher collection of a distillation run (``collection.json``), if it made one."""
    from hd_deploy.train.distill import COLLECTION_FILE

    path = run_dir / COLLECTION_FILE
    if not path.is_file():
        return []
    rec = json.loads(path.read_text())
    return [
        f"- Before training, the teacher labelled {rec['samples']:,} samples in "
        f"{rec['wall_s'] / 60:.1f} min ({rec['workers']} worker processes)."
    ]


def seeded_line(run: dict) -> list[str]:
    """The line citing a run's seed samples (``hd-distill --data``), if it had some."""
    if not run.get("data"):
        return []
    return [f"- Trained on `{run['data']}`'s samples (`--data`), not a new collection."]


def run_of(
    checkpoint: str | Path, training: Path = Path("training"), record: dict | None = None
) -> Path:
    """The run folder a checkpoint came from: its parent, or, for a copy without a run
    record (the package's shipped checkpoint), the run in ``training`` whose
    ``checkpoint.json`` is the same. ``record`` (``run.json``'s ``init_checkpoint``: the
    checkpoint's record when the run started from it) is matched instead of the file now
    at ``checkpoint``, which a later shipped checkpoint may have replaced.

    Raises:
        SystemExit: No run holds it.
    """
    folder = Path(checkpoint).parent
    if record is None and (folder / "run.json").exists():
        return folder
    if record is None:
        record = json.loads((Path(checkpoint) / "checkpoint.json").read_text())
    for candidate in sorted(training.glob("*/checkpoint/checkpoint.json")):
        if json.loads(candidate.read_text()) == record:
            return candidate.parent.parent
    sys.exit(f"{checkpoint}: no run in {training} wrote this checkpoint")


def init_source(run: dict, training: Path = Path("training")) -> tuple[Path, str] | None:
    """The run a run started from (``--init``) and how the card names it: the path given,
    and the run folder when that path is a copy (the package's checkpoint); None without."""
    init = run.get("init")
    if not init:
        return None
    init_dir = run_of(init, training, run.get("init_checkpoint"))
    where = f"`{init}`"
    if init_dir != Path(init).parent:
        where += f" (`{init_dir.as_posix()}`'s checkpoint)"
    return init_dir, where


def _init_lines(run: dict) -> list[str]:
    """Where a student run started from (``hd-distill --init``), recursively: what each
    earlier run's data were is a sub-item of that run's line."""
    source = init_source(run)
    if source is None:
        return []
    init_dir, where = source
    init_run = json.loads((init_dir / "run.json").read_text())
    last = _last_row(init_dir / "progress.csv")
    d = init_run["distill"]
    return [
        f"- Started (`--init`) from {where}, distilled from `{init_run['teacher']}`: "
        f"{len(init_run['robots'])} robots, {_samples(init_run, last)}, {trained(d, last)}, "
        f"final loss {float(last.get('loss', 'nan')):.4g}, "
        f"{float(last.get('wall_s', 'nan')) / 60:.1f} min.",
        *(
            f"  {line}"
            for line in collection_line(init_dir) + extended_line(init_dir) + seeded_line(init_run)
        ),
        *(f"  {line}" for line in _init_lines(init_run)),
    ]


def _seen_lines(t_ckpt: Path, s_ckpt: Path) -> list[str]:
    """Which bundled robots (``hd_deploy/assets/robots``) each checkpoint trained on."""
    from hd_deploy.models import read_checkpoint_info
    from hd_deploy.morphology.robot import robot_fingerprint
    from hd_deploy.morphology.sources import bundled_robots, bundled_seen_robots

    infos = {"teacher": read_checkpoint_info(t_ckpt), "student": read_checkpoint_info(s_ckpt)}
    lines = []
    for label, files in (("bundled", bundled_robots()), ("bundled/seen", bundled_seen_robots())):
        fps = [robot_fingerprint(f) for f in files]
        seen = {kind: sum(bool(info.trained_on(fp)) for fp in fps) for kind, info in infos.items()}
        lines.append(
            f"- `hd-bench`'s {label} robots ({len(files)}): the teacher trained on "
            f"{seen['teacher']}, the student on {seen['student']} (by fingerprint)."
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("training"))
    parser.add_argument("--out", type=Path, default=Path("hd_deploy/assets/MODEL_CARD.md"))
    parser.add_argument("--teacher", default="teacher", help="teacher run folder in --runs")
    parser.add_argument("--student", default="student", help="student run folder in --runs")
    parser.add_argument("--plot", type=Path, default=Path("docs/returns_student_vs_teacher.png"))
    parser.add_argument("--previous", help="TEACHER:STUDENT run names of the replaced pair")
    args = parser.parse_args()
    runs = args.runs
    t_dir, s_dir = runs / args.teacher, runs / args.student
    t_run = json.loads((t_dir / "run.json").read_text())
    t_ckpt = json.loads((t_dir / "checkpoint" / "checkpoint.json").read_text())
    t_last = _last_row(t_dir / "progress.csv")
    s_run = json.loads((s_dir / "run.json").read_text())
    s_ckpt = json.loads((s_dir / "checkpoint" / "checkpoint.json").read_text())
    s_last = _last_row(s_dir / "progress.csv")

    def t_eval(split: str) -> Path:
        return runs / f"eval_{args.teacher}_{split}.json"

    def ratio(split: str) -> str:
        return _ratio(runs, args.teacher, args.student, split)

    if "clone" in t_run:
        teacher_lines = _clone_lines(t_run, t_ckpt, t_last)
    else:
        teacher_lines = _ppo_lines(t_run, t_ckpt, t_last, t_dir)
    lines = [
        "# Shipped checkpoints: model card",
        "",
        "Written by `scripts/model_card.py` from the training runs' own records.",
        "Reproduce with `scripts/ship_defaults.sh` (exact commands, seeds, resumable).",
        "",
        "## Teacher (`checkpoints/teacher`)",
        f"- Architecture: `TeacherConfig` {json.dumps(t_ckpt['config'])}",
        *teacher_lines,
        f"- `hd-eval` return, UNIMAL train: {_eval_line(t_eval('train'))}",
        f"- `hd-eval` return, UNIMAL test (unseen): {_eval_line(t_eval('test'))}",
        "",
        "## Student (`checkpoints/student`)",
        f"- Architecture: `HyperNetConfig` {json.dumps(s_ckpt['config'])}",
        f"- Distilled with `hd-distill` (seed {s_run['distill']['seed']}) from the teacher above "
        f"on {len(s_run['robots'])} robots ({robot_mix(s_run['robots'])}): "
        f"{_samples(s_run, s_last)}, "
        f"{trained(s_run['distill'], s_last)}; "
        f"final loss {float(s_last.get('loss', 'nan')):.4g}; wall time "
        f"{float(s_last.get('wall_s', 'nan')) / 60:.1f} min ({_timed(s_run, s_last)}) "
        f"on {_device(s_ckpt)}.",
        *collection_line(s_dir),
        *extended_line(s_dir),
        *seeded_line(s_run),
        *_init_lines(s_run),
        f"- `hd-eval` return (baked MLPs), UNIMAL train: "
        f"{_eval_line(runs / f'eval_{args.student}_train.json')}",
        f"- `hd-eval` return (baked MLPs), UNIMAL test (unseen): "
        f"{_eval_line(runs / f'eval_{args.student}_test.json')}",
        f"- Student / teacher return: train {ratio('train')}, test {ratio('test')}",
        *[
            f"- Median per-robot student / teacher return, {split} robots where the teacher "
            f"exceeds 200: {m[0]:.3f} ({m[1]} robots)"
            for split in ("train", "test")
            if (m := _median_ratio(runs, args.teacher, args.student, split))
        ],
        *_held_out_line(runs, args.teacher, args.student),
        f"- Per-robot returns plotted in `{args.plot}` (repository); UNIMAL test robot by "
        "robot below.",
        *_seed_lines(runs, args.teacher, args.student),
        *_seen_lines(t_dir / "checkpoint", s_dir / "checkpoint"),
        *_limits(runs, args.teacher, args.student),
        *previous_lines(runs, args.previous),
        *per_robot_table(runs, args.teacher, args.student),
        "",
        "Returns: sum over a 1000-step episode of the torso's forward velocity (m/s), i.e. "
        "forward displacement / 0.02 s; episodes end early when the robot falls.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    if plot_returns(runs, args.teacher, args.student, args.plot):
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
