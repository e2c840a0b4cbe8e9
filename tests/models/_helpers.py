"""Helpers for model tests: random robots (2-12 limbs), UNIMAL and gymnasium robots."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hd_deploy.envs.task import build_model
from hd_deploy.morphology.features import context, proprio
from hd_deploy.morphology.robot import Robot

UNIMAL_TRAIN = Path(__file__).resolve().parents[3] / "shared" / "unimal" / "train"
GYM_NAMES = ("ant", "hopper", "walker2d", "half_cheetah", "swimmer")


@dataclass(frozen=True)
class RobotCase:
    """A compiled robot with its context and a few observed states."""

    robot: Robot
    context: np.ndarray  # (n_limbs, 53)
    obs: np.ndarray  # (n_obs, n_limbs, 17), raw proprio from simulated states


def random_robot_xml(n_limbs: int, seed: int) -> str:
    """A random tree robot: free-joint torso and ``n_limbs - 1`` capsules with 1-2 hinges.

    Actuators come in shuffled order with uneven control ranges, some hinges stay
    unactuated, so gathers and control scaling are exercised.
    """
    rng = np.random.default_rng(seed)
    children: dict[int, list[int]] = {i: [] for i in range(n_limbs)}
    for i in range(1, n_limbs):
        children[int(rng.integers(0, i))].append(i)
    joints: list[str] = []

    def body(i: int, depth: int) -> str:
        if i == 0:
            head = (
                '<body name="torso" pos="0 0 0.8"><joint name="root" type="free"/>'
                '<geom type="sphere" size="0.1"/>'
            )
        else:
            d = rng.normal(size=3)
            d[2] = -abs(d[2])
            d = 0.25 * d / np.linalg.norm(d)
            hinges = ""
            for k in range(int(rng.integers(1, 3))):
                name = f"j{i}_{k}"
                joints.append(name)
                axis = " ".join(f"{v:.3f}" for v in rng.normal(size=3))
                lo, hi = sorted(rng.uniform(-80, 80, size=2))
                hinges += (
                    f'<joint name="{name}" type="hinge" axis="{axis}" '
                    f'range="{lo:.1f} {hi + 5:.1f}" limited="true"/>'
                )
            head = (
                f'<body name="b{i}" pos="{0.05 * depth:.3f} 0 -0.05">{hinges}'
                f'<geom type="capsule" fromto="0 0 0 {d[0]:.3f} {d[1]:.3f} {d[2]:.3f}" '
                'size="0.04"/>'
            )
        return head + "".join(body(c, depth + 1) for c in children[i]) + "</body>"

    tree = body(0, 0)
    actuated = [j for j in joints if rng.random() < 0.8] or joints[:1]
    rng.shuffle(actuated)
    motors = ""
    for j in actuated:
        lo, hi = -rng.uniform(0.3, 2.0), rng.uniform(0.3, 2.0)
        motors += (
            f'<motor joint="{j}" gear="{int(rng.choice([150, 200, 250, 300]))}" '
            f'ctrlrange="{lo:.3f} {hi:.3f}" ctrllimited="true"/>'
        )
    return (
        f'<mujoco model="rand{n_limbs}_{seed}"><compiler angle="degree"/>'
        f"<worldbody>{tree}</worldbody><actuator>{motors}</actuator></mujoco>"
    )


def make_case(source: str | Path, *, seed: int = 0, n_obs: int = 3) -> RobotCase:
    """Compile a robot and record ``n_obs`` raw observations from random states."""
    import mujoco

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model, robot = build_model(source)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(seed)
    obs = []
    for _ in range(n_obs):
        data.qpos[:] = model.qpos0 + rng.uniform(-0.3, 0.3, size=model.nq)
        data.qvel[:] = rng.normal(scale=2.0, size=model.nv)
        mujoco.mj_forward(model, data)
        obs.append(proprio(robot, model, data))
    return RobotCase(robot, context(robot, model), np.stack(obs))


def gym_assets() -> Path:
    import gymnasium

    return Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets"


def pad_batch(
    cases: list[RobotCase], max_limbs: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack every observation of every case into padded tensors.

    Padding rows get garbage so that tests notice if padding leaks into real outputs.

    Returns:
        ``proprio (B, L, 17)``, ``context (B, L, 53)``, ``limb_mask (B, L)``, and the case
        index of each sample ``(B,)``.
    """
    rng = np.random.default_rng(123)
    ps, cs, ms, idx = [], [], [], []
    for ci, case in enumerate(cases):
        n = case.robot.n_limbs
        for o in case.obs:
            p = rng.normal(scale=5.0, size=(max_limbs, o.shape[1])).astype(np.float32)
            c = rng.uniform(-1, 1, size=(max_limbs, case.context.shape[1])).astype(np.float32)
            p[:n], c[:n] = o, case.context
            ps.append(p)
            cs.append(c)
            ms.append(np.arange(max_limbs) < n)
            idx.append(ci)
    return (
        torch.from_numpy(np.stack(ps)),
        torch.from_numpy(np.stack(cs)),
        torch.from_numpy(np.stack(ms)),
        torch.tensor(idx),
    )


def randomize_normalizer(norm: torch.nn.Module, seed: int) -> None:
    """Give a normaliser non-trivial statistics (some features near-constant)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        norm.mean.copy_(torch.randn(norm.dim, generator=g))
        var = torch.rand(norm.dim, generator=g) * 4.0 + 0.05
        var[3] = 1e-6  # a tiny variance makes the clip at +-10 matter
        norm.var.copy_(var)
        norm.count.fill_(1000.0)


def ctrl_from_actions(robot: Robot, actions: torch.Tensor) -> torch.Tensor:
    """Padded per-slot actions ``(B, L, 2)`` -> controls ``(B, n_actuators)`` (reference)."""
    limb = torch.as_tensor(robot.actuator_limb)
    slot = torch.as_tensor(robot.actuator_slot)
    a = actions[:, limb, slot].double().clamp(-1.0, 1.0)
    lo = torch.as_tensor(robot.ctrl_range[:, 0])
    hi = torch.as_tensor(robot.ctrl_range[:, 1])
    return lo + (a + 1.0) * 0.5 * (hi - lo)


def perturb_hypernet(model: torch.nn.Module, seed: int, *, scale: float = 1.0) -> None:
    """Give every zero-initialised generator matrix random values so robots differ.

    A head ``Linear(d, .)`` gets entries of std ``scale * b / sqrt(d)`` with ``b`` its
    largest bias (the shared base weights) or 0.1 for bias heads, so generated weights vary
    between robots about as much as the base weights themselves.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, head in model.named_modules():
            if not name.split(".")[0].endswith(("_w", "_b")) or not isinstance(
                head, torch.nn.Linear
            ):
                continue
            base = float(head.bias.abs().max()) or 0.1
            std = scale * base / head.in_features**0.5
            head.weight.copy_(torch.randn(head.weight.shape, generator=g) * std)
