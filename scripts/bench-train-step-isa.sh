#!/usr/bin/env bash
# The training-step benchmark of BENCHMARKS.md (issue #22), featleak against PyTorch side by side,
# with every SIMD dispatch on both sides held to one instruction set, so that a machine with
# AVX-512 also measures the AVX2-only path most x86-64 CPUs take.
#
#   scripts/bench-train-step-isa.sh avx2|native [ROUNDS] [SIZES]     e.g. avx2 3 128,256
#
# native: the normal release build (gemm's AVX-512 kernels, burn-flex's SIMD through macerator,
#         both picked at run time), PyTorch as it dispatches.
# avx2:   HEAD built with every SIMD dispatch held to AVX2 and PyTorch, glibc, OpenCV and NumPy
#         held to AVX2 at run time (scripts/isa-avx2.sh says how).
# The default attack network (widths 16–256, 129 input channels, batch 4, sparse first layer) and
# PyTorch's same UNet with a dense input, 2 threads each, alternating ROUNDS times (default 3);
# prints each run's lines. Needs .venv with torch (tools/requirements.txt).
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,14p "$0" >&2; exit 2; }
isa=$1 rounds=${2:-3} sizes=${3:-128,256}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/isa-avx2.sh
python=${PYTHON:-$root/.venv/bin/python}
case $isa in
  native)
    cargo build --release --example bench_train_step -p featleak-attack >&2
    bench=$root/target/release/examples/bench_train_step
    bench_env=()
    torch_env=()
    ;;
  avx2)
    PYTHON=$python avx2_build "$root" --example bench_train_step -p featleak-attack
    bench=$AVX2_BIN_DIR/examples/bench_train_step
    bench_env=("${AVX2_FEATLEAK_ENV[@]}")
    torch_env=("${AVX2_PEER_ENV[@]}")
    ;;
  *) echo "ISA must be avx2 or native" >&2; exit 2 ;;
esac
for round in $(seq "$rounds"); do
  echo "== round $round: featleak ($isa)"
  env "${bench_env[@]}" RAYON_NUM_THREADS=2 "$bench" --sizes "$sizes" --modes sparse --steps 5 --base-width 16 --in-channels 129
  echo "== round $round: PyTorch ($isa)"
  env "${torch_env[@]}" "$python" tools/bench_unet_torch.py --sizes "$sizes" --steps 8 --threads 2 \
    --base-width 16 --in-channels 129
done
