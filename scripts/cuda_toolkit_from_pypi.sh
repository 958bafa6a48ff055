#!/usr/bin/env bash
# Builds the CUDA binary on a machine WITHOUT a CUDA installation (no nvcc, no driver), from
# NVIDIA's PyPI wheels: the way gpo's CUDA build was made and checked (BENCHMARKS.md, "GPU").
# With a normal CUDA toolkit installed, skip this: `cargo build --release -p gpo --features cuda`.
#
# Usage: scripts/cuda_toolkit_from_pypi.sh DIR [COMPUTE_CAP]
#   DIR          where the toolkit goes (about 1.5 GB); the build goes to DIR/target
#   COMPUTE_CAP  the GPU's compute capability without the dot (default 90: H100/H200)
# The binary is DIR/target/release/gpo. On the GPU machine it needs the driver's libcuda and
# CUDA 13's libcublas, libcublasLt, libcurand and libcudart on LD_LIBRARY_PATH.
set -euo pipefail
dir=$(mkdir -p "$1" && cd "$1" && pwd)
cap=${2:-90}
cd "$(dirname "$0")/.."

# CUDA 13.0 to match the 580 drivers; nvcc, its headers and the libraries candle links.
python3 -m pip download --no-deps --only-binary=:all: --dest "$dir/wheels" -q \
  nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
  nvidia-cublas==13.0.2.14 nvidia-curand==10.4.5.25
for w in "$dir"/wheels/*.whl; do
  python3 -m zipfile -e "$w" "$dir/unpacked"
done
cuda=$dir/unpacked/nvidia/cu13
chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/*

# The linker wants unversioned names, and a libcuda: the driver's is not here, so link a stub
# with every entry point cudarc declares (the real libcuda.so.1 is loaded at run time).
mkdir -p "$cuda/lib64"
for f in "$cuda"/lib/*.so.*; do
  base=$(basename "$f")
  ln -sf "$f" "$cuda/lib64/${base%%.so.*}.so"
done
cudarc=$(cargo metadata --format-version 1 --features cuda --manifest-path crates/gpo/Cargo.toml |
  python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc").rsplit("/", 1)[0])')
grep -hoE "unsafe fn cu[A-Za-z0-9_]*\(" "$cudarc/src/driver/sys/mod.rs" | sed 's/unsafe fn //; s/($//' |
  sort -u | awk '{print "void " $1 "(void) {}"}' >"$dir/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib64/libcuda.so" "$dir/libcuda_stub.c"

CUDA_HOME=$cuda CUDA_ROOT=$cuda CUDA_PATH=$cuda PATH=$cuda/bin:$PATH CUDA_COMPUTE_CAP=$cap \
  LIBRARY_PATH=$cuda/lib64 cargo build --release --locked -p gpo --features cuda \
  --target-dir "$dir/target"
echo "built $dir/target/release/gpo"
