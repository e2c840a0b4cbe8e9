#!/usr/bin/env bash
# Fill what a GPU call of scripts/train_gpu.sh carries, and check that the call fits what the
# `device` tool sends (64 MiB: the files git tracks, untracked ones it does not ignore, and
# the carried paths). The machine has torch but no package index and no ../shared:
#   .whl/                wheels it lacks: mujoco, mujoco-core and glfw, the versions here
#   .gpu/unimal/         the UNIMAL train and test robots (MJCF files only)
#   training/generated/  the 32 generated training robots (made here when missing)
# and, to start a run from a trained one (--init), that run's checkpoint folder (CARRY_RUN).
# Then, as its last line says: a device run of scripts/train_gpu.sh with those carried.
#   bash scripts/prepare_gpu.sh
#   CARRY_RUN=training/teacher_paper/checkpoint bash scripts/prepare_gpu.sh
set -euo pipefail
UNIMAL=${UNIMAL:-../shared/unimal}
CARRY_RUN=${CARRY_RUN:-}
LIMIT=$((64 * 1024 * 1024))
cd "$(git rev-parse --show-toplevel)"

[ -d "$UNIMAL/train" ] && [ -d "$UNIMAL/test" ] || {
  echo "error: no UNIMAL robots at $UNIMAL (set UNIMAL=...)" >&2
  exit 2
}
if [ -n "$CARRY_RUN" ] && [ ! -f "$CARRY_RUN/model.safetensors" ]; then
  echo "error: $CARRY_RUN holds no model.safetensors" >&2
  exit 2
fi

# the versions installed here, so that the GPU machine steps the same physics
pins=$(python3 -c '
from importlib.metadata import PackageNotFoundError, version
pins = []
for name in ("mujoco", "mujoco-core", "glfw"):
    try:
        pins.append(f"{name}=={version(name)}")
    except PackageNotFoundError:  # mujoco before 4.0 has no separate core
        pass
print(" ".join(pins))')
rm -rf .whl && mkdir -p .whl
# shellcheck disable=SC2086  # pins is a list of requirements
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $pins

rm -rf .gpu && mkdir -p .gpu/unimal/train .gpu/unimal/test
cp "$UNIMAL"/train/*.xml .gpu/unimal/train/
cp "$UNIMAL"/test/*.xml .gpu/unimal/test/

if [ ! -d training/generated ]; then
  hd-generate training/generated --count 32 --seed 1000 --stand-steps 0
fi

carry=(.whl .gpu training/generated)
if [ -n "$CARRY_RUN" ]; then  # the weights, not the optimiser state (too large to send)
  for f in model.safetensors robot_contexts.safetensors; do
    [ -f "$CARRY_RUN/$f" ] && carry+=("$CARRY_RUN/$f")
  done
fi
sent=$( { git ls-files -z --cached --others --exclude-standard; find "${carry[@]}" -type f -print0; } |
  xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
awk -v s="$sent" -v c="${carry[*]}" 'BEGIN {printf "travels: %.1f MiB of 64 MiB (carry: %s)\n", s / 1048576, c}'
if [ "$sent" -gt "$LIMIT" ]; then
  echo "error: more than the device tool sends; commit or carry less" >&2
  exit 1
fi
echo "device run: RUN=training/teacher_paper MINUTES=8 WORKERS=14 bash scripts/train_gpu.sh" \
  "(carry: ${carry[*]})"
