#!/usr/bin/env bash
# The exact commands that produced the shipped checkpoints in hd_deploy/assets/checkpoints.
# Run from the repository root with ../shared/unimal present. Every step resumes or skips
# finished work when its run folder already exists (rerun the script after an interruption).
#   WORKERS=16 bash scripts/ship_defaults.sh     # on a machine with many cores (and a GPU)
# The shipped teacher is step 1b's (teacher_cpu_mb4: step 1's teacher_gpu continued by PPO on
# the 2-core CPU), the shipped student step 2h's (student_mb4_ep: step 2f's
# student_mut_dagger, distilled from teacher_gpu, distilled again from teacher_cpu_mb4 on the
# same 932 robots in steps 2g and 2h); the model card compares the pair with the one it
# replaced (teacher_gpu, student_mut_dagger). Older pairs (a teacher cloned from 132
# per-robot experts, and its student) are in this file's git history.
set -euo pipefail
UNIMAL=${UNIMAL:-../shared/unimal}
WORKERS=${WORKERS:-2}
resume() { if [ -f "$1/run.json" ]; then echo --resume; fi; }
# A run folder as the repository holds it (its records, no optimiser state; the shipped
# weights are in hd_deploy/assets/checkpoints, earlier ones in git history) is a finished
# step, skipped; a run interrupted on this machine holds trainer_state.pt and resumes.
finished() {
  if [ -f "$1/checkpoint/checkpoint.json" ] && [ ! -f "$1/checkpoint/trainer_state.pt" ]; then
    echo "$1: finished (the repository's record), skipped"
    return 0
  fi
  return 1
}
compact() {  # float16 weights (half the file; float32 again on load), when they are here
  if [ -f "$1/checkpoint/model.safetensors" ]; then
    python -c "from hd_deploy.models.checkpoint import compact_checkpoint as c; c('$1/checkpoint')"
  fi
}

# 1. Teacher: MetaMorph's PPO on the paper-sized transformer and batch (--reference: 81,920
#    steps an iteration, 8 epochs, minibatch 5120, in 256 environments x 320 steps), from
#    scratch, on the 100 UNIMAL training robots, zero-shot evaluation on UNIMAL test every 20
#    iterations. Ran on the `device` tool's machine (one H200, 14 physics workers) for 8
#    minutes, through `RUN=training/teacher_gpu MINUTES=8 WORKERS=14 bash
#    scripts/train_gpu.sh`, which runs this command with --max-minutes 8 (a 2-core CPU
#    manages about 30 samples/s of it; training/teacher_gpu/README.md has the continuation).
if [ ! -f training/teacher_gpu/run.json ]; then
  hd-train "$UNIMAL/train" --eval-robots "$UNIMAL/test" --reference --n-envs 256 \
    --rollout-steps 320 --eval-every 20 --out training/teacher_gpu --workers "$WORKERS" \
    --max-minutes 8
fi
#    The run predates hd-train recording where it ran (checkpoint.json's extra.device and
#    workers, which the model card reads); training/teacher_gpu/README.md names the machine.
chmod u+w training/teacher_gpu/checkpoint/checkpoint.json  # read-only as the device returned it
python - <<'EOF'
import json, pathlib
p = pathlib.Path("training/teacher_gpu/checkpoint/checkpoint.json")
meta = json.loads(p.read_text())
meta["extra"].setdefault("device", "cuda (NVIDIA H200)")
meta["extra"].setdefault("workers", 14)
p.write_text(json.dumps(meta, indent=2) + "\n")
EOF

