"""Trainer configurations (frozen; validated on construction: ``ConfigError``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from hd_deploy.errors import ConfigError
from hd_deploy.train.sampling import SAMPLINGS

PRECISIONS = ("fp32", "bf16")
KL_STOPS = ("minibatch", "epoch")
KL_ESTIMATORS = ("k1", "k3")
ADVANTAGE_NORMS = ("batch", "robot")
ROBOT_NORM_MIN_SAMPLES = 32  # fewer samples of a robot in a batch: the batch's scale
WARMUP_FACTOR = 0.1  # the learning rate's fraction at the first --lr-warmup iteration
# The PPO settings a resumed run may change: the machine's (threads, workers, precision),
# its length, its evaluation and its updates. Not the batch (n_envs x rollout_steps): the
# learning-rate schedule counts iterations of it and the reward scaler keeps one state per
# environment.
RESUMABLE = ("total_steps", "epochs", "minibatch_size", "lr", "target_kl", "kl_stop",
             "kl_estimator", "clip_value", "eval_every", "robot_sampling", "context_noise",
             "advantage_norm", "n_workers", "threads", "precision")  # fmt: skip
# What a resumed distillation or cloning run may change: the machine it runs on. The rest
# (data, epochs, learning rate) shapes the run already begun.
MACHINE = ("n_workers", "threads", "device")


@dataclass(frozen=True)
class PPOConfig:
    """PPO for the universal teacher (MetaMorph recipe, sized for a CPU by default).

    The MetaMorph reference is 32 envs x 2560 steps per iteration, 8 epochs, batch 5120
    and 100M steps (``reference()``); the default trains a useful small teacher on two
    cores in about two hours.
    """

    # data collection
    n_envs: int = 32
    rollout_steps: int = 128
    total_steps: int = 6_000_000
    n_workers: int = 2
    overlap: bool = True  # collect the next rollout while updating on this one
    # how an environment picks its next robot: "balanced" (MetaMorph's: in inverse proportion
    # to the robot's recent episode length, hd_deploy.train.sampling) or "uniform"
    robot_sampling: str = "balanced"
    # optimisation
    lr: float = 3e-4
    lr_schedule: str = "cosine"
    # iterations at the start of a run whose learning rate ramps linearly from 0.1x to 1x of
    # the schedule's (MetaMorph's WARMUP_ITERS 5, WARMUP_FACTOR 0.1): softens the first steps
    # of a fresh Adam, which move every weight by about the learning rate
    lr_warmup: int = 0
    epochs: int = 4
    minibatch_size: int = 1024
    clip: float = 0.2
    value_coef: float = 0.5
    # MetaMorph's USE_CLIP_VALUE_FUNC: the value loss is the larger of the prediction's squared
    # error and that of the prediction clipped to within ``clip`` of the value the update
    # started from (off: the plain squared error, as in the runs before this option)
    clip_value: bool = False
    max_grad_norm: float = 0.5
    # stop an iteration's update once the approximate KL from the policy it started from
    # exceeds this (0: off; the HyperDistill authors' ModuMorph recipe uses 0.05, MetaMorph's
    # default 0.2 is meant to be off)
    target_kl: float = 0.0
    # where that KL is checked: "minibatch" (MetaMorph's: before each gradient step, on its
    # minibatch, so no step is taken past the target) or "epoch" (the mean over an epoch's
    # minibatches, after the epoch: up to an epoch of steps past it)
    kl_stop: str = "minibatch"
    # which estimate of KL(proximal || current) on a minibatch that stop compares, with the
    # ratio r = current / proximal probability of each sample's action: "k1" (MetaMorph's:
    # the mean of -log r, which a minibatch can make negative) or "k3" (the mean of
    # r - 1 - log r, never negative; the runs recorded before this option). Both are logged
    # (approx_kl: k3, kl_k1: k1); on the teacher's updates k1 was 1.0-1.5 times k3 (mean
    # 1.35: training/teacher_cpu_mb4b/progress.csv, iterations 509-572), so at the same
    # target a k1 stop ends an update sooner
    kl_estimator: str = "k1"
    # iterations at the start of a run that train only the value network (for a run that
    # starts from a trained policy, whose critic has not seen its returns yet)
    critic_warmup: int = 0
    # cap on the importance weight proximal / acting policy of a sample (the acting policy is
    # one update behind with overlap; truncation bounds the variance, as in V-trace)
    max_is_weight: float = 2.0
    # update the observation normaliser with every batch (off: keep the statistics of the
    # checkpoint a run starts from, which its policy was trained under)
    update_normalizer: bool = True
    # Gaussian noise on each training episode's morphology context, in standard deviations of
    # each feature over the training robots' limbs, one draw an episode (VecLocomotionEnv):
    # a regulariser of the context -> action mapping toward unseen bodies (0: off)
    context_noise: float = 0.0
    # how advantages are scaled before the policy loss: "batch" (MetaMorph's: one mean and
    # std over the whole batch, so the robots with the largest returns, whose advantages are
    # largest, steer the update) or "robot" (the batch's mean out, then each robot's samples
    # over the root mean square of their own, so every robot in the batch pulls about as
    # hard; a robot with fewer than ROBOT_NORM_MIN_SAMPLES samples in the batch keeps the
    # batch's scale)
    advantage_norm: str = "batch"
    # returns
    gamma: float = 0.99
    gae_lambda: float = 0.95
    normalize_rewards: bool = True
    # bookkeeping
    seed: int = 0
    checkpoint_every: int = 10
    eval_every: int = 50  # iterations between zero-shot evaluations (when robots are given)
    threads: int = 2
    # the learner's matmuls: "fp32", or "bf16" (autocast; weights, Adam and the loss stay
    # float32): 1.9x faster updates of the paper-sized teacher on a CPU with AVX512-BF16
    # (scripts/bench_learner.py); slower where the hardware lacks native bfloat16
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        _check_choice("robot_sampling", self.robot_sampling, SAMPLINGS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("kl_stop", self.kl_stop, KL_STOPS)
        _check_choice("kl_estimator", self.kl_estimator, KL_ESTIMATORS)
        _check_choice("advantage_norm", self.advantage_norm, ADVANTAGE_NORMS)
        _check_machine(self)
        for name in ("n_envs", "rollout_steps", "total_steps", "epochs", "minibatch_size",
                     "eval_every"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ConfigError(
                f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}"
            )
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ConfigError("gamma must be in (0, 1] and gae_lambda in [0, 1]")
        if self.minibatch_size > self.batch_size:
            raise ConfigError(
                f"minibatch_size ({self.minibatch_size}) exceeds the batch of "
                f"n_envs x rollout_steps = {self.batch_size}"
            )
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        if self.target_kl < 0 or self.critic_warmup < 0 or self.lr_warmup < 0:
            raise ConfigError("target_kl, critic_warmup and lr_warmup must be >= 0")
        if self.max_is_weight < 1:
            raise ConfigError("max_is_weight must be >= 1")
        if not self.context_noise >= 0:
            raise ConfigError(f"context_noise must be >= 0, got {self.context_noise}")

    @property
    def batch_size(self) -> int:
        return self.n_envs * self.rollout_steps

    @property
    def iterations(self) -> int:
        return max(1, self.total_steps // self.batch_size)

    @classmethod
    def reference(cls) -> PPOConfig:
        return cls(rollout_steps=2560, total_steps=100_000_000, epochs=8, minibatch_size=5120)

    @classmethod
    def tiny(cls) -> PPOConfig:
        return cls(
            n_envs=4, rollout_steps=16, total_steps=256, n_workers=0, epochs=1,
            minibatch_size=32, checkpoint_every=1, threads=1,
        )  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PPOConfig:
        # runs recorded before a setting existed sampled their robots uniformly and checked
        # the KL (k3) after each epoch
        old = {"robot_sampling": "uniform", "kl_stop": "epoch", "kl_estimator": "k3"}
        return _from_dict(cls, {**old, **data})


@dataclass(frozen=True)
class DistillConfig:
    """Behaviour cloning of the teacher into the hypernetwork (HyperDistill recipe)."""

    # data
    samples_per_robot: int = 8000
    n_envs: int = 16
    n_workers: int = 2
    dagger_rounds: int = 0
    # more samples per robot from episode openings (each collection, DAgger too)
    start_samples_per_robot: int = 0
    start_steps: int = 100
    # optimisation (lr decays along a cosine over the epochs)
    epochs: int = 50
    batch_size: int = 5120
    robots_per_batch: int = 16
    lr: float = 1e-3
    warmup_epochs: int = 3  # linear ramp to lr (a fresh hypernetwork's hidden layer can die)
    warmup_steps: int = 20  # and over the first optimiser steps (short runs: Adam overshoots)
    max_grad_norm: float = 0.5
    # regularisation of the context -> weights mapping (generalisation to unseen robots)
    weight_decay: float = 0.0  # decoupled (AdamW-style)
    context_noise: float = 0.0  # Gaussian noise on the context, in units of each feature's std
    # labels clipped to [-1, 1], the range the controls run at (off: the paper's loss on the
    # raw action means, and the runs before this option)
    clip_labels: bool = False
    # bookkeeping
    seed: int = 0
    checkpoint_every: int = 5
    threads: int = 2
    device: str = "auto"  # "auto": CUDA when present; rollouts always run on CPU workers

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        _check_machine(self)
        for name in ("weight_decay", "context_noise", "warmup_epochs", "warmup_steps",
                     "start_samples_per_robot"):  # fmt: skip
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("samples_per_robot", "n_envs", "epochs", "batch_size", "robots_per_batch",
                     "start_steps"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dagger_rounds < 0:
            raise ConfigError(f"dagger_rounds must be >= 0, got {self.dagger_rounds}")
        if self.batch_size < self.robots_per_batch:
            raise ConfigError(
                f"batch_size ({self.batch_size}) must be >= robots_per_batch "
                f"({self.robots_per_batch})"
            )

    @classmethod
    def tiny(cls) -> DistillConfig:
        return cls(
            samples_per_robot=64, n_envs=2, n_workers=0, epochs=2, warmup_epochs=0,
            batch_size=64, robots_per_batch=2, checkpoint_every=1, threads=1,
        )  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DistillConfig:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class SingleRobotPPO:
    """The batch and PPO constants of PPO on one robot with an MLP (``hd_deploy.train.mlp_ppo``),
    shared by :class:`ExpertConfig` and :class:`TuneConfig`."""

    n_envs: int = 8
    rollout_steps: int = 256
    epochs: int = 10
    minibatch_size: int = 256
    clip: float = 0.2
    max_grad_norm: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95

    def __post_init__(self) -> None:
        for name in ("n_envs", "rollout_steps", "epochs", "minibatch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def batch_size(self) -> int:
        return self.n_envs * self.rollout_steps

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExpertConfig(SingleRobotPPO):
    """Plain PPO for one small per-robot MLP expert (see ``hd_deploy.train.experts``)."""

    total_steps: int = 300_000
    # model
    hidden: int = 64
    init_log_std: float = -0.5
    lr: float = 3e-4
    # bookkeeping
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_lr(self.lr)
        for name in ("total_steps", "hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def tiny(cls) -> ExpertConfig:
        return cls(n_envs=2, rollout_steps=16, total_steps=64, hidden=8, epochs=1,
                   minibatch_size=16)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> ExpertConfig:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class TuneConfig(SingleRobotPPO):
    """PPO fine-tuning of a baked controller on its own robot (``hd_deploy.train.tune``).

    With the defaults, 11 unseen UNIMAL robots' bakes went from a mean deterministic return
    of 402.0 to 1578.6 (``scripts/tune_unseen.py``; README, "When a controller does not
    walk", has the comparison with training from scratch).
    """

    total_steps: int = 400_000
    # exploration around the bake's actions (a learned std, starting here)
    init_std: float = 0.3
    # the value function, trained from scratch: its width, and the iterations at the start
    # that train it alone (the policy is already a good one; a random critic would undo it)
    value_hidden: int = 256
    critic_warmup: int = 5
    lr: float = 1e-4
    # deterministic episodes that compare the bake and the tuned controller
    eval_episodes: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_lr(self.lr)
        for name in ("total_steps", "value_hidden", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.init_std <= 2 or self.critic_warmup < 0:
            raise ConfigError(
                f"need 0 < init_std <= 2 and critic_warmup >= 0, got {self.init_std} and "
                f"{self.critic_warmup}"
            )

    @classmethod
    def tiny(cls) -> TuneConfig:
        return cls(n_envs=2, rollout_steps=16, total_steps=64, value_hidden=8, critic_warmup=1,
                   epochs=1, minibatch_size=16, eval_episodes=1)  # fmt: skip


@dataclass(frozen=True)
class CloneConfig:
    """Cloning per-robot experts into the universal teacher (behaviour cloning + DAgger)."""

    # data
    samples_per_robot: int = 4000
    action_noise: float = 0.2
    dagger_rounds: int = 1
    dagger_samples_per_robot: int = 2000
    n_workers: int = 2
    # optimisation (lr decays along a cosine over the epochs)
    epochs: int = 24
    batch_size: int = 2048
    robots_per_batch: int = 16
    lr: float = 1e-3
    max_grad_norm: float = 0.5
    # bookkeeping
    seed: int = 0
    checkpoint_every: int = 2
    threads: int = 2
    device: str = "auto"  # "auto": CUDA when present; rollouts always run on CPU workers

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        _check_machine(self)
        for name in ("samples_per_robot", "dagger_samples_per_robot", "epochs", "batch_size",
                     "robots_per_batch"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dagger_rounds < 0 or self.action_noise < 0:
            raise ConfigError("dagger_rounds and action_noise must be >= 0")
        if self.epochs < self.dagger_rounds + 1:
            raise ConfigError(
                f"epochs ({self.epochs}) must be >= dagger_rounds + 1 ({self.dagger_rounds + 1})"
            )
        if self.batch_size < self.robots_per_batch:
            raise ConfigError(
                f"batch_size ({self.batch_size}) must be >= robots_per_batch "
                f"({self.robots_per_batch})"
            )

    @classmethod
    def tiny(cls) -> CloneConfig:
        return cls(
            samples_per_robot=32, dagger_rounds=1, dagger_samples_per_robot=16, n_workers=0,
            epochs=2, batch_size=32, robots_per_batch=2, checkpoint_every=1, threads=1,
        )  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CloneConfig:
        return _from_dict(cls, data)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _check_lr(lr: float) -> None:
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr}")


def _check_machine(config: PPOConfig | DistillConfig | CloneConfig) -> None:
    if config.threads < 1:
        raise ConfigError(f"threads must be >= 1, got {config.threads}")
    if config.n_workers < 0:
        raise ConfigError(f"n_workers must be >= 0, got {config.n_workers}")


def _from_dict(cls, data: dict):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {unknown}")
    return cls(**data)
