"""Fuzz robot files and controller files; count what is accepted, refused or crashes.

Robot mutations (on the bundled robots, and the UNIMAL training robots when present): an
attribute set to nan / inf / a huge, negative or zero number, an attribute or an element
deleted, an element duplicated, the file truncated. Each mutated robot goes through what
``hd-inspect`` and ``hd-export`` do (parse, validate, simulate at rest and under random
controls); an accepted robot must then take 100 control steps with a finite state.

Controller mutations (on one exported controller): truncated, bytes flipped in the weights
or in the metadata, metadata values edited. Each goes through ``load_controller`` and one
``act``.

Outcomes: ``accepted`` (and ran), ``refused`` (the toolkit's own error, one line),
``crashed`` (anything else, or an accepted robot whose state went non-finite).

    python scripts/fuzz.py --robots 200 --controllers 50 --seed 0
"""

from __future__ import annotations

import argparse
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hd_deploy.envs.task import LocomotionTask, build_model, check_at_rest
from hd_deploy.morphology import MorphologyError
from hd_deploy.morphology.sources import bundled_robots
from hd_deploy.runtime import ControllerError, load_controller

UNIMAL_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "unimal" / "train"
VALUES = ("nan", "inf", "-inf", "1e30", "-1", "0", "1e-30")
ELEMENTS = ("body", "geom", "joint", "motor")
STEPS = 100


# --- robots --------------------------------------------------------------------------


def mutate_robot(text: str, rng: np.random.Generator) -> tuple[str, str]:
    """One random mutation of an MJCF text; returns (what was done, new text)."""
    kind = rng.choice(["value", "value", "value", "drop_attr", "drop_elem", "dup", "truncate"])
    if kind == "truncate":
        cut = int(rng.integers(1, len(text)))
        return f"truncate at {cut}", text[:cut]
    root = ET.fromstring(text)
    parents = {child: parent for parent in root.iter() for child in parent}
    candidates = [e for e in root.iter() if e.tag in ELEMENTS and e is not root]
    if not candidates:
        return "nothing to mutate", text
    element = candidates[int(rng.integers(len(candidates)))]
    if kind in ("value", "drop_attr") and element.attrib:
        attr = sorted(element.attrib)[int(rng.integers(len(element.attrib)))]
        if kind == "drop_attr":
            del element.attrib[attr]
            return f"drop {element.tag}@{attr}", ET.tostring(root, encoding="unicode")
        numbers = element.attrib[attr].split()
        value = VALUES[int(rng.integers(len(VALUES)))]
        i = int(rng.integers(len(numbers)))
        numbers[i] = value
        element.attrib[attr] = " ".join(numbers)
        return f"{element.tag}@{attr}[{i}]={value}", ET.tostring(root, encoding="unicode")
    parent = parents.get(element)
    if parent is None:
        return "no parent", text
    if kind == "dup":
        parent.insert(list(parent).index(element), ET.fromstring(ET.tostring(element)))
        return f"duplicate {element.tag}", ET.tostring(root, encoding="unicode")
    parent.remove(element)
    return f"drop {element.tag}", ET.tostring(root, encoding="unicode")


def try_robot(text: str, rng: np.random.Generator) -> str:
    """``accepted``, ``refused`` or ``crashed: ...`` for one robot text."""
    try:
        model, robot = build_model(text)
        check_at_rest(model, robot)
        task = LocomotionTask(text)
    except MorphologyError as exc:
        return "refused" if "\n" not in str(exc) else f"crashed: multi-line error {exc!r}"
    except Exception as exc:  # the finding: anything but the toolkit's own error
        return f"crashed: {type(exc).__name__}: {exc}"
    task.reset(rng)
    for _ in range(STEPS):
        result = task.step(task.actions_to_ctrl(rng.uniform(-1, 1, (task.robot.n_limbs, 2))))
        if result.unstable or not np.isfinite(task.data.qpos).all():
            return "crashed: accepted, then diverged"
        if result.terminated or result.truncated:
            task.reset(rng)
    return "accepted"


def fuzz_robots(sources: Sequence[Path], count: int, *, seed: int) -> Counter:
    rng = np.random.default_rng(seed)
    texts = [Path(s).read_text() for s in sources]
    outcomes: Counter = Counter()
    for i in range(count):
        what, text = mutate_robot(texts[i % len(texts)], rng)
        outcome = try_robot(text, rng)
        outcomes[outcome.split(":")[0]] += 1
        if outcome.startswith("crashed"):
            print(f"robot {i} ({what}): {outcome}")
    return outcomes


# --- controllers ---------------------------------------------------------------------


def mutate_controller(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random mutation of a controller file's bytes."""
    kind = rng.choice(["truncate", "flip_weights", "flip_meta", "edit_meta"])
    if kind == "truncate":
        cut = int(rng.integers(1, len(data)))
        return f"truncate at {cut}", data[:cut]
    meta_at = data.find(b"hd_deploy_format_version")
    if kind == "flip_weights":
        at = int(rng.integers(0, max(1, meta_at)))
    elif kind == "flip_meta":
        at = int(rng.integers(meta_at, len(data)))
    else:
        key = rng.choice([b"sim_timestep", b"frame_skip", b"obs_dim", b"n_actuators"])
        at = data.find(key) + len(key) + 2
    out = bytearray(data)
    out[at] ^= int(rng.integers(1, 256))
    return f"{kind} at {at}", bytes(out)


def try_controller(path: Path, rng: np.random.Generator) -> str:
    try:
        ctl = load_controller(path)
        ctrl = ctl.act(rng.normal(size=ctl.metadata["obs_dim"]).astype(np.float32))
    except ControllerError as exc:
        return "refused" if "\n" not in str(exc) else f"crashed: multi-line error {exc!r}"
    except Exception as exc:
        return f"crashed: {type(exc).__name__}: {exc}"
    return "accepted" if np.isfinite(ctrl).all() else "crashed: non-finite controls"


def fuzz_controllers(count: int, *, seed: int, workdir: Path) -> Counter:
    from hd_deploy.exporters import export_robots

    rng = np.random.default_rng(seed)
    (result,) = export_robots([bundled_robots()[1]], out_dir=workdir)
    data = result.path.read_bytes()
    outcomes: Counter = Counter()
    for i in range(count):
        what, mutated = mutate_controller(data, rng)
        path = workdir / f"mutant-{i}.onnx"
        path.write_bytes(mutated)
        outcome = try_controller(path, rng)
        outcomes[outcome.split(":")[0]] += 1
        if outcome.startswith("crashed"):
            print(f"controller {i} ({what}): {outcome}")
    return outcomes


def main(argv: Sequence[str] | None = None) -> dict[str, Counter]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=100, help="robot mutations")
    parser.add_argument("--controllers", type=int, default=30, help="controller mutations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unimal", type=Path, default=UNIMAL_TRAIN,
                        help="UNIMAL robots to mutate too (skipped when absent)")  # fmt: skip
    args = parser.parse_args(argv)
    sources = list(bundled_robots())
    if args.unimal.is_dir():
        sources += sorted(args.unimal.glob("*.xml"))[:20]
    results = {"robots": fuzz_robots(sources, args.robots, seed=args.seed)}
    with tempfile.TemporaryDirectory() as tmp:
        results["controllers"] = fuzz_controllers(args.controllers, seed=args.seed,
                                                  workdir=Path(tmp))  # fmt: skip
    for name, counts in results.items():
        cells = ", ".join(f"{k} {counts.get(k, 0)}" for k in ("accepted", "refused", "crashed"))
        print(f"{name}: {cells}")
    return results


if __name__ == "__main__":
    main()
