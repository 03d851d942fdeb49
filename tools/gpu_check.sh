#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see README "GPU figures"): CUDA tests + the core benchmark.
# Needs .devdata/ (git-ignored) holding FashionMNIST/raw/*.gz and bench/*.py copied from ../shared.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 SOFTMAX_WIDGETS_DATA=$PWD/.devdata
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())"
python3 -m pytest -q -p no:cacheprovider tests/test_trainer.py tests/test_model.py -k "cuda or lesson or remainder or matches" 2>&1 | tail -40
python3 benchmarks/bench_core.py --data-dir .devdata --bench-dir .devdata/bench --epochs 3 --device cuda 2>&1 | tee $OUT/bench_cuda.txt
python3 benchmarks/bench_core.py --data-dir .devdata --bench-dir .devdata/bench --epochs 3 --device cpu --skip-lesson 2>&1 | tee $OUT/bench_cpu16.txt
