#!/usr/bin/env bash
# The CUDA checks, run on a GPU machine from the repository root with .gpu and .whl carried there
# (prepare them with `python benchmarks/gpu_assets.py`). Results land in $OUT (default /tmp/out).
#
#   benchmarks/gpu_session.sh STAGE[:SECONDS]...
#
# Stages: env (versions), tests (`pytest -v -m cuda`: each result is logged as it comes), cloud
# (benchmarks/cloud_gpu.py: the cloud-gpu search and its comparison), compress
# (benchmarks/compress_gpu.py), serve (benchmarks/serve_load.py --device cuda), profile
# (benchmarks/gpu_profile.py). Each runs under `timeout` for SECONDS (the
# defaults below); the benchmarks get that budget less a margin and write their JSON as they go, so
# a stage cut short still returns what it finished. A machine call is capped at 10 minutes and a
# session's device time at 15, start included, so a session has room for one full call (about
# 560 s of stages: installing the wheels takes some too). Rather than cut every benchmark short in
# one session, split them over two, each stage sized to finish:
#
#   first:  OUT=$OUT benchmarks/gpu_session.sh env tests:90 serve:160 compress:280
#   second: OUT=$OUT benchmarks/gpu_session.sh env cloud:520
#
# (the first is done once benchmarks/results/ holds serve_load_cuda.json and compress_gpu.json).
#
# Everything printed also goes to $OUT/session.log (the call returns only the output's tail).
#
# Rehearsal on a CPU machine, in a virtual environment holding only the GPU image's packages and the
# carried wheels fetched for its Python (`gpu_assets.py --python 3.11 --wheels-only DIR`):
#
#   PYTHON=/tmp/h200/bin/python WHEELS=DIR SITE=/tmp/site311 DEVICE=cpu benchmarks/gpu_session.sh env tests cloud ...
#
# With DEVICE=cpu the benchmarks run their CPU smoke sizes: the numbers mean nothing, the code paths
# and the imports are what is checked.
set -u
out=${OUT:-/tmp/out}
python=${PYTHON:-python3}
site=${SITE:-/tmp/site}
wheels=${WHEELS:-.whl}
device=${DEVICE:-cuda}
mkdir -p "$out"
exec > >(tee -a "$out/session.log") 2>&1
$python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl \
  || { echo "installing the carried wheels failed"; exit 3; }
export PYTHONPATH=$site:$PWD/src:$PWD/benchmarks HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export FRUGAL_MINILM_DIR=$PWD/.gpu/minilm FRUGAL_CACHE_DIR=/tmp/frugal-cache
smoke=(); [ "$device" = cpu ] && smoke=(--smoke)
declare -A default_s=([env]=60 [tests]=90 [cloud]=520 [compress]=280 [serve]=160 [profile]=120)
status=0
for spec in "$@"; do
  stage=${spec%%:*}
  seconds=${spec#*:}; [ "$seconds" = "$spec" ] && seconds=${default_s[$stage]:-120}
  budget=$((seconds > 60 ? seconds - 30 : seconds / 2))  # the margin: model loading, writing, exiting
  started=$(date +%s)
  echo "=== $stage (up to ${seconds} s) $(date -u +%H:%M:%S)"
  run=(timeout -k 10 "$seconds")
  case $stage in
    env)
      nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv
      $python -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda)"
      $python -m pip list 2>/dev/null | grep -iE '^(torch|torchao|transformers|onnx|onnxruntime|optuna|fastapi|uvicorn|peft|opacus|flwr|safetensors|sqlalchemy|alembic|typer|click|pydantic|pynvml|nvidia-ml-py) '
      "${run[@]}" $python -c "import frugalml.search, frugalml.compress, frugalml.serve, frugalml.scaling, optuna, torchao, fastapi; print('frugalml imports: ok')" \
        || status=1 ;;
    tests)
      "${run[@]}" $python -m pytest -v -m cuda -p no:cacheprovider --durations=0 --junitxml "$out/tests.xml" tests \
        || status=1 ;;
    cloud)
      "${run[@]}" $python benchmarks/cloud_gpu.py --model .gpu/minilm --device "$device" "${smoke[@]}" \
        --budget-s "$budget" --out "$out/cloud_gpu.json" || status=1 ;;
    compress)
      "${run[@]}" $python benchmarks/compress_gpu.py --minilm .gpu/minilm --reference .gpu/ref --assets .gpu/minilm \
        --device "$device" "${smoke[@]}" --max-time 1 --budget-s "$budget" --out "$out/compress_gpu.json" || status=1 ;;
    serve)
      "${run[@]}" $python benchmarks/serve_load.py --device "$device" --seconds "$([ "$device" = cpu ] && echo 1 || echo 4)" \
        --no-wait-mode --budget-s "$budget" --out "$out/serve_load_$device.json" || status=1 ;;
    profile)
      "${run[@]}" $python benchmarks/gpu_profile.py --assets .gpu/minilm --out "$out/profile_gpu.json" || status=1 ;;
    *)
      echo "unknown stage $stage (env tests cloud compress serve profile)"; status=2 ;;
  esac
  echo "=== $stage took $(( $(date +%s) - started )) s"
done
exit $status