# 1b. The shipped teacher: teacher_gpu continued by PPO on the 2-core CPU with the paper's
#     model and settings and a quarter of its batch (32 environments x 640 steps, MetaMorph's
#     KL stop at 0.05), on the 100 UNIMAL training robots and the 32 generated ones; float32
#     to iteration 30, bfloat16 matmuls after; resumed across sessions (--max-minutes), to
#     3.93M steps (iteration 192). training/teacher_cpu_mb4/README.md has every command. It
#     started from the package's teacher of then, teacher_gpu (weights in git history:
#     git show 388e6e6:hd_deploy/assets/checkpoints/teacher/model.safetensors; the run's
#     run.json records that checkpoint's record). Its weights ship in the package, so the step
#     is skipped here. The run went on in training/teacher_cpu_mb4b (a copy at iteration 192),
#     parked at 979 with its weights and trainer state in git history; continue it with
#       git restore --source=0f4019a -- training/teacher_cpu_mb4b/checkpoint
#       hd-train --resume --out training/teacher_cpu_mb4b --max-minutes M
hd-generate training/generated --count 32 --seed 1000 --stand-steps 0  # every draw, as then
if [ ! -f training/teacher_cpu_mb4/run.json ]; then
  mkdir -p training/teacher_gpu/checkpoint
  git show 388e6e6:hd_deploy/assets/checkpoints/teacher/model.safetensors \
    > training/teacher_gpu/checkpoint/model.safetensors
  hd-train "$UNIMAL/train" training/generated --out training/teacher_cpu_mb4 \
    --init training/teacher_gpu/checkpoint --reference --critic-warmup 1 \
    --update-normalizer --target-kl 0.05 --kl-stop epoch --n-envs 32 --rollout-steps 640 \
    --eval-robots "$UNIMAL/test" --eval-every 5 --precision bf16 --workers "$WORKERS" \
    --max-minutes 310  # the run's 5.1 hours; it had reached iteration 192 (3,932,160 steps)
fi

# 2. Student: HyperNetConfig.small() from scratch on the 100 UNIMAL training robots and a
#    fixed draw of 100 of the 1000 train_mutate robots (the next 200 of the draw are the
#    held-out mutate200 set of the evaluation), one DAgger round. Ran on the 2-core CPU.
#    The draws of train_mutate: mutate300.txt (the first 100 train, the last 200 are held
#    out) and mutate_extra300.txt (step 2c's, disjoint from the first).
python3 - "$UNIMAL/train_mutate" <<'EOF'
import pathlib, random, sys
xs = sorted(str(p) for p in pathlib.Path(sys.argv[1]).glob("*.xml"))
first = sorted(random.Random(0).sample(xs, 300))
extra = sorted(random.Random(1).sample(sorted(set(xs) - set(first)), 300))
for name, draw in (("mutate300", first), ("mutate_extra300", extra)):
    pathlib.Path(f"training/{name}.txt").write_text("\n".join(draw) + "\n")
