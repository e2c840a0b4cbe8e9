#!/usr/bin/env bash
# Train a PPO teacher run (or continue it) on a machine with a GPU and many cores, for a
# fixed wall time. The learner and the acting forward run on the GPU; physics runs on
# WORKERS CPU processes. Whatever happens, the run folder is copied to $OUT (when set) at
# the end, so the next call resumes where this one stopped: put it back in training/ (the
# optimiser state joined) and commit it, since the machine keeps nothing between calls that
# the working tree does not carry (a run folder missing its run.json is refused, not
# overwritten).
#
# The GPU machine (the `device` tool) has torch but no package index and no ../shared:
# `bash scripts/prepare_gpu.sh` fills what travels (wheels in .whl, the UNIMAL robots in
# .gpu/unimal, copied to $UNIMAL there so that run.json names the same robot paths as here,
# training/generated) and checks that the call fits the 64 MiB the tool sends. Then
#   RUN=training/teacher_paper MINUTES=8 WORKERS=14 bash scripts/train_gpu.sh
# (device run, carry: .whl .gpu training/generated). A second call in the same session
# resumes on the warm machine, which keeps the run's ignored weights and optimiser state,
# once the returned run.json, progress.csv and checkpoint/checkpoint.json are back in RUN
# here (files git does not ignore travel with each call; the machine drops them). A later session's
# fresh machine has neither, and the optimiser state is too large to send with the rest:
# continue in a new folder from the weights, carrying RUN/checkpoint/model.safetensors and
# robot_contexts.safetensors (CARRY_RUN for prepare_gpu.sh), with
#   NEW_ARGS="training/generated --init RUN/checkpoint --reference --critic-warmup 3 ..."
# Rehearse on a CPU with a short wall time and a small batch:
#   RUN=/tmp/run MINUTES=0.5 WORKERS=2 DEVICE=cpu WHEELS= \
#     NEW_ARGS="--reference --n-envs 16 --rollout-steps 320 --eval-every 2" bash scripts/train_gpu.sh
set -uo pipefail
RUN=${RUN:-training/teacher_paper}
MINUTES=${MINUTES:-8}           # leave the rest of a 10-minute call for set-up and copy-back
WORKERS=${WORKERS:-14}
DEVICE=${DEVICE:-cuda}
WHEELS=${WHEELS-.whl}           # empty: install nothing (the CPU rehearsal)
UNIMAL=${UNIMAL:-../shared/unimal}
PRECISION=${PRECISION:-}        # bf16: the learner's matmuls in bfloat16 (new or resumed run)
# a new run: the HyperDistill authors' teacher (ModuMorph's "MetaMorph*": the paper-sized
# transformer without a learned embedding per limb slot, an update stopped once its KL
# reaches 0.05) and PPO batch (81,920 steps an iteration), in more, shorter environments
# than MetaMorph's 32 x 2560 so that many physics workers are busy; the UNIMAL training
# robots and the 32 generated ones
NEW_ARGS=${NEW_ARGS:-training/generated --reference --no-pos-embedding --target-kl 0.05 \
--n-envs 256 --rollout-steps 320 --eval-every 20}

copy_back() {
  [ -n "${OUT:-}" ] && [ -d "$RUN" ] || return 0
  mkdir -p "$OUT/run/checkpoint"
  for f in run.json progress.csv learning_curve.png; do
    [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/run/"
  done
  [ -d "$RUN/checkpoint" ] || return 0
  cp "$RUN"/checkpoint/checkpoint.json "$RUN"/checkpoint/model.safetensors "$OUT/run/checkpoint/"
  [ -f "$RUN/checkpoint/robot_contexts.safetensors" ] &&
    cp "$RUN/checkpoint/robot_contexts.safetensors" "$OUT/run/checkpoint/"
  # files come back at most 16 MB each: the optimiser state (26 MB for the paper-sized
  # teacher) in parts; here, join them: cat trainer_state.pt.part-* > trainer_state.pt
  if [ -f "$RUN/checkpoint/trainer_state.pt" ]; then
    split -b 15M "$RUN/checkpoint/trainer_state.pt" "$OUT/run/checkpoint/trainer_state.pt.part-"
  fi
  return 0
}
trap copy_back EXIT

if [ -n "$WHEELS" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # the package, without installing it
if [ ! -d "$UNIMAL/train" ] && [ -d .gpu/unimal/train ]; then
  mkdir -p "$UNIMAL" && cp -r .gpu/unimal/. "$UNIMAL"/ || UNIMAL=.gpu/unimal
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
nproc

hd_train() {
  python3 -c 'import sys; from hd_deploy.cli.train import train_app; sys.argv[0] = "hd-train"; train_app()' "$@"
}
args=(--out "$RUN" --workers "$WORKERS" --device "$DEVICE" --max-minutes "$MINUTES")
[ -n "$PRECISION" ] && args+=(--precision "$PRECISION")
if [ -f "$RUN/run.json" ]; then
  hd_train --resume "${args[@]}"
else
  # shellcheck disable=SC2086  # NEW_ARGS is a list of options
  hd_train "$UNIMAL/train" --eval-robots "$UNIMAL/test" $NEW_ARGS "${args[@]}"
fi
status=$?
[ -f "$RUN/progress.csv" ] && python3 - "$RUN/progress.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows if len(rows) <= 10 else rows[:2] + rows[-8:]:
    print(" ".join(f"{k}={r.get(k, '')}" for k in ("iteration", "env_steps", "wall_s",
          "steps_per_s", "return_robots", "return_recent", "eval_return", "approx_kl",
          "clip_frac", "explained_var")))
EOF
exit $status
