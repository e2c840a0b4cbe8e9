#!/usr/bin/env bash
# The exact commands that produced the shipped checkpoints in hd_deploy/assets/checkpoints.
# Run from the repository root with ../shared/unimal present. Every step resumes or skips
# finished work when its run folder already exists (rerun the script after an interruption).
#   WORKERS=16 bash scripts/ship_defaults.sh     # on a machine with many cores (and a GPU)
set -euo pipefail
UNIMAL=${UNIMAL:-../shared/unimal}
WORKERS=${WORKERS:-2}
resume() { if [ -f "$1/run.json" ]; then echo --resume; fi; }

# 1. Experts: one 64-64 MLP per robot, plain PPO, 300k steps (a minute and a half per robot
#    per core), for the 100 UNIMAL training robots and 32 generated robots. Ran on the
#    2-core CPU, two robots at a time.
hd-experts "$UNIMAL/train" --out training/experts --seed 0 --workers "$WORKERS"
hd-generate training/generated --count 32 --seed 1000
hd-experts training/generated --out training/experts --seed 0 --workers "$WORKERS"

# 2. Teacher: the paper-sized transformer (critic kept small: cloning trains none), cloned
#    from all 132 experts with two DAgger rounds (teacher drives, experts label). Ran on one
#    H100 with 16 rollout workers in 10 minutes; on a 2-core CPU expect many hours.
hd-clone training/experts --out training/teacher_ref --reference --epochs 60 --dagger 2 \
  --workers "$WORKERS" --lr 5e-4 --seed 0 $(resume training/teacher_ref)