EOF
# Steps 2 to 2d are skipped as a whole once student_ref (2d), which all later students start
# from, is finished: the repository keeps its records, not those of the runs before it (git
# history does: git checkout 795522d -- training/student_gpu training/student_gpu2).
if ! finished training/student_ref; then
  mapfile -t mutate100 < <(head -100 training/mutate300.txt)
  finished training/student_gpu ||
  hd-distill "$UNIMAL/train" "${mutate100[@]}" --teacher training/teacher_gpu/checkpoint \
    --out training/student_gpu --samples 4000 --start-samples 2000 --start-steps 150 \
    --epochs 40 --dagger 1 --workers "$WORKERS" --device cpu --seed 0 \
    $(resume training/student_gpu)

  # 2b. Student, continued (--init): the 32 generated robots of hd_deploy/assets/robots/seen's
  #     family join (hd-bench's bundled seen set: the student was distilled on them, the
  #     teacher labelled them zero-shot). scripts/extend_data.py seeds the run with
  #     student_gpu's data (its DAgger round included) plus teacher data on the new robots;
  #     then 30 epochs, one more DAgger round, peak lr 5e-4. Ran on the 2-core CPU.
  hd-generate training/generated --count 32 --seed 1000 --stand-steps 0  # every draw, as then
  if [ ! -f training/student_gpu2/robots.txt ]; then
    python scripts/extend_data.py training/student_gpu training/generated \
      --out training/student_gpu2 --workers "$WORKERS"
  fi
  mapfile -t robots < training/student_gpu2/robots.txt
  finished training/student_gpu2 ||
  hd-distill "${robots[@]}" --teacher training/teacher_gpu/checkpoint \
    --init training/student_gpu/checkpoint --out training/student_gpu2 --samples 4000 \
    --start-samples 2000 --start-steps 150 --epochs 30 --dagger 1 --lr 5e-4 \
    --workers "$WORKERS" --device cpu --seed 1 $(resume training/student_gpu2)

  # 2c. Student, continued again: 300 more train_mutate robots (a second fixed draw, disjoint
  #     from the first 300, so mutate200 stays held out): 400 of the paper's 1000 in all.
  #     student_gpu2's data (its DAgger rounds included) plus teacher data on the new robots;
  #     then 24 epochs, peak lr 5e-4, no DAgger round. Ran on the 2-core CPU.
  if [ ! -f training/student_gpu3/robots.txt ]; then
    mapfile -t extra < training/mutate_extra300.txt
    python scripts/extend_data.py training/student_gpu2 "${extra[@]}" \
      --out training/student_gpu3 --workers "$WORKERS"
  fi
  mapfile -t robots < training/student_gpu3/robots.txt
  finished training/student_gpu3 ||
  hd-distill "${robots[@]}" --teacher training/teacher_gpu/checkpoint \
    --init training/student_gpu2/checkpoint --out training/student_gpu3 --samples 4000 \
    --start-samples 2000 --start-steps 150 --epochs 24 --lr 5e-4 \
    --workers "$WORKERS" --device cpu --seed 2 $(resume training/student_gpu3)

  # 2d. The student shipped before: the paper-sized hypernetwork (--reference: context
  #     d 128, base MLP hidden 256), from scratch on student_gpu3's robots and data (--data,
  #     no new teacher rollouts): 18 epochs, peak lr 1e-3. Ran on the 2-core CPU (71 minutes).
  #     A resumed run already holds its data (hd-distill refuses --data with --resume).
  start=(--data training/student_gpu3/data.npz)
  if [ -f training/student_ref/run.json ]; then start=(--resume); fi
  finished training/student_ref ||
  hd-distill "${robots[@]}" --teacher training/teacher_gpu/checkpoint \
    --reference --out training/student_ref \
    --samples 4000 --start-samples 2000 --start-steps 150 --epochs 18 --lr 1e-3 \
    --workers "$WORKERS" --device cpu --seed 3 "${start[@]}"
  #     Its weights are stored in float16 (half the file, under 20 MB; float32 again on load):
  #     the evaluation below and the shipped student are this rounded model.
  compact training/student_ref
fi

# 2e. student_ref continued (--init) on 932 robots, the paper's
#     distillation setting short of the held-out 200: the 100 UNIMAL training robots, the 800
#     train_mutate robots outside mutate200, the 32 generated robots; fresh teacher data
#     (2000 samples per robot and 1000 from 150-step openings: 2.80M samples, 35 minutes),
#     then 12 epochs at peak lr 5e-4 (15 minutes), no DAgger round. Ran on the 2-core CPU.
#     student_ref's weights are in git history (e24549c:hd_deploy/assets/checkpoints/student).
if [ ! -f training/student_mut/robots.txt ]; then  # the robot order of the run
  mkdir -p training/student_mut
  python3 - "$UNIMAL" > training/student_mut/robots.txt <<'PY'
