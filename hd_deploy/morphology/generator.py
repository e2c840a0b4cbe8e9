"""Seeded random robots from the UNIMAL design space, written as UNIMAL-style MJCF.

The grammar follows the UNIMAL files (MetaMorph / DERL):
- a sphere torso ``torso/0`` (radius 0.1) with a free joint ``root``;
- capsule limbs ``limb/N`` (radius 0.05, length 0.25, 0.35 or 0.45) pointing in one of
  13 directions (horizontal every 45 degrees, 45 degrees down along x or y, straight down);
- limbs grow from growth sites: the torso surface along each direction, and the middle
  and the end of every limb; a site is used once;
- with bilateral symmetry, a limb that leaves the x-z plane grows together with its mirror
  image (y -> -y), exactly as the files' ``mirror_growth_site`` pairs;
- one or two hinges per limb (``limbx/N``, ``limby/N``) whose axes are the x and y axes
  turned by the rotation that takes -z onto the limb direction (the files' axis table),
  joint ranges from the 13 UNIMAL classes, one motor per hinge with a UNIMAL gear.

The torso is placed so that the lowest point of the robot in the reference pose sits
``drop_clearance`` above z = 0. No floor is written: the environment adds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hd_deploy.errors import ConfigError
from hd_deploy.morphology.features import GEAR_CLASSES, JOINT_RANGE_CLASSES
from hd_deploy.morphology.robot import MAX_LIMBS

MIN_LIMBS = 2  # torso plus one capsule; MAX_LIMBS (12) also counts the torso

_TORSO_RADIUS = 0.1
_LIMB_RADIUS = 0.05
_LIMB_HEIGHTS = (0.2, 0.3, 0.4)  # capsule length is height + radius, as in the files
_CLEARANCE = 0.01  # gap kept between capsules that are allowed to touch
_ATTEMPTS = 200  # placement tries per limb before giving up on symmetry
_EPS = 1e-6
STAND_DRAWS = 20  # draws per wanted robot before write_robots gives up on the stand check


def _directions() -> np.ndarray:
    """The 13 UNIMAL limb directions, shape ``(13, 3)``."""
    angles = [(theta, 90) for theta in range(0, 360, 45)]
    angles += [(theta, 135) for theta in range(0, 360, 90)] + [(0, 180)]
    dirs = []
    for theta, phi in angles:
        t, p = np.radians(theta), np.radians(phi)
        dirs.append([np.sin(p) * np.cos(t), np.sin(p) * np.sin(t), np.cos(p)])
    return np.round(np.asarray(dirs), 12) + 0.0


def _hinge_axes(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The x and y hinge axes of a limb pointing along ``d`` (shortest turn of -z onto d)."""
    down = np.array([0.0, 0.0, -1.0])
    n = np.cross(down, d)
    s, c = np.linalg.norm(n), float(down @ d)
    if s < _EPS:  # straight down; no limb points straight up
        return np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    n = n / s
    k = np.array([[0.0, -n[2], n[1]], [n[2], 0.0, -n[0]], [-n[1], n[0], 0.0]])
    rot = np.eye(3) + s * k + (1.0 - c) * (k @ k)
    return rot[:, 0], rot[:, 1]


_DIRS = _directions()
_MIRROR = tuple(
    int(np.argmin(np.linalg.norm(_DIRS - d * np.array([1.0, -1.0, 1.0]), axis=1))) for d in _DIRS
)
_AXES = tuple(_hinge_axes(d) for d in _DIRS)


