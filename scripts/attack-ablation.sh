#!/usr/bin/env bash
# The attacker recipe's ablation: one SIFT attacker (desc+pos, 128² from 256² features unless the
# arm says otherwise) per arm, each alone with the same wall-clock budget, seed and data, trained
# on the training photos (BSDS500 train+val, Urban100, Sun-Hays80) and validated on the 200
# BSDS500 test photos; then each arm's last validation row and the mean-colour / mean-image
# baselines on the same photos.
#
#   scripts/attack-ablation.sh DATA OUT [MINUTES] [ARM...]
#
# DATA is the data folder (../shared/data), OUT a new folder; MINUTES defaults to 10. Arms are
# named below; all run by default. SEED (environment, default 0) seeds every arm; STEPS
# (environment) trains each arm for that many steps instead of MINUTES. Needs
# `cargo build --release` first. Run it on an otherwise idle machine: the budget is wall-clock time.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,13p "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/training-photos.sh
. "$here/training-photos.sh"
data=$(cd "$1" && pwd)
out=$2
minutes=${3:-10}
shift $(( $# < 3 ? $# : 3 ))
bin=${FEATLEAK_BIN:-target/release/featleak}

declare -A recipe=(
  [sparse]="--input sparse"
  [nearest-fill]="--input nearest-fill"
  [sparse+gradient]="--input sparse --gradient-loss 1"
  [nearest-fill+gradient]="--input nearest-fill --gradient-loss 1"
  [mlp]="--input mlp"
  [mlp-k7]="--input mlp-k7"
  [features-512]="--input sparse --feature-size 512"
  [full-share]="--input sparse --train-share 1"
  [global-context]="--input sparse --global-context"
  [mse]="--input sparse --mse-loss 5"
)
arms=("$@")
[ ${#arms[@]} -gt 0 ] ||
  arms=(sparse nearest-fill sparse+gradient nearest-fill+gradient mlp mlp-k7 features-512
    full-share global-context mse)

budget="--minutes $minutes"
[ -z "${STEPS:-}" ] || budget="--steps $STEPS"

training_photos "$data" "$out/train-photos"
victims=$data/photos/bsds500/test

for arm in "${arms[@]}"; do
  [ -n "${recipe[$arm]+x}" ] || { echo "unknown arm $arm (${!recipe[*]})" >&2; exit 2; }
  if [ -e "$out/$arm/run.json" ]; then
    echo "== $arm: already trained"
    continue
  fi
  echo "== $arm: ${recipe[$arm]}"
  # shellcheck disable=SC2086
  "$bin" attack train --descriptor sift --threat desc+pos --images "$out/train-photos" \
    --val-images "$victims" $budget --seed "${SEED:-0}" --out "$out/$arm" ${recipe[$arm]}
done

first=${arms[0]}
[ -e "$out/baselines/mean-colour.json" ] ||
  "$bin" attack baselines --run "$out/$first" --images "$victims" --out "$out/baselines"

echo
echo "| arm | steps | s/step | val PSNR (dB) | val SSIM |"
echo "|---|---|---|---|---|"
for arm in "${arms[@]}"; do
  python3 - "$out/$arm" "$arm" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/metrics.csv")))
last = rows[-1]
step = int(last["step"])
secs = float(last["seconds"])
print(f"| {sys.argv[2]} | {step} | {secs / step:.2f} | {float(last['val_psnr']):.2f} | {float(last['val_ssim']):.3f} |")
PY
done
python3 - "$out/baselines" <<'PY'
import json, sys
for name in ("mean-colour", "mean-image"):
    m = json.load(open(f"{sys.argv[1]}/{name}.json"))["mean"]
    print(f"| baseline: {name} | – | – | {m['psnr']:.2f} | {m['ssim']:.3f} |")
PY
