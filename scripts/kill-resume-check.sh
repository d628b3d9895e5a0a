#!/usr/bin/env bash
# Trains the same attacker twice on TRAIN: once uninterrupted, once killed with SIGKILL
# KILL_AFTER seconds into training and resumed; prints both metrics.csv files (they should differ
# only in the seconds column).
# Usage: scripts/kill-resume-check.sh TRAIN OUT [STEPS=60] [KILL_AFTER=70]
set -euo pipefail
train="$1"; out="$2"; steps="${3:-60}"; kill_after="${4:-70}"
bin="${FEATLEAK:-target/release/featleak}"
rm -rf "$out/a" "$out/b"; mkdir -p "$out"
args=(attack train --descriptor sift --images "$train" --size 128 --steps "$steps")
"$bin" "${args[@]}" --out "$out/a" > "$out/a.log" 2>&1
"$bin" "${args[@]}" --out "$out/b" > "$out/b.log" 2>&1 &
pid=$!
until grep -q "^training" "$out/b.log" 2>/dev/null; do sleep 1; done
sleep "$kill_after"
kill -9 "$pid" && wait "$pid" || true
echo "killed at checkpoint: $(grep -o '"step": *[0-9]*' "$out/b/checkpoint/state.json")"
"$bin" "${args[@]}" --out "$out/b" --resume >> "$out/b.log" 2>&1
echo "uninterrupted:"; cat "$out/a/metrics.csv"
echo "killed and resumed:"; cat "$out/b/metrics.csv"
