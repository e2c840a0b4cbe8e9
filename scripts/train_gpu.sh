#!/usr/bin/env bash
# Continue the PPO teacher run on a machine with a GPU and many cores, for a fixed wall time.
# The learner and the acting forward run on the GPU; physics runs on WORKERS CPU processes.
# The machine has no package index: wheels for what it lacks (mujoco, fvcore, gymnasium and
# their pure-Python dependencies) travel in $WHEELS (fill it here with
#   pip download mujoco fvcore gymnasium safetensors typer rich onnx onnxruntime -d wheels
# ), torch is the machine's own. The run folder travels with the repository and comes back
# (copied to $OUT when set), so the next call resumes where this one stopped.
#   RUN=training/teacher_ppo MINUTES=8 WORKERS=14 bash scripts/train_gpu.sh
# Rehearse on a CPU with a copy of the run and a short wall time:
#   RUN=/tmp/run MINUTES=0.5 WORKERS=2 DEVICE=cpu WHEELS= bash scripts/train_gpu.sh
set -euo pipefail
RUN=${RUN:-training/teacher_ppo}
MINUTES=${MINUTES:-8}           # leave the rest of a 10-minute call for set-up and copy-back
WORKERS=${WORKERS:-14}
DEVICE=${DEVICE:-cuda}
WHEELS=${WHEELS-wheels}     # empty: install nothing (the CPU rehearsal)
UNIMAL=${UNIMAL:-../shared/unimal}

if [ -n "$WHEELS" ]; then
  python -m pip install -q --no-index --find-links "$WHEELS" mujoco fvcore gymnasium \
    safetensors typer rich onnx onnxruntime matplotlib
  python -m pip install -q --no-deps --no-build-isolation -e .
fi
args=(--out "$RUN" --workers "$WORKERS" --device "$DEVICE" --max-minutes "$MINUTES")
if [ -f "$RUN/run.json" ]; then
  hd-train --resume "${args[@]}"
else
  hd-train "$UNIMAL/train" --eval-robots "$UNIMAL/test" "${args[@]}"
fi
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT/run/checkpoint"
  cp "$RUN"/run.json "$RUN"/progress.csv "$RUN"/learning_curve.png "$OUT/run/"
  cp "$RUN"/checkpoint/* "$OUT/run/checkpoint/"
fi
