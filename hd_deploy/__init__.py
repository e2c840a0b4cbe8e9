"""hd_deploy: bake universal robot policies into tiny per-robot controllers."""

from __future__ import annotations

from hd_deploy.envs.registration import register_gym_env_when_loaded

__version__ = "0.1.0"

register_gym_env_when_loaded()  # gymnasium.make("hd_deploy/Locomotion-v0", robot=...)
