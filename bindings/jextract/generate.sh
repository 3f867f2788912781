#!/usr/bin/env bash
# Regenerates bindings/src/main/java/dev/jnext/bindings/{cuda,cublaslt} with jextract.
# These are the exact command lines that produced the committed sources (see ../README.md for versions).
#   JEXTRACT      a jextract launcher (built from github:openjdk/jextract; not part of this repository)
#   CUDA_INCLUDE  CUDA 13.0 toolkit include dir holding cuda.h (default /usr/local/cuda/include)
#   BLAS_INCLUDE  include dir holding cublasLt.h + cublas_api.h of CUDA 13.0 (on the GPU host: /usr/local/cuda/include)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../src/main/java"
JEXTRACT=${JEXTRACT:-jextract}
CUDA_INCLUDE=${CUDA_INCLUDE:-/usr/local/cuda/include}
BLAS_INCLUDE=${BLAS_INCLUDE:-$CUDA_INCLUDE}
rm -rf "$out/dev/jnext/bindings/cuda" "$out/dev/jnext/bindings/cublaslt"

"$JEXTRACT" --target-package dev.jnext.bindings.cuda --header-class-name CudaDriver \
  --output "$out" -l :libcuda.so.1 @"$here/cuda.symbols" \
  -I "$CUDA_INCLUDE" "$CUDA_INCLUDE/cuda.h"

"$JEXTRACT" --target-package dev.jnext.bindings.cublaslt --header-class-name CublasLt \
  --output "$out" -l :libcublasLt.so.13 @"$here/cublaslt.symbols" \
  -I "$BLAS_INCLUDE" -I "$CUDA_INCLUDE" "$BLAS_INCLUDE/cublasLt.h"
