# Sourced by the benchmark scripts (issue #22): build featleak and run it and its peers with every
# SIMD dispatch held to AVX2, so that a machine with AVX-512 also measures the AVX2-only path most
# x86-64 CPUs take.
#
#   avx2_build ROOT CARGO_BUILD_ARGS...   exports ROOT's HEAD to ROOT/target/isa-avx2/src with
#       gemm's `x86-v4` feature removed from the workspace manifest and macerator (burn-flex's
#       SIMD) patched to a copy without its `avx512` feature, builds it into
#       ROOT/target/isa-avx2/target (the first time a cold build: 10–20 minutes on 2 cores) and
#       checks that no binary it built holds an AVX-512 instruction. Sets AVX2_BIN_DIR to the
#       release folder.
#   AVX2_FEATLEAK_ENV, AVX2_PEER_ENV   `env` arguments for featleak's binaries and for the Python
#       peers: glibc's string functions held to AVX2 on both sides; PyTorch (ATen, oneDNN, MKL),
#       OpenCV and NumPy held to AVX2 on the peers' side, and OpenCV on featleak's too (it links
#       the same library for SIFT).
avx2_build() {
  local root=$1
  shift
  local work=$root/target/isa-avx2 python=${PYTHON:-python3}
  rm -rf "$work/src" && mkdir -p "$work/src"
  git -C "$root" archive HEAD | tar -x -C "$work/src"
  local version registry
  version=$(grep -A1 '^name = "macerator"$' "$root/Cargo.lock" | sed -n 's/^version = "\(.*\)"$/\1/p')
  registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"macerator-$version" | head -1)
  [ -f "$registry/Cargo.toml" ] || { echo "macerator $version is not in cargo's registry" >&2; return 1; }
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
  if grep -q '"x86-v4"' "$work/src/Cargo.toml"; then echo "gemm's x86-v4 is still on" >&2; return 1; fi
  printf '\n[patch.crates-io]\nmacerator = { path = "%s" }\n' "$work/macerator" >> "$work/src/Cargo.toml"
  (cd "$work/src" && CARGO_TARGET_DIR=$work/target cargo build --release --offline "$@" >&2)
  AVX2_BIN_DIR=$work/target/release
  # No AVX-512 instruction may be left for any run-time dispatch to pick.
  local bin zmm
  for bin in "$AVX2_BIN_DIR"/featleak "$AVX2_BIN_DIR"/examples/bench_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    case $bin in *.d) continue ;; esac
    zmm=$(objdump -d --no-show-raw-insn "$bin" | grep -c zmm || true)
    [ "$zmm" = 0 ] || { echo "$bin still holds $zmm AVX-512 (zmm) instructions" >&2; return 1; }
  done
}

avx2_glibc=GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD
avx2_opencv=OPENCV_CPU_DISABLE=AVX512F,AVX512_COMMON,AVX512_SKX,AVX512_KNL,AVX512_KNM,AVX512_CNL,AVX512_CLX,AVX512_ICL
AVX2_FEATLEAK_ENV=("$avx2_glibc" "$avx2_opencv")
AVX2_PEER_ENV=("$avx2_glibc" "$avx2_opencv" ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
  MKL_ENABLE_INSTRUCTIONS=AVX2 "NPY_DISABLE_CPU_FEATURES=AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL")
