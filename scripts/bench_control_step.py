"""One control step, stage by stage: observation, policy and physics, per backend.

What ``hd-run --json`` reports (``obs_us_p50``, ``latency_us_p50``, ``physics_us_p50`` and
``obs_policy_over_physics``), for the shipped student exported for each robot and run
whole episodes in the runtime loop with every backend (``onnx``, ``numpy``, ``c``) and both
observation paths (C when a compiler is present, numpy); the ``c`` backend on the C
observation runs both as one C call per step (``c``, the loop's default) and as two
(``c-split``). All runs of one robot take turns in one process, so they share the
machine's noise; the physics column is each run's own.

    python scripts/bench_control_step.py ../shared/unimal/test --robots 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from hd_deploy.envs.task import TaskConfig
from hd_deploy.exporters.robots import export_robots
from hd_deploy.morphology.sources import resolve_robots
from hd_deploy.runtime import load_controller, native, native_step, run_episodes


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("robots", help="MJCF file or folder")
    parser.add_argument("--robots", dest="count", type=int, default=3, help="robots used")
    parser.add_argument("--episodes", type=int, default=1, help="episodes per run")
    parser.add_argument("--steps", type=int, default=1000, help="control steps per episode")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    files = resolve_robots([args.robots])[: args.count]
    paths = ["native", "numpy"] if native_step.available() else ["numpy"]
    backends = ["onnx", "numpy"] + (["c", "c-split"] if native.find_compiler() else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="hd_step_") as tmp:
        results = export_robots(files, out_dir=tmp)
        for result in results:
            runs = [(b, p) for p in paths for b in backends if p == "native" or b != "c-split"]
            for b, p in runs:
                controller = load_controller(result.path, b.removesuffix("-split"))
                meta = controller.metadata
                config = TaskConfig(timestep=meta["sim_timestep"], frame_skip=meta["frame_skip"],
                                    episode_steps=args.steps)  # fmt: skip
                rep = run_episodes(controller, episodes=args.episodes, config=config,
                                   native=p == "native", fuse=b == "c")  # fmt: skip
                rows.append(
                    {
                        "robot": rep.robot,
                        "backend": b,
                        "observation": p,
                        "obs_us_p50": rep.obs_us_p50,
                        "latency_us_p50": rep.latency_us_p50,
                        "physics_us_p50": rep.physics_us_p50,
                        "obs_policy_over_physics": rep.overhead_ratio,
                    }
                )
    print(f"{'robot':30s} {'backend':7s} {'obs in':6s} {'obs':>6s} {'policy':>7s} "
          f"{'physics':>8s} {'(obs+policy)/physics':>21s}")  # fmt: skip
    for r in rows:
        print(f"{r['robot'][:30]:30s} {r['backend']:7s} {r['observation']:6s} "
              f"{r['obs_us_p50']:6.1f} {r['latency_us_p50']:7.1f} {r['physics_us_p50']:8.1f} "
              f"{r['obs_policy_over_physics']:21.3f}")  # fmt: skip
    print("median of (obs+policy)/physics over robots:")
    for p in paths:
        for b in backends:
            ratio = [r["obs_policy_over_physics"] for r in rows
                     if r["backend"] == b and r["observation"] == p]  # fmt: skip
            if ratio:
                print(f"  {b:7s} backend, {p:6s} observation: {np.median(ratio):.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
