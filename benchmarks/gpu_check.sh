#!/usr/bin/env bash
# The GPU check in one go, for an NVIDIA machine with CuPy and PyTorch (CUDA) installed:
#   1. pytest -m gpu: every CUDA kernel, a training run of each lesson model with each optimizer,
#      seeds, save/load and ONNX export, all against the NumPy reference;
#   2. benchmarks/run.py --device gpu: convolab on CuPy against PyTorch eager on CUDA (whole
#      dataset on the GPU for both), the lesson's three models at batch 32 and 128.
#
# To finish in a few minutes, each benchmark run trains a warm-up pass and then times 2 passes
# over 19,200 images (600 steps at batch 32), scaled to s/epoch for the full epoch (60,000 or
# 50,000 images); inference is timed on 10,000 images. Override with SAMPLES=, REPEAT=, INFER=.
# Worst case, every cap hit: 180 s of tests + 360 s of benchmark (45 s a run): under 10 minutes.
# The goal (issue 13): torch/convolab >= 3.00x at batch 32, against PyTorch eager's
# 2.38, 2.66, 3.09 s/epoch (simple, multi, lenet) measured on the same kind of GPU.
#
#   pip install -e ".[test,gpu]" torch      # torch with CUDA: see pytorch.org for the right wheel
#   bash benchmarks/gpu_check.sh             # writes gpu_check.md and gpu_check.json here
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
SAMPLES=${SAMPLES:-19200}
REPEAT=${REPEAT:-2}
INFER=${INFER:-10000}

echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi not found"
$PY -c "import cupy, convolab; convolab.backend.set_device('gpu'); print('cupy', cupy.__version__, 'CUDA runtime',
cupy.cuda.runtime.runtimeGetVersion())" || { echo "CuPy cannot use a GPU here: stop"; exit 2; }
$PY -c "import torch; print('torch', torch.__version__, 'cuda available:', torch.cuda.is_available())" \
  || echo "PyTorch missing: the benchmark will report it as not installed"

echo "== pytest -m gpu"
timeout 180 $PY -m pytest -m gpu -q -rs tests/backend/test_gpu_device.py
tests_rc=$?

echo "== benchmark (samples=$SAMPLES, repeat=$REPEAT, infer=$INFER)"
timeout 360 $PY benchmarks/run.py --device gpu --frameworks convolab,torch --models simple,multi,lenet \
  --batch-sizes 32,128 --samples "$SAMPLES" --repeat "$REPEAT" --infer "$INFER" --timeout 45 \
  --markdown gpu_check.md --json gpu_check.json
bench_rc=$?

echo "== done: pytest rc=$tests_rc, benchmark rc=$bench_rc (table in gpu_check.md; torch/convolab is the speed-up)"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
