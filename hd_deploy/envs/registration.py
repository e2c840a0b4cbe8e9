"""The gymnasium id of :class:`~hd_deploy.envs.gym_env.LocomotionEnv`.

After ``import hd_deploy``, ``gymnasium.make(GYM_ENV_ID, robot="robot.xml")`` works
whichever of the two was imported first. gymnasium takes about half a second to import
(numpy with it) and the robot-side runtime must not load it at all, so when it is not
loaded yet the registration waits for its registry module to be imported (a meta path
finder that steps aside after that one import); gymnasium 1.x has no plugin entry points.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections.abc import Sequence

GYM_ENV_ID = "hd_deploy/Locomotion-v0"
EPISODE_STEPS = 1000  # TaskConfig().episode_steps, without importing mujoco here

_REGISTRY_MODULE = "gymnasium.envs.registration"


def register_gym_env() -> None:
    """Register :data:`GYM_ENV_ID` with gymnasium (imports gymnasium; idempotent).

    The env truncates its episodes itself at ``config.episode_steps``; the registered
    ``max_episode_steps`` is the default task's, so a ``config`` with longer episodes needs
    ``gymnasium.make(..., max_episode_steps=N)`` as well.
    """
    from gymnasium.envs.registration import register, registry

    if GYM_ENV_ID not in registry:
        register(
            id=GYM_ENV_ID,
            entry_point="hd_deploy.envs.gym_env:LocomotionEnv",
            max_episode_steps=EPISODE_STEPS,
        )


def register_gym_env_when_loaded() -> None:
    """Register now if gymnasium is loaded, else as soon as it is (imports nothing)."""
    if _REGISTRY_MODULE in sys.modules:
        register_gym_env()
    elif not any(isinstance(finder, _AfterGymnasium) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterGymnasium())


class _AfterGymnasium:
    """Finds gymnasium's registry module as the path finder would, and registers the env
    right after the module has run; then leaves ``sys.meta_path``."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != _REGISTRY_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None  # an unusual install: the import goes on without the hook
        run = spec.loader.exec_module

        def run_and_register(module: types.ModuleType) -> None:
            run(module)
            register_gym_env()

        spec.loader.exec_module = run_and_register  # type: ignore[method-assign]
        return spec
