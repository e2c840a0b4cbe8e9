#!/usr/bin/env bash
# The exact commands that produced the shipped checkpoints in hd_deploy/assets/checkpoints.
# Run from the repository root with ../shared/unimal present. Each step resumes if its
# run folder already exists (rerun the script after an interruption).
set -euo pipefail
UNIMAL=${UNIMAL:-../shared/unimal}
STEPS=${STEPS:-5000000}

# 20 generated robots join the 100 UNIMAL training robots (deterministic: seeds 0-19).
hd-generate training/robots --count 20 --seed 0

# Teacher: CPU-sized transformer, PPO, seed 0.
if [ -f training/teacher/run.json ]; then
  hd-train --out training/teacher --resume --steps "$STEPS"
else
  hd-train "$UNIMAL/train" training/robots --out training/teacher --steps "$STEPS" --seed 0
fi

# Student: HyperNetConfig.small(), behaviour cloning on the same robots.
if [ -f training/student/run.json ]; then
  hd-distill --teacher training/teacher/checkpoint --out training/student --resume
else
  hd-distill "$UNIMAL/train" training/robots --teacher training/teacher/checkpoint \
    --out training/student --samples 4000 --epochs 30 --seed 0
fi

# Evaluation (the numbers in the model card), 3 episodes per robot, seed 0.
for policy in teacher student; do
  for split in train test; do
    hd-eval "training/$policy/checkpoint" --robots "$UNIMAL/$split" --episodes 3 --seed 0 \
      --json "training/eval_${policy}_${split}.json"
  done
done
