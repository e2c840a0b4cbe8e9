"""What ``report.json`` holds (:data:`REPORT_SCHEMA`) and the counting conventions it states."""

from __future__ import annotations

SCHEMA_VERSION = 1

#: The measurement conventions, written into every report as ``convention``.
CONVENTION: dict[str, str] = {
    "macs": (
        "multiply-accumulates per control step (one observation, batch 1); one fused "
        "multiply-add = 1 MAC (fvcore's unit)"
    ),
    "flops": "FLOPs = 2 x MACs",
    "counted": (
        "matrix products only: linear layers, attention scores and the attention-weighted "
        "sum; layer norms, softmax, activations, clamps and the observation normaliser are "
        "elementwise and not counted"
    ),
    "measured_by": (
        "fvcore on the deployed torch module with torch's fused attention fast path "
        "disabled, cross-checked against the closed-form count (hd_deploy.models.counting); "
        "macs_check.agree is false when they differ by more than 1%"
    ),
    "params": (
        "teacher: the actor transformer on the robot's limbs (value network excluded); "
        "student: the baked MLP; the hypernetwork is reported separately (it runs once per "
        "robot); normaliser statistics are buffers, not parameters"
    ),
    "latency": (
        "microseconds per controller.act(obs) call: float32 numpy observation in, numpy "
        "controls out, batch 1, one thread (torch.set_num_threads(1), onnxruntime intra/inter "
        "op threads 1); warm-up first, then the backends alternate in rounds so machine noise "
        "hits all of them alike; p50/p99 over every timed call"
    ),
    "throughput": (
        "control steps per second of the runtime loop observe -> act -> frame_skip mj_steps "
        "(physics included) with the onnxruntime controller, resetting fallen robots, single "
        "process; the loops (and physics alone) run side by side in rotating blocks"
    ),
    "ratios": (
        "teacher / student for params, MACs and latency (larger = student cheaper); "
        "student / teacher for return (1 = student matches the teacher)"
    ),
}

REPORT_SCHEMA = """\
`report.json` (schema_version 1). Counts are MACs per control step (FLOPs = 2 x MACs);
latencies are microseconds per `act(obs)` call at batch 1 on one thread; `null` marks a
value that was not measured (e.g. returns with `--no-returns`).

- `schema_version` (int), `created` (ISO-8601 UTC), `command` (the exact command line).
- `convention` (object of strings): `macs`, `flops`, `counted`, `measured_by`, `params`,
  `latency`, `throughput`, `ratios`.
- `machine`: `cpu` (model name), `cores` (logical CPUs), `cores_usable` (CPU affinity),
  `load_average` ([1, 5, 15] min), `platform`, `python`, `threads` (1), `versions`
  (`hd_deploy`, `torch`, `onnxruntime`, `onnx`, `numpy`, `mujoco`, `fvcore`).
- `settings`: `teacher`, `student` (checkpoint folders), `teacher_hash`, `student_hash`,
  `robot_sources`, `episodes`, `seed`, `returns` (bool), `latency` (`warmup`, `rounds`,
  `calls_per_round`, `calls`: timed calls per backend), `throughput_steps`,
  `bake_repeats`, `reference` (bool).
- `models`: `teacher.config`, `student.config` (config dicts), `student.hypernet_params`.
- `robots[]`, one per robot:
  - `name`, `file`, `set` (the `--robots` argument it came from), `fingerprint` (the
    robot's, as exported controllers carry it), `n_limbs`, `n_actuators`, `obs_dim`,
    `physics_steps_per_s` (zero controls, no policy);
  - `seen_in_training` {`teacher`, `student`}: whether that checkpoint was trained on this
    robot, by fingerprint (a renamed copy of a training robot is seen; null when the
    checkpoint records no fingerprints);
  - `nearest_training` {`teacher`, `student`}: the robot's nearest among that checkpoint's
    training robots by morphology context (`robot`, `distance`, `spacing`: the training
    robots' median distance to their nearest other, `training_robots`, `far`: beyond 1.5x
    the spacing, where hd-export warns); null when the checkpoint records no contexts;
  - `teacher` and `student`, each: `params`, `params_analytic`, `macs` (fvcore),
    `macs_check` {`fvcore`, `analytic`, `rel_diff`, `tolerance`, `agree`}, `onnx_file`,
    `onnx_bytes`, `latency_us` {backend: {`p50`, `p99`, `mean`, `min`, `n`}} with backends
    `torch`, `onnx` (and `numpy` and, with a C compiler, `c` through ctypes for the
    student), `latency_us_p50` and `latency_us_p99` (the onnxruntime numbers),
    `steps_per_s` (control loop with the onnxruntime controller) and, in that loop, the
    p50 per control step of each stage: `obs_us_p50`, `policy_us_p50`, `physics_us_p50`,
    and `obs_policy_over_physics` ((obs + policy) / physics); `floor_us` (the student's
    arithmetic floor: its C `hd_act` timed inside C, no Python; null for the teacher or
    without a compiler) and `overhead_us` {backend: p50 - floor} (null likewise);
    `return_mean`, `return_std`, `returns` (per episode) and `episode_length_mean`;
  - `student` also: `widths` (baked MLP layer widths), `bake_ms` (median time of one
    hypernetwork pass baking this robot), `hypernet_macs_per_bake` (fvcore);
  - `ratios`: `params`, `macs`, `latency_onnx` (teacher onnxruntime / student
    onnxruntime p50), `latency_torch_vs_onnx` (teacher eager torch / student onnxruntime
    p50), `return` (student / teacher return; null unless the teacher's is > 0).
- `summary`: `n_robots`; `params_ratio`, `macs_ratio`, `latency_ratio_onnx`,
  `latency_ratio_torch_vs_onnx` (each the mean over robots of the per-robot ratio) with
  `*_range` ([min, max] over robots); `teacher_return_mean`, `student_return_mean` (mean
  over robots), `return_ratio` (student / teacher of those means; null unless the
  teacher's is > 0); `sets[]` (`name`, `n_robots`, `seen_in_training` (true when both
  checkpoints were trained on every robot of the set, false when on none, null otherwise),
  `teacher_return_mean`, `student_return_mean`, `return_ratio`), one per robot set;
  `macs_checks_agree` (bool) and `macs_disagreements` (list of "robot model" strings).
- `reference` (null without `--reference`): the paper-sized architectures with random
  weights on a generated 12-limb robot: `robot`, `seed`, `n_limbs`, `n_actuators`,
  `teacher` and `student` each {`config`, `params`, `params_analytic`, `macs`,
  `macs_check`, `onnx_file`, `onnx_bytes`, `latency_us`} (teacher: `torch`, `onnx`;
  student: `torch`, `onnx`, `numpy`), `student.widths`, `student.hypernet_params`,
  `student.bake_ms`; `params_ratio`, `macs_ratio`, `latency_ratio_onnx`,
  `latency_ratio_torch_vs_onnx`; `paper_layout` (the paper's MLP padded to 24 outputs:
  `widths` "204->256->256->24", `student_params`, `student_macs`, `params_ratio`,
  `macs_ratio`); `paper` (`params_ratio` [6, 14], `flops_ratio` [67, 160]).
- `plots`: file names of the PNGs written next to the report.
"""
