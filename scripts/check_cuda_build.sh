#!/usr/bin/env bash
# Does `cargo build --features cuda` compile here, with no GPU and no CUDA
# toolkit installed? Installs NVIDIA's compiler and headers from the Python
# package index (the CUDA 13 wheels nvidia-cuda-nvcc and friends; the -cu12
# nvcc wheels ship only ptxas, not the nvcc driver) into a temporary folder,
# points candle's build scripts at it and builds into target/cuda-check.
#
#   bash scripts/check_cuda_build.sh            # prints PASS or FAIL and the log path
#
# CUDA_COMPUTE_CAP picks the GPU generation the kernels are compiled for
# (default 80 = A100; 90 = H100/H200), since there is no GPU to ask.
# nvcc is pinned to 13.4: cudarc 0.19 (candle 0.11's CUDA bindings) knows
# toolkits up to 13.4 and refuses newer ones.
#
# Linking: candle links the CUDA libraries at build time. The wheels ship only
# versioned runtime libraries (libcudart.so.13, ...) and no libcuda at all (it
# is the driver's), so the script adds the unversioned names as links and, like
# the toolkit's own lib64/stubs/libcuda.so, a stub libcuda.so (SONAME
# libcuda.so.1) exporting the driver symbols the build references. At run time
# the real driver's libcuda.so.1 is loaded instead.
#
# ZOO_CUDA_DIR=DIR reuses one folder (and its wheels) across runs.
set -uo pipefail
cd "$(dirname "$0")/.."
tmp=${ZOO_CUDA_DIR:-$(mktemp -d /tmp/zoo-cuda-XXXXXX)}
mkdir -p "$tmp"
log="$tmp/build.log"
echo "installing nvcc into $tmp (log: $log)"
[ -x "$tmp/venv/bin/pip" ] || python3 -m venv "$tmp/venv" >>"$log" 2>&1
"$tmp/venv/bin/pip" install --quiet \
    "nvidia-cuda-nvcc==13.4.*" "nvidia-cuda-runtime==13.4.*" "nvidia-cuda-cccl==13.3.*" \
    "nvidia-cublas==13.4.*" "nvidia-nvvm==13.4.*" "nvidia-cuda-crt==13.4.*" "nvidia-cuda-nvrtc==13.4.*" "nvidia-curand" >>"$log" 2>&1 || { echo "FAIL: pip install (see $log)"; exit 1; }
site=$("$tmp/venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
# Merge the wheels' bin/include/lib folders into one CUDA_HOME-like tree.
home="$tmp/cuda"
mkdir -p "$home/bin" "$home/include" "$home/lib64" "$home/nvvm"
for pkg in "$site"/nvidia/*/; do
    for d in bin include lib nvvm; do
        [ -d "$pkg$d" ] || continue
        target="$home/$d"; [ "$d" = lib ] && target="$home/lib64"
        cp -rs "$pkg$d/." "$target/" 2>/dev/null || true
    done
done
chmod +x "$home"/bin/* 2>/dev/null || true
# Unversioned names for the linker (libcudart.so -> libcudart.so.13, ...).
for lib in "$home"/lib64/lib*.so.*; do
    base="${lib%%.so.*}.so"
    [ -e "$base" ] || ln -s "$(basename "$lib")" "$base"
done
export CUDA_HOME="$home" CUDA_PATH="$home" CUDA_ROOT="$home"
export PATH="$home/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
export LIBRARY_PATH="$home/lib64:${LIBRARY_PATH:-}" LD_LIBRARY_PATH="$home/lib64:${LD_LIBRARY_PATH:-}"
nvcc --version >>"$log" 2>&1 || { echo "FAIL: nvcc does not run (see $log)"; exit 1; }
echo "building with $(nvcc --version | tail -1)"
# Build the library first; its rlibs tell which driver symbols the stub needs.
cargo build --release --features cuda --lib --target-dir target/cuda-check >>"$log" 2>&1 \
    || { echo "FAIL: cargo build --features cuda --lib; last lines of $log:"; tail -20 "$log"; exit 1; }
mkdir -p "$home/lib64/stubs"
nm -u --format=just-symbols target/cuda-check/release/deps/*.rlib 2>/dev/null \
    | grep -E '^cu[A-Z]' | sort -u | sed 's/.*/void &(void) {}/' >"$tmp/libcuda_stub.c"
echo "stub libcuda.so: $(wc -l <"$tmp/libcuda_stub.c") driver symbols"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib64/stubs/libcuda.so" "$tmp/libcuda_stub.c" \
    || { echo "FAIL: could not build the libcuda stub"; exit 1; }
export LIBRARY_PATH="$home/lib64/stubs:$LIBRARY_PATH"
if cargo build --release --features cuda --target-dir target/cuda-check >>"$log" 2>&1; then
    echo "PASS: cargo build --features cuda (log: $log)"
else
    echo "FAIL: cargo build --features cuda; last lines of $log:"
    tail -20 "$log"
    exit 1
fi
