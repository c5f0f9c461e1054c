#!/usr/bin/env bash
# The pipeline on a lent GPU machine (device tool): the CUDA test (the shipped restorer,
# refiner and vlmir on the GPU against the CPU), then speed and memory by size.
#   python scripts/device/pack.py pack    # here, once: carry/minilm
#   run: carry ["carry/minilm"], command "bash scripts/device/check_gpu.sh"
# The repository with every shipped weight folder and carry/minilm is ~55 MiB of a call's 64.
set -euo pipefail
export PYTHONWARNINGS=ignore PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 VLIR_MINILM=/tmp/minilm
python3 scripts/device/pack.py unpack /tmp/minilm
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m pytest -q -p no:cacheprovider tests/test_restoration.py -k gpu_restores_as_the_cpu
python3 benchmarks/speed.py --device cuda --sizes "${SIZES:-481x321,1024x1024,4000x3000}"
