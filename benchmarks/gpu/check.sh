#!/usr/bin/env bash
# The prepared device check for issue 21's search step with bits on a GPU (one `run` call, ~6-8 minutes on an H100/H200):
#   run(command="bash benchmarks/gpu/check.sh", timeout_s=540)
# Writes under $OUT (or benchmarks/gpu/out): the environment, then the lockstep bench with paired paths at the digits size
# of the earlier GPU section (darts-cifar width 8, 16x16, batch 64) and at a GPU-sized step (width 16, 32x32, batch 256,
# the digits images tiled 8x so that 10 steps of 256 exist). Each part has its own time limit; a part cut short keeps
# what it printed. Not a test.
set -u
cd "$(dirname "$0")/../.."
out="${OUT:-benchmarks/gpu/out}"
mkdir -p "$out"
export PYTHONPATH=src
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv 2>&1
  python -c "import torch, lightning, nni; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'pl', lightning.__version__, 'nni', nni.__version__)" 2>&1
  nproc; } > "$out/env.log"
cat "$out/env.log"
strategies='GumbelDARTS,UBoost single-path,UBoost single-path bits'
timeout 200 python benchmarks/bench_search_step.py --batch-size 64 --steps 8 --repeats 3 --rows 16 --cols 16 \
    --strategies "$strategies" --seed 0 --paired-paths > "$out/darts16-b64.txt" 2>&1
grep -A1 "^bits:" "$out/darts16-b64.txt"
timeout 280 python benchmarks/bench_search_step.py --width 16 --image-size 32 --batch-size 256 --tile-data 8 --steps 6 \
    --repeats 2 --rows 16 --cols 16 --strategies "$strategies" --seed 0 --paired-paths > "$out/darts32-w16-b256.txt" 2>&1
grep -A1 "^bits:" "$out/darts32-w16-b256.txt"
