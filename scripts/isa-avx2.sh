# Sourced by the benchmark scripts (issue #22): build featleak and run it and its peers with every
# SIMD dispatch held to AVX2, so that a machine with AVX-512 also measures the AVX2-only path most
# x86-64 CPUs take.
#
#   avx2_build ROOT CARGO_BUILD_ARGS...   exports ROOT's HEAD to ROOT/target/isa-avx2/src with
#       gemm's `x86-v4` feature removed from the workspace manifest, featleak's Hamming kernel
#       without its AVX-512 branch, and macerator (burn-flex's SIMD), matrixmultiply and crc32fast
#       patched to copies without their AVX-512 kernels (below), builds it into
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
  local work=$root/target/isa-avx2
  rm -rf "$work/src" && mkdir -p "$work/src"
  git -C "$root" archive HEAD | tar -x -C "$work/src"
  sed -i 's/features = \["std", "x86-v4"\]/features = ["std"]/' "$work/src/Cargo.toml"
  if grep -q '"x86-v4"' "$work/src/Cargo.toml"; then echo "gemm's x86-v4 is still on" >&2; return 1; fi
  # featleak's own Hamming kernel: its AVX-512 branch never taken (and so never compiled).
  sed -i 's/if std::arch::is_x86_feature_detected!("avx512vpopcntdq")/if false \&\& std::arch::is_x86_feature_detected!("avx512vpopcntdq")/' \
    "$work/src/eval/src/hamming.rs"
  grep -q 'if false && std::arch::is_x86_feature_detected!("avx512vpopcntdq")' "$work/src/eval/src/hamming.rs" ||
    { echo "eval/src/hamming.rs: its AVX-512 dispatch was not found" >&2; return 1; }
  printf '\n[patch.crates-io]\n' >> "$work/src/Cargo.toml"
  # burn-flex's SIMD (macerator) and ndarray's and nalgebra's matrix product (matrixmultiply):
  # their default `avx512` feature off, so their dispatch stops at AVX2. crc32fast: its
  # VPCLMULQDQ (AVX-512 and AVX2) kernels off, leaving PCLMULQDQ.
  avx2_patched_crate "$root" macerator 'drop-default-feature avx512'
  avx2_patched_crate "$root" matrixmultiply 'drop-default-feature avx512'
  avx2_patched_crate "$root" crc32fast 'drop-build-cfg stable_vpclmulqdq'
  (cd "$work/src" && CARGO_TARGET_DIR=$work/target cargo build --release --offline "$@" >&2)
  AVX2_BIN_DIR=$work/target/release
  # No AVX-512 instruction may be left for any run-time dispatch to pick.
  local bin zmm
  for bin in "$AVX2_BIN_DIR"/featleak "$AVX2_BIN_DIR"/examples/bench_*; do
    # Cargo's hashed copies (name-HASH) may be stale builds; the plain names are this one.
    case ${bin##*/} in *-*) continue ;; esac
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    zmm=$(objdump -d --no-show-raw-insn "$bin" | grep -c zmm || true)
    [ "$zmm" = 0 ] || { echo "$bin still holds $zmm AVX-512 (zmm) instructions" >&2; return 1; }
  done
}

# avx2_patched_crate ROOT NAME 'drop-default-feature F' | 'drop-build-cfg C': a copy of the crate
# ROOT's Cargo.lock pins, in target/isa-avx2/NAME, with the change made, patched into the build.
avx2_patched_crate() {
  local root=$1 name=$2 change=$3 work=$1/target/isa-avx2 version registry
  version=$(grep -A1 "^name = \"$name\"$" "$root/Cargo.lock" | sed -n 's/^version = "\(.*\)"$/\1/p' | head -1)
  registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$name-$version" | head -1)
  [ -f "$registry/Cargo.toml" ] || { echo "$name $version is not in cargo's registry" >&2; return 1; }
  rm -rf "${work:?}/$name" && cp -r "$registry" "$work/$name"
  "${PYTHON:-python3}" - "$work/$name" $change <<'PY'
import re, sys
folder, change, what = sys.argv[1:]
if change == "drop-default-feature":
    p = f"{folder}/Cargo.toml"
    s = open(p).read()
    s2 = re.sub(r'(\ndefault = \[[^\]]*?)\s*"' + re.escape(what) + r'",?', r"\1", s, count=1)
else:
    p = f"{folder}/build.rs"
    s = open(p).read()
    s2 = s.replace(f'println!("cargo:rustc-cfg={what}");', "")
assert s2 != s, f"{p}: nothing to change for {change} {what}"
open(p, "w").write(s2)
PY
  printf '%s = { path = "%s" }\n' "$name" "$work/$name" >> "$work/src/Cargo.toml"
}

avx2_glibc=GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD
avx2_opencv=OPENCV_CPU_DISABLE=AVX512F,AVX512-COMMON,AVX512-SKX,AVX512-CLX,AVX512-CNL,AVX512-ICL
AVX2_FEATLEAK_ENV=("$avx2_glibc" "$avx2_opencv")
AVX2_PEER_ENV=("$avx2_glibc" "$avx2_opencv" ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
  MKL_ENABLE_INSTRUCTIONS=AVX2 "NPY_DISABLE_CPU_FEATURES=AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL")
