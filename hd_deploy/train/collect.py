"""Rollout collection for PPO, in step with the update or overlapped with it.

A :class:`Collector` owns the vectorised environment, the current observations and the
reward scaler, and fills one rollout buffer per call. With ``overlap`` the next buffer
is collected in a background thread by a snapshot of the policy while the trainer
updates on the previous one, so the physics workers and the learner run at the same
time (the policy that acts is then one update behind the one that learns). Every
transition records the log-probability of its action under the policy that acted, so
PPO's importance ratio is taken against that policy in both cases.
"""

from __future__ import annotations

import copy
import math
import threading
from pathlib import Path

import numpy as np
import torch

from hd_deploy.envs.vec_env import VecLocomotionEnv, VecObs
from hd_deploy.models import TeacherPolicy
from hd_deploy.train.config import PPOConfig
from hd_deploy.train.scaling import RunningScale


def gaussian_log_density(z, std: float):
    """Log-density of N(mean, std^2) at ``mean + std * z``, per element (numpy or torch).

    The one formula for both sides of the PPO ratio: the collector's (the noise it drew is
    ``z``) and the learner's (``z = (action - mean) / std``).
    """
    return -0.5 * z * z - math.log(std) - 0.5 * math.log(2 * math.pi)


def autocast(device: torch.device | str, bf16: bool):
    """Matmuls in bfloat16 on ``device`` when ``bf16`` (``PPOConfig.precision``), else a no-op."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16)


def native_bf16(device: torch.device | str, cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether ``device`` multiplies in bfloat16 in hardware: on a GPU, torch says; on a CPU,
    whether Linux's ``cpuinfo`` lists AVX512-BF16 or AMX-BF16 (without either, oneDNN
    emulates it, slower than float32). ``None`` where that cannot be read."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), None)
    if flags is None:
        return None
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split(":", 1)[-1].split()))


def obs_tensors(obs: VecObs, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(proprio, context, limb_mask)`` of padded observations as tensors on ``dev``."""
    return (
        torch.as_tensor(obs.proprio, device=dev),
        torch.as_tensor(obs.context, device=dev),
        torch.as_tensor(obs.limb_mask, device=dev),
    )


class Collector:
    """Fills PPO rollout buffers of ``ppo.rollout_steps x ppo.n_envs`` transitions.

    Args:
        env: The environment (already built; the collector resets it).
        ppo: PPO settings (rollout size, discount, reward normalisation).
        scaler: Running scale of the discounted return (its state is checkpointed).
        dev: Device the policy runs on.
        seed: Seed of the action noise.
    """

    def __init__(
        self,
        env: VecLocomotionEnv,
        ppo: PPOConfig,
        scaler: RunningScale,
        dev: torch.device,
        *,
        seed: int,
    ) -> None:
        self.env, self.ppo, self.scaler, self.dev = env, ppo, scaler, dev
        self.noise = torch.Generator(device=dev)
        self.noise.manual_seed(seed)
        self.obs = env.reset()
        self._thread: threading.Thread | None = None
        self._result: tuple[dict, list[dict]] | None = None
        self._error: BaseException | None = None

    def collect(self, policy: TeacherPolicy) -> tuple[dict, list[dict]]:
        """One buffer collected by ``policy`` now; returns ``(buffer, finished episodes)``."""
        return self._rollout(policy)

    def start(self, policy: TeacherPolicy) -> None:
        """Collect the next buffer in the background with a snapshot of ``policy``."""
        snapshot = copy.deepcopy(policy).eval()

        def run() -> None:
            try:
                self._result = self._rollout(snapshot)
            except BaseException as exc:  # re-raised in wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name="ppo-collector", daemon=True)
        self._thread.start()

    def wait(self) -> tuple[dict, list[dict]]:
        """The buffer started by :meth:`start` (re-raises what stopped the collection)."""
        if self._thread is None:
            raise RuntimeError("no collection in flight")
        self._thread.join()
        self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        result, self._result = self._result, None
        assert result is not None
        return result

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.env.close()

    @torch.inference_mode()
    def _rollout(self, teacher: TeacherPolicy) -> tuple[dict, list[dict]]:
        ppo, dev, obs = self.ppo, self.dev, self.obs
        T, N = ppo.rollout_steps, ppo.n_envs
        L = obs.proprio.shape[1]
        buf: dict = {
            "proprio": np.zeros((T, N, L, obs.proprio.shape[2]), np.float32),
            "context": np.zeros((T, N, L, obs.context.shape[2]), np.float32),
            "limb_mask": np.zeros((T, N, L), bool),
            "action_mask": np.zeros((T, N, L, 2), bool),
            "action": np.zeros((T, N, L, 2), np.float32),
            "reward": np.zeros((T, N), np.float32),
            "logp": np.zeros((T, N), np.float32),  # of the acting policy, as it acted
            "done": np.zeros((T, N), bool),
            "robot": np.zeros((T, N), np.int64),  # which robot each sample comes from
        }
        episodes: list[dict] = []
        std = teacher.action_std
        bf16 = ppo.precision == "bf16"  # acting too; its log-density comes from the noise
        teacher.eval()
        for t in range(T):
            p, c, m = obs_tensors(obs, dev)
            with autocast(dev, bf16):
                packing, packed_mean, _ = teacher.packed(p, c, m, value=False)
            mean = packing.unpack(packed_mean.float(), L)
            noise = torch.randn(mean.shape, generator=self.noise, device=dev)
            action = (mean + std * noise).cpu().numpy()
            # log-density of the action taken over the real actuators, under the policy
            # that acted (with overlap, one update behind the learner)
            logp = gaussian_log_density(noise.cpu().numpy(), std)
            logp = (logp * obs.action_mask).sum(axis=(1, 2))
            step = self.env.step(action)
            reward = step.reward.astype(np.float64)
            done = step.terminated | step.truncated
            if ppo.normalize_rewards:
                reward = self.scaler(reward, done)
            if step.truncated.any():
                # Timeouts are not failures: bootstrap from the value of the last state.
                idx = np.nonzero(step.truncated)[0]
                fp = torch.as_tensor(step.final_proprio[idx], device=dev)
                v = teacher.packed(fp, c[idx], m[idx])[2]
                reward[idx] += ppo.gamma * v.cpu().numpy()  # type: ignore[union-attr]
            for key, val in (
                ("proprio", obs.proprio), ("context", obs.context),
                ("limb_mask", obs.limb_mask), ("action_mask", obs.action_mask),
                ("action", action), ("reward", reward), ("done", done), ("logp", logp),
                ("robot", obs.robot_index),
            ):  # fmt: skip
                buf[key][t] = val
            episodes.extend(step.episodes)
            obs = step.obs
        buf["last"] = obs
        self.obs = obs
        return buf, episodes
