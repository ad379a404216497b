#!/usr/bin/env bash
# torch_mlp on a GPU against the CPU run of the same data, on a machine with an NVIDIA GPU.
#
# Builds a small generated lake (the demo's, 75 days), then trains TorchMLPClassifier on
# the churn job's training rows twice: CPU processes (the baseline) and useGpu=True with
# Spark's GPU resources set, and prints both times and their ratio (bench/bench_torch_gpu.py).
# The lake takes about 3-4 minutes on 2 cores (less on more), the fits well under one;
# `make setup` and the torch extra are installed first when missing (not counted).
#
#   bench/gpu_check.sh            # a fresh lake under a temporary folder
#   LAKEHOUSE_ROOT=/path bench/gpu_check.sh --reuse   # a lake the demo already built
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
command -v nvidia-smi >/dev/null || { echo "gpu_check: nvidia-smi not found: no NVIDIA GPU here" >&2; exit 1; }
nvidia-smi -L
make --no-print-directory setup >/dev/null
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install --quiet -e '.[torch]'
.venv/bin/python -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
export LAKEHOUSE_ROOT=${LAKEHOUSE_ROOT:-$(mktemp -d)/lake}
started=$(date +%s)
if [ "${1:-}" != "--reuse" ]; then
  .venv/bin/features demo --customers 1000 --days 75 >/dev/null
  echo "gpu_check: lake built in $(( $(date +%s) - started )) s at $LAKEHOUSE_ROOT"
fi
export PYSPARK_SUBMIT_ARGS="--conf spark.driver.resource.gpu.amount=1 --conf spark.driver.resource.gpu.discoveryScript=$here/bench/gpu_discovery.sh pyspark-shell"
.venv/bin/python bench/bench_torch_gpu.py
echo "gpu_check: $(( $(date +%s) - started )) s in all"
