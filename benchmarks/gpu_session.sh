#!/usr/bin/env bash
# The CUDA checks, run on a GPU machine from the repository root with .gpu and .whl carried there
# (prepare them with `python benchmarks/gpu_assets.py`). Results land in $OUT (default /tmp/out).
#
#   benchmarks/gpu_session.sh STAGE...
#
# Stages: env (versions), tests (`pytest -m cuda`), cloud (benchmarks/cloud_gpu.py: the cloud-gpu
# search and its comparison), compress (benchmarks/compress_gpu.py), serve (benchmarks/serve_load.py
# --device cuda), profile (benchmarks/gpu_profile.py). Their durations are not measured yet; a
# machine call is capped at 10 minutes, so run one or two stages per call and note how long each took.
set -u
out=${OUT:-/tmp/out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/benchmarks HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export FRUGAL_MINILM_DIR=$PWD/.gpu/minilm FRUGAL_CACHE_DIR=/tmp/frugal-cache
status=0
for stage in "$@"; do
  echo "=== $stage $(date -u +%H:%M:%S)"
  case $stage in
    env)
      nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv
      python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda)"
      python3 -m pip list 2>/dev/null | grep -iE '^(torch|torchao|transformers|onnx|onnxruntime|optuna|fastapi|uvicorn|peft|opacus|flwr|safetensors|sqlalchemy|alembic|typer|pydantic|pynvml|nvidia-ml-py) ' ;;
    tests)
      python3 -m pytest -q -m cuda -p no:cacheprovider tests 2>&1 | tail -60 || status=1 ;;
    cloud)
      python3 benchmarks/cloud_gpu.py --out "$out/cloud_gpu.json" || status=1 ;;
    compress)
      python3 benchmarks/compress_gpu.py --minilm .gpu/minilm --reference .gpu/ref --assets .gpu/minilm \
        --out "$out/compress_gpu.json" || status=1 ;;
    serve)
      python3 benchmarks/serve_load.py --device cuda --seconds 4 --no-wait-mode --out "$out/serve_load_cuda.json" || status=1 ;;
    profile)
      python3 benchmarks/gpu_profile.py --assets .gpu/minilm --out "$out/profile_gpu.json" || status=1 ;;
    *)
      echo "unknown stage $stage (env tests cloud compress serve profile)"; status=2 ;;
  esac
done
exit $status
