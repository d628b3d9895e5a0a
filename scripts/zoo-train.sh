#!/usr/bin/env bash
# Trains (or continues) one attacker of the zoo with the default recipe on the training photos,
# exports its network in f16 (the form the zoo bundles), scores exactly those weights on the 200
# BSDS500 test photos against each photo's mean colour, and writes its card and weights into
# attack/zoo/ (tools/zoo_card.py).
#
#   scripts/zoo-train.sh DATA RUNS NAME BUDGET [DEVICE]
#
# DATA is the data folder (../shared/data); RUNS keeps the run folders; NAME is sift, freak,
# sosnet, xfeat, disk or aliked (desc+pos) or pos-only (SIFT keypoint positions). BUDGET is the run's total
# budget in minutes (`70`) or in optimiser steps (`steps=6560`): rerun with the same RUNS and a
# larger BUDGET to resume the run exactly and train on. DEVICE is cpu (default) or wgpu.
# Needs `cargo build --release` (with `--features wgpu` for a GPU).
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,12p "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/training-photos.sh
. "$here/training-photos.sh"
data=$(cd "$1" && pwd)
runs=$2 name=$3 device=${5:-cpu}
case $4 in
  steps=*) budget=(--steps "${4#steps=}") ;;
  *) budget=(--minutes "$4") ;;
esac
bin=${FEATLEAK_BIN:-target/release/featleak}
case $name in
  sift | freak | sosnet | xfeat | disk | aliked) recipe=(--descriptor "$name" --threat desc+pos) ;;
  pos-only) recipe=(--descriptor sift --threat pos-only) ;;
  *) echo "NAME must be sift, freak, sosnet, xfeat, disk, aliked or pos-only" >&2; exit 2 ;;
esac
victims=$data/photos/bsds500/test
run=$runs/$name
training_photos "$data" "$runs/train-photos"

if [ -e "$run/run.json" ]; then
  "$bin" attack train --out "$run" --resume "${budget[@]}" --device "$device"
else
  "$bin" attack train "${recipe[@]}" --images "$runs/train-photos" --val-images "$victims" \
    "${budget[@]}" --seed 0 --out "$run" --device "$device"
fi
rm -rf "$runs/$name-held-out" "$runs/$name-baselines" "$runs/$name-f16"
"$bin" attack export --run "$run" --out "$runs/$name-f16"
"$bin" attack reconstruct --run "$runs/$name-f16" --images "$victims" --out "$runs/$name-held-out" --device "$device"
"$bin" attack baselines --run "$run" --images "$victims" --out "$runs/$name-baselines"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
case $device in
  cpu) machine="$cpu, $(nproc) threads" ;;
  *) machine="$device on $(hostname)" ;;
esac
python3 "$here/../tools/zoo_card.py" "$runs/$name-f16" "$name" "$runs/$name-held-out/metrics.json" \
  "$runs/$name-baselines/mean-colour.json" --images "BSDS500 test" --device "$machine"
