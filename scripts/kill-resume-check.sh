#!/usr/bin/env bash
# Trains the same attacker twice on TRAIN: once uninterrupted, once interrupted with SIGNAL
# (KILL by default; INT is what Ctrl-C sends) KILL_AFTER seconds into training and resumed; prints
# both metrics.csv files (they should differ only in the seconds column).
# Usage: [SIGNAL=INT] scripts/kill-resume-check.sh TRAIN OUT [STEPS=60] [KILL_AFTER=70]
set -euo pipefail
train="$1"; out="$2"; steps="${3:-60}"; kill_after="${4:-70}"; signal="${SIGNAL:-KILL}"
bin="${FEATLEAK:-target/release/featleak}"
rm -rf "$out/a" "$out/b"; mkdir -p "$out"
args=(attack train --descriptor sift --images "$train" --size 128 --steps "$steps")
"$bin" "${args[@]}" --out "$out/a" > "$out/a.log" 2>&1
# Job control on: without it, bash starts background commands with SIGINT ignored.
set -m
"$bin" "${args[@]}" --out "$out/b" > "$out/b.log" 2>&1 &
pid=$!
set +m
until grep -q "^training" "$out/b.log" 2>/dev/null; do sleep 1; done
sleep "$kill_after"
kill -s "$signal" "$pid"
status=0; wait "$pid" || status=$?
if [ "$status" -eq 0 ]; then
  echo "error: the run finished before SIG$signal; raise STEPS or lower KILL_AFTER" >&2
  exit 1
fi
echo "exit status $status after SIG$signal"
if [ ! -f "$out/b/checkpoint/state.json" ]; then
  echo "error: SIG$signal came before the first checkpoint (one a minute); raise KILL_AFTER" >&2
  exit 1
fi
echo "SIG$signal at checkpoint: $(grep -o '"step": *[0-9]*' "$out/b/checkpoint/state.json")"
"$bin" "${args[@]}" --out "$out/b" --resume >> "$out/b.log" 2>&1
echo "uninterrupted:"; cat "$out/a/metrics.csv"
echo "killed and resumed:"; cat "$out/b/metrics.csv"
# Every column but the seconds (3rd) must match.
if diff <(cut -d, -f1,2,4- "$out/a/metrics.csv") <(cut -d, -f1,2,4- "$out/b/metrics.csv"); then
  echo "same metrics: the resume was exact"
else
  echo "error: the resumed run's metrics differ from the uninterrupted run's" >&2
  exit 1
fi