import pathlib, sys
unimal = pathlib.Path(sys.argv[1])
held = {pathlib.Path(m).name for m in pathlib.Path("training/mutate300.txt").read_text().split()[-200:]}
mutate = sorted(str(p) for p in (unimal / "train_mutate").glob("*.xml"))
train = sorted(str(p) for p in (unimal / "train").glob("*.xml"))
generated = sorted(str(p) for p in pathlib.Path("training/generated").glob("*.xml"))
print("\n".join(train + [m for m in mutate if pathlib.Path(m).name not in held] + generated))
PY
fi
mapfile -t robots < training/student_mut/robots.txt
finished training/student_mut ||
hd-distill "${robots[@]}" --teacher training/teacher_gpu/checkpoint \
  --init training/student_ref/checkpoint --out training/student_mut \
  --samples 2000 --start-samples 1000 --start-steps 150 --epochs 12 --lr 5e-4 \
  --workers "$WORKERS" --device cpu --seed 4 $(resume training/student_mut)
compact training/student_mut

# 2f. The shipped student: student_mut with one DAgger round (the student acts, the teacher
#     labels: 2.80M more samples, about 42 minutes), on student_mut's robots and data (--data):
#     4 epochs at peak lr 2.5e-4, two before the round and two after (49 minutes in all).
#     Ran on the 2-core CPU.
start=(--data training/student_mut/data.npz)
if [ -f training/student_mut_dagger/run.json ]; then start=(--resume); fi
finished training/student_mut_dagger ||
hd-distill "${robots[@]}" --teacher training/teacher_gpu/checkpoint \
  --init training/student_mut/checkpoint --out training/student_mut_dagger \
  --samples 2000 --start-samples 1000 --start-steps 150 --epochs 4 --dagger 1 --lr 2.5e-4 \
  --workers "$WORKERS" --device cpu --seed 5 "${start[@]}"
compact training/student_mut_dagger

# 2g. student_mut_dagger (shipped before; weights from git history) distilled again, from
#     teacher_cpu_mb4, on the same 932 robots: fresh teacher data (1500 samples per robot and
#     750 from 150-step openings: 2.10M samples, 44 minutes), 3 epochs at peak lr 5e-4 (of a
#     planned 6 with a DAgger round between). The new teacher's actions are larger (RMS 1.26
#     against teacher_gpu's 0.76) and the loss was still falling fast, so the run was stopped
#     when its DAgger round began (its checkpoint is epoch 3's, written then; the round was
#     not collected), and trained on in step 2h for the session's time. Ran on the 2-core CPU.
if [ ! -f training/student_mut_dagger/checkpoint/model.safetensors ]; then
  git show 8928e7f:hd_deploy/assets/checkpoints/student/model.safetensors \
    > training/student_mut_dagger/checkpoint/model.safetensors
fi
if [ ! -f training/student_mb4/checkpoint/checkpoint.json ]; then
  hd-distill "${robots[@]}" --teacher training/teacher_cpu_mb4/checkpoint \
    --init training/student_mut_dagger/checkpoint --out training/student_mb4 \
    --samples 1500 --start-samples 750 --start-steps 150 --epochs 6 --dagger 1 --lr 5e-4 \
    --workers "$WORKERS" --device cpu --seed 6 &
  pid=$!
  until python3 -c "import json, sys; p = 'training/student_mb4/checkpoint/checkpoint.json'
sys.exit(json.load(open(p))['extra']['epoch'] != 3)" 2>/dev/null; do sleep 10; done
  kill -INT $pid; sleep 2; kill -INT $pid; wait $pid || true  # twice: stop at once
fi

# 2h. The shipped student: step 2g's student trained on on its samples (--data, no new
#     teacher rollouts), 10 epochs at peak lr 5e-4, no DAgger round. Ran on the 2-core CPU.
start=(--data training/student_mb4/data.npz)
if [ -f training/student_mb4_ep/run.json ]; then start=(--resume); fi
finished training/student_mb4_ep ||
hd-distill "${robots[@]}" --teacher training/teacher_cpu_mb4/checkpoint \
  --init training/student_mb4/checkpoint --out training/student_mb4_ep --epochs 10 \
  --lr 5e-4 --workers "$WORKERS" --device cpu --seed 7 "${start[@]}"
