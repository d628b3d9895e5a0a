#!/usr/bin/env bash
# The training-step benchmark of BENCHMARKS.md (issue #22), featleak against PyTorch side by side,
# with every SIMD dispatch on both sides held to one instruction set, so that a machine with
# AVX-512 also measures the AVX2-only path most x86-64 CPUs take.
#
#   scripts/bench-train-step-isa.sh avx2|native [ROUNDS] [SIZES]     e.g. avx2 3 128,256
#
# native: the normal release build (gemm's AVX-512 kernels, burn-flex's SIMD through macerator,
#         both picked at run time), PyTorch as it dispatches.
# avx2:   HEAD exported to target/isa-avx2/src with gemm's `x86-v4` feature removed from the
#         workspace manifest and macerator (burn-flex's SIMD) patched to a copy without its
#         `avx512` feature, built into target/isa-avx2/target (a cold build: 10–20 minutes on 2
#         cores) and checked to hold no AVX-512 instruction; PyTorch with
#         ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 and MKL_ENABLE_INSTRUCTIONS=AVX2; glibc
#         held to AVX2 on both sides (GLIBC_TUNABLES).
# The default attack network (widths 16–256, 129 input channels, batch 4, sparse first layer) and
# PyTorch's same UNet with a dense input, 2 threads each, alternating ROUNDS times (default 3);
# prints each run's lines. Needs .venv with torch (tools/requirements.txt).
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,19p "$0" >&2; exit 2; }
isa=$1 rounds=${2:-3} sizes=${3:-128,256}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-$root/.venv/bin/python}
case $isa in
  native)
    cargo build --release --example bench_train_step -p featleak-attack >&2
    bench=$root/target/release/examples/bench_train_step
    bench_env=()
    torch_env=()
    ;;
  avx2)
    work=$root/target/isa-avx2
    rm -rf "$work/src" && mkdir -p "$work/src"
    git archive HEAD | tar -x -C "$work/src"
    version=$(grep -A1 '^name = "macerator"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
    registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"macerator-$version" | head -1)
    [ -f "$registry/Cargo.toml" ] || { echo "macerator $version is not in cargo's registry" >&2; exit 1; }
    rm -rf "$work/macerator" && cp -r "$registry" "$work/macerator"
    # macerator's default features without `avx512`: its dispatch then stops at AVX2 (x86-v3).
    "$python" - "$work/macerator/Cargo.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s2 = re.sub(r'(\ndefault = \[[^\]]*?)\s*"avx512",', r'\1', s, count=1)
assert s2 != s, "macerator's default features have no avx512"
open(p, "w").write(s2)
PY
    sed -i 's/features = \["std", "x86-v4"\]/features = ["std"]/' "$work/src/Cargo.toml"
    grep -q '"x86-v4"' "$work/src/Cargo.toml" && { echo "gemm's x86-v4 is still on" >&2; exit 1; }
    printf '\n[patch.crates-io]\nmacerator = { path = "%s" }\n' "$work/macerator" >> "$work/src/Cargo.toml"
    (cd "$work/src" && CARGO_TARGET_DIR=$work/target cargo build --release --offline \
      --example bench_train_step -p featleak-attack >&2)
    bench=$work/target/release/examples/bench_train_step
    # No AVX-512 instruction may be left for any run-time dispatch to pick.
    zmm=$(objdump -d --no-show-raw-insn "$bench" | grep -c zmm || true)
    [ "$zmm" = 0 ] || { echo "$bench still holds $zmm AVX-512 (zmm) instructions" >&2; exit 1; }
    # glibc picks its string functions (memset, memcpy) by CPU too: hold both sides to AVX2.
    glibc=GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD
    bench_env=("$glibc")
    torch_env=("$glibc" ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
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