@dataclass(frozen=True)
class GeneratorConfig:
    """Options of the random robot generator.

    Attributes:
        min_limbs: Fewest bodies per robot, torso included, when no count is requested.
        max_limbs: Most bodies per robot, torso included, when no count is requested.
        symmetry_prob: Probability that a robot is bilaterally symmetric (UNIMAL: 1).
        mid_site_prob: Probability of growing from a limb's middle rather than its end,
            when both are free.
        two_joint_prob: Probability that a limb has two hinges rather than one.
        torso_density: Density of the torso sphere, kg/m^3.
        limb_density: Density of every limb capsule, kg/m^3.
        drop_clearance: Height of the lowest point above z = 0 in the file, metres.
    """

    # Body count, torso included (UNIMAL training robots have 5-11)
    min_limbs: int = 4
    max_limbs: int = 11
    # Growth
    symmetry_prob: float = 1.0
    mid_site_prob: float = 0.2
    two_joint_prob: float = 1.0 / 3.0
    # Mass
    torso_density: float = 1000.0
    limb_density: float = 600.0
    # Placement
    drop_clearance: float = 0.2

    def __post_init__(self) -> None:
        if not MIN_LIMBS <= self.min_limbs <= MAX_LIMBS:
            raise ConfigError(
                f"min_limbs must be in [{MIN_LIMBS}, {MAX_LIMBS}], got {self.min_limbs}"
            )
        if not self.min_limbs <= self.max_limbs <= MAX_LIMBS:
            raise ConfigError(
                f"max_limbs must be in [min_limbs={self.min_limbs}, {MAX_LIMBS}], "
                f"got {self.max_limbs}"
            )
        for name in ("symmetry_prob", "mid_site_prob", "two_joint_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        for name in ("torso_density", "limb_density"):
            value = getattr(self, name)
            if not value > 0.0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if not self.drop_clearance >= 0.0:
            raise ConfigError(f"drop_clearance must be >= 0, got {self.drop_clearance}")


@dataclass
class _Limb:
    parent: int  # index of the parent limb, -1 for the torso
    site: int | str  # growth site on the parent: torso direction index, "mid" or "btm"
    pos: np.ndarray  # body pos relative to the parent body, shape (3,)
    world: np.ndarray  # body origin relative to the torso centre, shape (3,)
    direction: int  # index into _DIRS
    height: float
    joints: tuple[tuple[str, int, int], ...]  # (axis "x"/"y", range class, gear class)
    mirror: int | None = None  # index of the mirror-image limb
    shares_site: bool = False  # grows from the same site as its mirror image

    @property
    def length(self) -> float:
        return self.height + _LIMB_RADIUS

    @property
    def end(self) -> np.ndarray:
        return self.world + self.length * _DIRS[self.direction]

    def site_pos(self, kind: str) -> np.ndarray:
        """Growth site ``"mid"`` or ``"btm"`` in this body's frame, shape ``(3,)``."""
        along = self.height / 2 + _LIMB_RADIUS if kind == "mid" else self.length
        return along * _DIRS[self.direction]


def _segment_distance(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray, q2: np.ndarray) -> float:
    """Closest distance between non-degenerate segments p1-q1 and p2-q2 (Ericson, 2005)."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e, f = d1 @ d1, d2 @ d2, d2 @ r
    c, b = d1 @ r, d1 @ d2
    denom = a * e - b * b
    s = float(np.clip((b * f - c * e) / denom, 0.0, 1.0)) if denom > _EPS else 0.0
    t = (b * s + f) / e
    if t < 0.0:
        t, s = 0.0, float(np.clip(-c / a, 0.0, 1.0))
    elif t > 1.0:
        t, s = 1.0, float(np.clip((b - c) / a, 0.0, 1.0))
    return float(np.linalg.norm(p1 + d1 * s - (p2 + d2 * t)))


class _Growth:
    """Grows a limb tree by random placement attempts; every draw comes from ``rng``."""

    def __init__(self, rng: np.random.Generator, cfg: GeneratorConfig) -> None:
        self.rng, self.cfg = rng, cfg
        self.limbs: list[_Limb] = []
        self.free: dict[int, list] = {-1: list(range(len(_DIRS)))}  # free sites per body

    def make(self, parent: int, site: int | str, direction: int, like: _Limb | None) -> _Limb:
        """A limb on ``site`` of ``parent``; copies height and joints of ``like`` if given."""
        rng = self.rng
        if like is None:
            height = _LIMB_HEIGHTS[int(rng.integers(len(_LIMB_HEIGHTS)))]
            two = rng.random() < self.cfg.two_joint_prob
            axes = ("x", "y") if two else (("x", "y")[int(rng.integers(2))],)
            n_ranges, n_gears = len(JOINT_RANGE_CLASSES), len(GEAR_CLASSES)
            joints = tuple(
                (axis, int(rng.integers(n_ranges)), int(rng.integers(n_gears))) for axis in axes
            )
        else:
            height, joints = like.height, like.joints
        if parent == -1:  # torso limbs start on the sphere
            pos = world = _TORSO_RADIUS * _DIRS[site]
        else:
            pos = self.limbs[parent].site_pos(site) + _LIMB_RADIUS * _DIRS[direction]  # type: ignore[arg-type]  # site ids are int or str by limb kind
            world = self.limbs[parent].world + pos
        return _Limb(parent, site, pos, world, direction, height, joints)

    def propose(self) -> _Limb:
        """A random limb on a random free site; the body is drawn first, then its site."""
        rng = self.rng
        owners = [owner for owner, sites in self.free.items() if sites]
        owner = owners[int(rng.integers(len(owners)))]
        sites = self.free[owner]
        if owner == -1:
            site = sites[int(rng.integers(len(sites)))]
            return self.make(-1, site, site, None)  # torso sites are keyed by direction
        site = sites[0]
        if len(sites) == 2:
            site = "mid" if rng.random() < self.cfg.mid_site_prob else "btm"
        # Never back into the parent, never along it from its middle
        dots = _DIRS @ _DIRS[self.limbs[owner].direction]
        allowed = np.flatnonzero(np.abs(dots) < 0.99 if site == "mid" else dots > -0.99)
        return self.make(owner, site, int(allowed[rng.integers(len(allowed))]), None)

    def is_clear(self, new: _Limb, others: list[_Limb], skip: int | None = None) -> bool:
        """Whether ``new`` keeps clear of the torso and ``others`` but its parent and ``skip``."""
        if new.parent != -1:
            seg = new.end - new.world
            s = np.clip(-(new.world @ seg) / (seg @ seg), 0.0, 1.0)
            if np.linalg.norm(new.world + s * seg) < _TORSO_RADIUS + _LIMB_RADIUS + _CLEARANCE:
                return False
        return all(
            _segment_distance(new.world, new.end, other.world, other.end)
            >= 2 * _LIMB_RADIUS + _CLEARANCE
            for i, other in enumerate(others)
            if i not in (new.parent, skip)
        )

    def mirror_site(self, new: _Limb) -> tuple[int, int | str] | None:
        """Where the mirror image of ``new`` grows, or None for an unmirrored limb."""
        if new.parent == -1:
            twin_site = _MIRROR[new.site]  # type: ignore[index]  # site ids are int or str by limb kind
            if abs(_DIRS[new.site][1]) < _EPS or twin_site not in self.free[-1]:
                return None
            return -1, twin_site
        parent = self.limbs[new.parent]
        # site on the x-z plane; site ids are int or str by limb kind
        if abs(parent.world[1] + parent.site_pos(new.site)[1]) < _EPS:  # type: ignore[arg-type]
            return (new.parent, new.site) if abs(_DIRS[new.direction][1]) > _EPS else None
        if parent.mirror is None or new.site not in self.free[parent.mirror]:
            return None  # the parent is an unmirrored fallback limb
        return parent.mirror, new.site

    def try_grow(self, budget: int, symmetric: bool) -> bool:
        """One placement attempt; on success the limb (or mirror pair) is committed."""
        new, limbs = self.propose(), self.limbs
        pair_site = self.mirror_site(new) if symmetric else None
        if (pair_site is not None and budget < 2) or not self.is_clear(new, limbs):
            return False
        group = [new]
        if pair_site is not None:
            twin = self.make(*pair_site, _MIRROR[new.direction], new)
            shared = pair_site == (new.parent, new.site)
            if not self.is_clear(twin, [*limbs, new], len(limbs) if shared else None):
                return False
            new.mirror, twin.mirror = len(limbs) + 1, len(limbs)
            new.shares_site = twin.shares_site = shared
            group.append(twin)
        for limb in group:
            if limb.site in self.free[limb.parent]:
                self.free[limb.parent].remove(limb.site)
            self.free[len(limbs)] = ["mid", "btm"]
            limbs.append(limb)
        return True

    def grow(self, n_limbs: int) -> list[_Limb]:
        """Grow ``n_limbs`` capsule limbs (torso excluded)."""
        symmetric = bool(self.rng.random() < self.cfg.symmetry_prob)
        while len(self.limbs) < n_limbs:
            budget = n_limbs - len(self.limbs)
            if any(self.try_grow(budget, symmetric) for _ in range(_ATTEMPTS)):
                continue
            # No symmetric placement fits: fall back to one unmirrored limb
            if not any(self.try_grow(1, False) for _ in range(_ATTEMPTS)):
                raise RuntimeError(f"could not place limb {len(self.limbs)} of {n_limbs}")
        return self.limbs


def _f(x: float) -> str:
    return f"{round(float(x), 4) + 0.0:g}"


def _v(v: np.ndarray) -> str:
    return " ".join(_f(x) for x in v)


_HEADER = """<?xml version='1.0' encoding='UTF-8'?>
<!-- Universal Animal Template: unimal (generated by hd_deploy.morphology.generator) -->
<mujoco model="{name}">
  <compiler angle="degree"/>
  <size njmax="2000" nconmax="500"/>
  <option timestep=".005">
    <flag filterparent="disable"/>
  </option>
  <default>
    <motor ctrlrange="-1 1" ctrllimited="true"/>
    <default class="normal_joint">
      <joint type="hinge" damping="1" stiffness="1" armature="1" limited="true" \
range="-120 120" solimplimit="0 0.99 0.01"/>
    </default>
    <default class="free">
      <joint limited="false" damping="0" armature="0" stiffness="0"/>
    </default>
    <default class="growth_site">
      <site size="1e-6 1e-6 1e-6"/>
    </default>
    <default class="mirror_growth_site">
      <site size="1e-6 1e-6 1e-6"/>
    </default>
    <default class="imu_vel">
      <site type="box" size="0.05" rgba="1 0 0 1"/>
    </default>
    <geom type="capsule" condim="3" friction="0.7 0.1 0.1" material="self"/>
  </default>
  <asset>
    <material name="self" rgba=".7 .5 .3 1"/>
  </asset>
  <worldbody>
    <light diffuse="1 1 1" directional="true" exponent="1" pos="0 0 1" specular=".1 .1 .1"/>
    <body name="torso/0" pos="0 0 {height}">
      <joint name="root" type="free" class="free"/>
      <site name="root" class="imu_vel"/>
      <geom name="torso/0" type="sphere" size="{torso_radius}" condim="3" \
density="{torso_density}"/>
      <camera name="side" pos="0 -7 2" xyaxes="1 0 0 0 1 2" mode="trackcom"/>
"""


def _write_mjcf(name: str, limbs: list[_Limb], cfg: GeneratorConfig) -> str:
    lowest = min([-_TORSO_RADIUS] + [min(m.world[2], m.end[2]) - _LIMB_RADIUS for m in limbs])
    lines = [
        _HEADER.format(
            name=name,
            height=_f(cfg.drop_clearance - lowest),
            torso_radius=_f(_TORSO_RADIUS),
            torso_density=_f(cfg.torso_density),
        ).rstrip("\n")
    ]
    children: dict[int, list[int]] = {-1: []}
    for i, limb in enumerate(limbs):
        children[i] = []
        children[limb.parent].append(i)
    motors: list[str] = []

    def body(i: int, depth: int) -> None:
        limb, pad = limbs[i], "  " * depth
        d = _DIRS[limb.direction]
        site_class = "growth_site" if limb.mirror is None else "mirror_growth_site"
        lines.append(f'{pad}<body name="limb/{i}" pos="{_v(limb.pos)}">')
        for axis_name, range_id, gear_id in limb.joints:
            axis = _AXES[limb.direction][0 if axis_name == "x" else 1]
            lo, hi = JOINT_RANGE_CLASSES[range_id]
            joint = f"limb{axis_name}/{i}"
            lines.append(
                f'{pad}  <joint name="{joint}" type="hinge" class="normal_joint" '
                f'range="{lo} {hi}" pos="{_v(-_LIMB_RADIUS * d)}" axis="{_v(axis)}"/>'
            )
            motors.append(
                f'    <motor joint="{joint}" gear="{GEAR_CLASSES[gear_id]}" name="{joint}"/>'
            )
        lines.append(
            f'{pad}  <geom name="limb/{i}" type="capsule" fromto="0 0 0 {_v(limb.length * d)}" '
            f'size="{_f(_LIMB_RADIUS)}" density="{_f(cfg.limb_density)}"/>'
        )
        for kind in ("mid", "btm"):
            pos = _v(limb.site_pos(kind))
            lines.append(f'{pad}  <site name="limb/{kind}/{i}" class="{site_class}" pos="{pos}"/>')
        for child in children[i]:
            body(child, depth + 1)
        lines.append(f"{pad}</body>")

    for i in children[-1]:
        body(i, 3)
    lines += ["    </body>", "  </worldbody>", "  <actuator>", *motors, "  </actuator>"]
    lines += [
        "  <sensor>",
        '    <accelerometer name="torso_accel" site="root"/>',
        '    <gyro name="torso_gyro" site="root"/>',
        '    <velocimeter name="torso_vel" site="root"/>',
        '    <subtreeangmom name="unimal_am" body="torso/0"/>',
        "  </sensor>",
    ]
    # Mirror twins on one site start inside each other, as in the files
    pairs = [(i, m.mirror) for i, m in enumerate(limbs) if m.shares_site and i < m.mirror]  # type: ignore[operator]  # site ids are int or str by limb kind
    if pairs:
        lines.append("  <contact>")
        lines += [
            f'    <exclude name="limb/{a}:limb/{b}" body1="limb/{a}" body2="limb/{b}"/>'
            for a, b in pairs
        ]
        lines.append("  </contact>")
    lines.append("</mujoco>")
    return "\n".join(lines) + "\n"


def generate_robot(
    seed: int, *, n_limbs: int | None = None, config: GeneratorConfig = GeneratorConfig()
) -> str:
    """Generate one random UNIMAL-style robot.

    Args:
        seed: Non-negative seed; the same seed and options give byte-identical text.
        n_limbs: Exact number of bodies, torso included, in [2, 12]; drawn uniformly from
            ``[config.min_limbs, config.max_limbs]`` when None.
        config: Generator options.

    Returns:
        MJCF text of a model named ``gen-<seed>`` (no floor).

    Raises:
        ConfigError: If ``n_limbs`` is outside [2, 12] or ``seed`` is negative.
    """
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if n_limbs is not None and not MIN_LIMBS <= n_limbs <= MAX_LIMBS:
        raise ConfigError(
            f"n_limbs must be in [{MIN_LIMBS}, {MAX_LIMBS}] (bodies including the torso), "
            f"got {n_limbs}"
        )
    rng = np.random.default_rng(seed)
    count = int(rng.integers(config.min_limbs, config.max_limbs + 1))
    if n_limbs is not None:
        count = n_limbs
    return _write_mjcf(f"gen-{seed}", _Growth(rng, config).grow(count - 1), config)


def write_robots(
    out_dir: str | Path,
    count: int,
    *,
    seed: int = 0,
    config: GeneratorConfig = GeneratorConfig(),
    stand_steps: int = 0,
) -> list[Path]:
    """Write ``count`` random robots as ``gen-<seed>.xml`` files, seeds counting up from
    ``seed``.

    Args:
        out_dir: Output folder, created if missing.
        count: Number of robots (>= 0).
        seed: Seed of the first robot drawn; the next draws use ``seed + 1``, ``seed + 2``...
        config: Generator options.
        stand_steps: Keep only robots that stay up this many control steps with their motors
            off (:func:`hd_deploy.envs.task.stands_unpowered`), skipping the seeds of the
            others; 0 keeps every draw, so robot ``i`` is ``gen-<seed + i>``.

    Returns:
        Paths of the written files, in seed order.

    Raises:
        ConfigError: If ``count``, ``seed`` or ``stand_steps`` is negative, or fewer than
            ``count`` robots stood among ``STAND_DRAWS x count`` draws.
    """
    if count < 0:
        raise ConfigError(f"count must be >= 0, got {count}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if stand_steps < 0:
        raise ConfigError(f"stand_steps must be >= 0, got {stand_steps}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from hd_deploy.envs.task import stands_unpowered  # mujoco; the generator itself is numpy

    paths: list[Path] = []
    draws = count if stand_steps == 0 else STAND_DRAWS * count
    for s in range(seed, seed + draws):
        if len(paths) == count:
            break
        text = generate_robot(s, config=config)
        if stand_steps and not stands_unpowered(text, stand_steps):
            continue
        path = out / f"gen-{s}.xml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    if len(paths) < count:
        raise ConfigError(
            f"only {len(paths)} of {draws} robots drawn stood {stand_steps} steps with their "
            f"motors off ({count} wanted); lower the stand check's steps"
        )
    return paths