# 3. Student (steps 3-3c ran before hd-distill had a learning-rate warm-up: --warmup 0 keeps
#    them as they ran). HyperNetConfig.small() on the robots the teacher was taught (UNIMAL train and
#    the generated robots with an expert), three DAgger rounds (student drives, teacher
#    labels), 40 epochs per round. Ran on the 2-core CPU. (The shipped run started with
#    --epochs 60 and a constant learning rate, was stopped at epoch 15 and resumed with 160
#    epochs and the cosine schedule; this line gives a close, not bit-identical, student.)
extra=()
for f in training/generated/*.xml; do
  if [ -f "training/experts/$(basename "$f" .xml).json" ]; then extra+=("$f"); fi
done
hd-distill "$UNIMAL/train" "${extra[@]}" --teacher training/teacher_ref/checkpoint \
  --out training/student_ref --samples 4000 --epochs 160 --dagger 3 --workers "$WORKERS" \
  --warmup 0 --device cpu --seed 0 $(resume training/student_ref)

# 3b. Student, continued (--init: student_ref's weights): 96 more generated robots that only
#     the teacher labels (no experts) join the 132, then three DAgger rounds, 30 epochs per
#     round, peak lr 5e-4. Ran on the 2-core CPU.
hd-generate training/generated_d --count 96 --seed 2000
hd-distill "$UNIMAL/train" "${extra[@]}" training/generated_d \
  --teacher training/teacher_ref/checkpoint --init training/student_ref/checkpoint \
  --out training/student_ref2 --samples 4000 --epochs 120 --dagger 3 --lr 5e-4 \
  --warmup 0 --workers "$WORKERS" --device cpu --seed 1 $(resume training/student_ref2)

# 3c/3d. One more DAgger round on top of a finished run (--init), starting from its collected
#     data (copied into the new run folder: a run reuses the data.npz it finds), 20 epochs per
#     round at peak lr 2e-4. Each ran on the 2-core CPU in about 35 min. 3c ran before
#     hd-distill had its learning-rate warm-up (--warmup 0); 3d has the default 3 epochs.
next_round() {  # FROM NEW SEED [more hd-distill options]
  local from=$1 new=$2 seed=$3
  shift 3
  if [ ! -f "training/$new/run.json" ]; then
    mkdir -p "training/$new" && cp "training/$from/data.npz" "training/$new/"
  fi
  hd-distill "$UNIMAL/train" "${extra[@]}" training/generated_d \
    --teacher training/teacher_ref/checkpoint --init "training/$from/checkpoint" \
    --out "training/$new" --samples 4000 --epochs 40 --dagger 1 --lr 2e-4 \
    --workers "$WORKERS" --device cpu --seed "$seed" "$@" $(resume "training/$new")
}
next_round student_ref2 student_ref3 2 --warmup 0
next_round student_ref3 student_ref4 3

# 3e. One more DAgger round on top of student_ref4 with fresh data (no data.npz carried over)
#     and, in every collection, 2000 more samples per robot from 150-step episode openings
#     (--start-samples): the student missed the take-off of some gaits and stood still.
hd-distill "$UNIMAL/train" "${extra[@]}" training/generated_d \
  --teacher training/teacher_ref/checkpoint --init training/student_ref4/checkpoint \
  --out training/student_ref5 --samples 4000 --start-samples 2000 --start-steps 150 \
  --epochs 50 --dagger 1 --lr 2e-4 --workers "$WORKERS" --device cpu --seed 4 \
  $(resume training/student_ref5)
# 3f. One more round on top of student_ref5 (its data carried over), openings as in 3e.
next_round student_ref5 student_ref6 5 --start-samples 2000 --start-steps 150

# 4. Evaluation (the numbers in the model card), 3 episodes per robot, seed 0.
for run in teacher_ref student_ref student_ref2 student_ref3 student_ref4 student_ref5 student_ref6; do
  for split in train test; do
    hd-eval "training/$run/checkpoint" --robots "$UNIMAL/$split" --episodes 3 --seed 0 \
      --workers "$WORKERS" --json "training/eval_${run}_${split}.json"
  done
done
# Evaluation seeds 1 and 2, teacher and the students from student_ref3 on (the shipped one
# was chosen on seeds 0-2 of the training robots); seeds 3 and 4 on the training robots as a
# check the choice did not see.
for run in teacher_ref student_ref3 student_ref4 student_ref5 student_ref6; do
  for split in train test; do
    for seed in 1 2; do
      hd-eval "training/$run/checkpoint" --robots "$UNIMAL/$split" --episodes 3 --seed $seed \
        --workers "$WORKERS" --json "training/eval_${run}_${split}_seed${seed}.json"
    done
  done
done
for run in teacher_ref student_ref5 student_ref6; do
  for seed in 3 4; do
    hd-eval "training/$run/checkpoint" --robots "$UNIMAL/train" --episodes 3 --seed $seed \
      --workers "$WORKERS" --json "training/eval_${run}_train_seed${seed}.json"
  done
done
# Open-loop imitation error of the students, train against unseen robots.
for run in student_ref3 student_ref4 student_ref6; do
  python scripts/imitation_gap.py "training/$run/checkpoint" \
    --teacher training/teacher_ref/checkpoint --robots "$UNIMAL/train" --robots "$UNIMAL/test" \
    --workers "$WORKERS" --json "training/gap_${run}.json"
done
# Does regularising the hypernetwork help on robots it never saw? Fresh students on
# student_ref3's data, 20 UNIMAL training robots held out (about 15 min on 2 cores).
python scripts/generalisation_sweep.py training/student_ref3 \
  --teacher training/teacher_ref/checkpoint --unseen "$UNIMAL/test" \
  --setting base: --setting dropout0.5:context_dropout=0.5 \
  --setting noise0.3:context_noise=0.3 --setting wd0.1:weight_decay=0.1 \
  --epochs 40 --eval-every 5 --out training/sweep

# 5. Ship: weights and JSON only (no optimiser state), model card, golden outputs.
mkdir -p hd_deploy/assets/checkpoints/{teacher,student}
cp training/teacher_ref/checkpoint/{model.safetensors,checkpoint.json} \
  hd_deploy/assets/checkpoints/teacher/
cp training/student_ref6/checkpoint/{model.safetensors,checkpoint.json} \
  hd_deploy/assets/checkpoints/student/
# The fingerprints of the training robots (these runs predate the trainers recording them;
# checkpoint.json changes, the weights and the checkpoint hashes do not).
python scripts/add_fingerprints.py hd_deploy/assets/checkpoints/teacher "$UNIMAL/train" \
  training/generated
python scripts/add_fingerprints.py hd_deploy/assets/checkpoints/student "$UNIMAL/train" \
  training/generated training/generated_d
python scripts/model_card.py --teacher teacher_ref --student student_ref6
python scripts/golden.py

# Earlier runs kept in training/ for comparison (commands in this file's git history):
#   teacher (PPO, hd-train, 3.3M steps, train return ~190), student (its distillation);
#   teacher_clone (small transformer cloned from 76 experts on the CPU, train return 713),
#   student_clone, student_clone2 (its distillations).
