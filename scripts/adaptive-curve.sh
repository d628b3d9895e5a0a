#!/usr/bin/env bash
# Is the adaptive attacker of a sweep converged? Reruns one sweep configuration with the adaptive
# fine-tune's step budget doubled each time, and prints each cell's adaptive SSIM and rank-1
# identification against the budget (issue #20: doubling the budget should change SSIM by less
# than 0.01).
#
#   scripts/adaptive-curve.sh SWEEP.toml OUT STEPS...        e.g. ... 30 60 120 240
#
# Each budget runs in OUT/steps-N (a normal sweep folder, resumable); the configuration's
# `[adaptive] steps = …` line is replaced, everything else kept. Needs `cargo build --release`.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,10p "$0" >&2; exit 2; }
config=$1 out=$2
shift 2
bin=${FEATLEAK_BIN:-target/release/featleak}
grep -q '^steps = ' "$config" || { echo "$config has no '[adaptive] steps = N' line" >&2; exit 2; }
mkdir -p "$out"
for steps in "$@"; do
  dir=$out/steps-$steps
  mkdir -p "$dir"
  sed "s/^steps = .*/steps = $steps/" "$config" > "$dir/sweep.toml"
  "$bin" mitigate sweep --config "$dir/sweep.toml" --out "$dir/sweep" > "$dir/log.txt"
done
python3 - "$out" "$@" <<'PY'
import json
import sys

out, budgets = sys.argv[1], sys.argv[2:]
cells = {}
for steps in budgets:
    for c in json.load(open(f"{out}/steps-{steps}/sweep/results.json"))["cells"]:
        name = f"{c['descriptor']} {c['defence']} {c['strength']:g}" if c["defence"] != "none" \
            else f"{c['descriptor']} {c['strategy']} keep {c['keep']:g}"
        cells.setdefault(name, {})[steps] = (c["ssim_adaptive"], c.get("identification_adaptive"))
print("| cell | " + " | ".join(f"{s} steps: SSIM / rank-1" for s in budgets) + " |")
print("|---|" + "---|" * len(budgets))
for name, by in cells.items():
    row = [f"{by[s][0]:.3f} / {by[s][1]:.3f}" if s in by else "–" for s in budgets]
    print(f"| {name} | " + " | ".join(row) + " |")
PY
