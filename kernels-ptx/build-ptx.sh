#!/usr/bin/env bash
# Compiles every kernels-ptx/src/main/cuda/*.cu to PTX for compute_90 (Hopper); *_sm90a.cu for compute_90a.
# Called by Maven (generate-resources); usable by hand: build-ptx.sh SRC_DIR OUT_DIR [nvcc|none]
# "none" (mvn -Pcpu-only) builds no kernels: the jar then holds only NO-KERNELS.txt saying so.
set -euo pipefail
src=${1:?source dir}; out=${2:?output dir}; mode=${3:-nvcc}
marker="$out/NO-KERNELS.txt"
# builds before the kernels became the module dev.jnext.kernels.ptx wrote the PTX one folder up (dev/jnext/kernels/):
# a stale copy there would put the runtime's package dev.jnext.kernels into this jar too (a split package)
if [ "$(basename "$out")" = ptx ]; then rm -f "$(dirname "$out")"/*.ptx "$(dirname "$out")"/NO-KERNELS.txt; fi
if [ "$mode" = none ]; then
  mkdir -p "$out"
  rm -f "$out"/*.ptx
  echo "This jnext was built with mvn -Pcpu-only: no CUDA kernels, so only the CPU backend works." > "$marker"
  exit 0
fi
[ "$mode" = nvcc ] || { echo "ERROR: build-ptx.sh: mode must be nvcc or none, got '$mode'" >&2; exit 1; }
rm -f "$marker"
NVCC=${NVCC:-}
if [ -n "$NVCC" ] && ! [ -x "$NVCC" ]; then
  echo "ERROR: NVCC=$NVCC is not an executable nvcc." >&2
  exit 1
fi
if [ -z "$NVCC" ]; then
  if command -v nvcc >/dev/null 2>&1; then NVCC=$(command -v nvcc)
  elif [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc
  else
    echo "ERROR: nvcc not found. jnext compiles its CUDA kernels to PTX during the build." >&2
    echo "       Install the CUDA 13 toolkit (nvcc) or set NVCC=/path/to/nvcc," >&2
    echo "       or build for the CPU only, without GPU kernels: mvn -Pcpu-only ..." >&2
    exit 1
  fi
fi
mkdir -p "$out"
shopt -s nullglob
files=("$src"/*.cu)
[ ${#files[@]} -gt 0 ] || { echo "ERROR: no .cu files in $src" >&2; exit 1; }
for f in "${files[@]}"; do
  name=$(basename "$f" .cu)
  dst="$out/$name.ptx"
  # rebuild only when the source (or a shared header) is newer than the PTX
  if [ -f "$dst" ] && [ "$dst" -nt "$f" ] && [ -z "$(find "$src" -name '*.cuh' -newer "$dst" -print -quit)" ]; then continue; fi
  # *_sm90a.cu use Hopper-only instructions (wgmma): PTX for compute_90a, which the driver JITs for H100/H200 only
  arch=compute_90
  case "$name" in *_sm90a) arch=compute_90a ;; esac
  echo "nvcc: $name.cu -> $name.ptx ($arch)"
  "$NVCC" -ptx -arch=$arch -std=c++17 -O3 -lineinfo -I"$src" -o "$dst" "$f"
done