compact training/student_mb4_ep

# 3. Evaluation (the numbers in the model card): 3 episodes per robot at seeds 0-2 on UNIMAL
#    train and test, 1 episode at seeds 0-2 on the 200 held-out train_mutate robots; the
#    replaced pair (teacher_gpu with student_mut_dagger) measured alike; the open-loop
#    imitation error of each student against its own teacher on train and unseen robots.
#    (Evaluations of the earlier students are in git history, 795522d:training/.)
ev() {  # RUN NAME ROBOTS... [hd-eval options]
  local run=$1 name=$2
  shift 2
  [ -f "training/eval_${run}_${name}.json" ] || hd-eval "training/$run/checkpoint" "$@" \
    --workers "$WORKERS" --json "training/eval_${run}_${name}.json"
}
mapfile -t mutate200 < <(tail -200 training/mutate300.txt)
held_out=()
for f in "${mutate200[@]}"; do held_out+=(--robots "$f"); done
for run in teacher_gpu student_mut_dagger teacher_cpu_mb4 student_mb4_ep; do
  for split in train test; do
    ev "$run" "$split" --robots "$UNIMAL/$split" --episodes 3 --seed 0
    for seed in 1 2; do
      ev "$run" "${split}_seed$seed" --robots "$UNIMAL/$split" --episodes 3 --seed $seed
    done
  done
  ev "$run" mutate200 "${held_out[@]}" --episodes 1 --seed 0
  for seed in 1 2; do
    ev "$run" "mutate200_seed$seed" "${held_out[@]}" --episodes 1 --seed $seed
  done
done
gaps=(student_mut_dagger:teacher_gpu student_mb4_ep:teacher_cpu_mb4)
for pair in "${gaps[@]}"; do
  run=${pair%%:*} teacher=${pair#*:}
  [ -f "training/gap_$run.json" ] || python scripts/imitation_gap.py "training/$run/checkpoint" \
    --teacher "training/$teacher/checkpoint" --robots "$UNIMAL/train" --robots "$UNIMAL/test" \
    --workers "$WORKERS" --json "training/gap_$run.json"
done
# Each unseen robot's distance to the nearest robot the teacher trained on (the card's
# "Which unseen robots" line and distance column; seconds, no episodes).
python scripts/nearest_robots.py training/eval_teacher_cpu_mb4_test{,_seed1,_seed2}.json \
  --robots "$UNIMAL/test" --train "$UNIMAL/train" --train training/generated \
  --json training/nearest_teacher_cpu_mb4_test.json

# 4. Ship: weights and JSON only (no optimiser state), model card, golden outputs. The
#    repository keeps the weights once, in the package: a run folder that no longer holds
#    them ships its checkpoint.json only (copy them back to rerun an evaluation above).
for pair in teacher:teacher_cpu_mb4 student:student_mb4_ep; do
  kind=${pair%%:*} run=${pair#*:}
  mkdir -p "hd_deploy/assets/checkpoints/$kind"
  for f in model.safetensors checkpoint.json robot_contexts.safetensors; do
    if [ -f "training/$run/checkpoint/$f" ]; then
      cp "training/$run/checkpoint/$f" "hd_deploy/assets/checkpoints/$kind/"
    fi
  done
done
# The training robots' contexts, for hd-export's distance check (runs written before
# checkpoints recorded them; a run trained since writes its own, copied above)
python scripts/add_contexts.py hd_deploy/assets/checkpoints/teacher "$UNIMAL/train" \
  training/generated
python scripts/add_contexts.py hd_deploy/assets/checkpoints/student "$UNIMAL/train" \
  "$UNIMAL/train_mutate" training/generated
python scripts/model_card.py --teacher teacher_cpu_mb4 --student student_mb4_ep \
  --previous teacher_gpu:student_mut_dagger
python scripts/golden.py
