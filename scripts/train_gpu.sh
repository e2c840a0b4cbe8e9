#!/usr/bin/env bash
# Paper-sized teacher cloned from the experts, and the student distilled from it, on a
# machine with a GPU and many cores (it ran on one H100 with 16 cores; see the model card).
# Run from the repository root with ../shared/unimal present, after hd-experts (see
# ship_defaults.sh). Each step resumes its run folder, so a rerun continues.
#   WORKERS=16 bash scripts/train_gpu.sh
set -euo pipefail
UNIMAL=${UNIMAL:-../shared/unimal}
WORKERS=${WORKERS:-16}
DEVICE=${DEVICE:-auto}
TEACHER=${TEACHER:-training/teacher_ref}
STUDENT=${STUDENT:-training/student_ref}
SIZE=${SIZE:---reference}            # --tiny for a smoke test of this script
CLONE_EPOCHS=${CLONE_EPOCHS:-60}
DISTILL_EPOCHS=${DISTILL_EPOCHS:-80}
EPISODES=${EPISODES:-3}              # 0: skip the evaluations
resume() { if [ -f "$1/run.json" ]; then echo --resume; fi; }

# Teacher: every expert in training/experts (UNIMAL train robots and generated robots),
# behaviour cloning plus two DAgger rounds (teacher drives, experts label).
hd-clone training/experts --out "$TEACHER" $SIZE --epochs "$CLONE_EPOCHS" --dagger 2 \
  --workers "$WORKERS" --device "$DEVICE" --lr 5e-4 --seed 0 $(resume "$TEACHER")

# Student: HyperNetConfig.small() on the UNIMAL train robots plus the generated robots that
# have an expert (so the teacher was taught them), three DAgger rounds (student drives).
extra=()
for f in training/generated/*.xml; do
  if [ -f "training/experts/$(basename "$f" .xml).json" ]; then extra+=("$f"); fi
done
student_size=""
if [ "$SIZE" = "--tiny" ]; then student_size=--tiny; fi
hd-distill "$UNIMAL/train" "${extra[@]}" --teacher "$TEACHER/checkpoint" --out "$STUDENT" \
  $student_size --epochs "$DISTILL_EPOCHS" --dagger 3 --workers "$WORKERS" --device "$DEVICE" \
  --seed 0 $(resume "$STUDENT")

# Returns on the UNIMAL splits (the model card's numbers come from the same command).
if [ "$EPISODES" -eq 0 ]; then exit 0; fi
for run in "$TEACHER" "$STUDENT"; do
  for split in train test; do
    hd-eval "$run/checkpoint" --robots "$UNIMAL/$split" --episodes "$EPISODES" --seed 0 \
      --workers "$WORKERS" --json "training/eval_$(basename "$run")_${split}.json"
  done
done
