#!/usr/bin/env bash
# The exact commands that produced the shipped checkpoints in hd_deploy/assets/checkpoints.
# Run from the repository root with ../shared/unimal present. Every step resumes or skips
# finished work when its run folder already exists (rerun the script after an interruption).
set -euo pipefail
UNIMAL=${UNIMAL:-../shared/unimal}

# Teacher, expert route: one MLP expert per UNIMAL training robot (plain PPO, 300k steps,
# two robots at a time), then behaviour cloning with one DAgger round into the CPU-sized
# transformer. The cloning uses the experts present in training/experts when it starts
# (the model card says how many).
hd-experts "$UNIMAL/train" --out training/experts --seed 0
if [ -f training/teacher_clone/run.json ]; then
  hd-clone training/experts --out training/teacher_clone --resume
else
  hd-clone training/experts --out training/teacher_clone --seed 0
fi

# Student: HyperNetConfig.small(), behaviour cloning of the teacher with DAgger rounds
# (student drives, teacher labels). student_clone is a first run (60 epochs, 1 round);
# the shipped student_clone2 starts from its data (teacher rollouts + one DAgger round)
# and adds two more rounds over 75 epochs.
if [ -f training/student_clone/run.json ]; then
  hd-distill --teacher training/teacher_clone/checkpoint --out training/student_clone --resume
else
  hd-distill "$UNIMAL/train" --teacher training/teacher_clone/checkpoint \
    --out training/student_clone --samples 4000 --epochs 60 --dagger 1 --seed 0
fi
if [ -f training/student_clone2/run.json ]; then
  hd-distill --teacher training/teacher_clone/checkpoint --out training/student_clone2 --resume
else
  mkdir -p training/student_clone2
  cp training/student_clone/data.npz training/student_clone2/data.npz
  hd-distill "$UNIMAL/train" --teacher training/teacher_clone/checkpoint \
    --out training/student_clone2 --samples 4000 --epochs 75 --dagger 2 --seed 1
fi

# Evaluation (the numbers in the model card), 3 episodes per robot, seed 0.
for run in teacher_clone student_clone student_clone2; do
  for split in train test; do
    hd-eval "training/$run/checkpoint" --robots "$UNIMAL/$split" --episodes 3 \
      --seed 0 --json "training/eval_${run}_${split}.json"
  done
done

# Ship: weights and JSON only (no optimiser state), model card, golden outputs.
mkdir -p hd_deploy/assets/checkpoints/{teacher,student}
cp training/teacher_clone/checkpoint/{model.safetensors,checkpoint.json} \
  hd_deploy/assets/checkpoints/teacher/
cp training/student_clone2/checkpoint/{model.safetensors,checkpoint.json} \
  hd_deploy/assets/checkpoints/student/
python scripts/model_card.py --teacher teacher_clone --student student_clone2
python scripts/golden.py

# The PPO route (MetaMorph's recipe) is kept in training/teacher and training/student:
#   hd-generate training/robots --count 20 --seed 0
#   hd-train "$UNIMAL/train" training/robots --out training/teacher --steps 5000000 --seed 0
#   hd-distill "$UNIMAL/train" training/robots --teacher training/teacher/checkpoint \
#     --out training/student --samples 4000 --epochs 30 --seed 0
# It stopped at 3.3M steps with a train return of about 190 (see git history of the card).
