#!/usr/bin/env bash
# Everything issue 13 needs from a GPU machine (about 6-8 minutes on an H100/H200-class GPU; GPU time is
# scarce, so nothing here is exploratory). From the repository root, in two calls of under 10 minutes each:
#
#     bash bench/gpu_session.sh checks     # parts 1 and 2 (~3-4 min)
#     bash bench/gpu_session.sh bench      # part 3 (~3-5 min)
#     bash bench/gpu_session.sh all        # both, where one command may run longer
#
# Logs go to $OUT (default /tmp/gpu13); the one-line results to $OUT/summary.txt.
#
# 1. the CUDA tests (tests that skip without a GPU): test_train_step::test_device_argument and
#    test_cuda_step (one abpatch-fixture step on CUDA, fp32, TF32 off, against AlexeyAB's numbers);
# 2. the shapes demo trained on CUDA (fp32, then --amp) next to the same run on the CPU (started first, in
#    parallel, on the machine's cores), each followed by `detector map`: the issue asks for CUDA within 3 mAP
#    points of CPU;
# 3. bench/bench_gpu.py with its defaults ((a)-(d) for yolov3/yolov4 at 416, batch 64, subdivisions 1 and
#    16, fp32 and --amp; CUDA sync-debug count of one step), appended to bench/RESULTS.md.
# Each part has its own timeout and the script goes on after a failure; the summary is $OUT/summary.txt.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
OUT=${OUT:-/tmp/gpu13}
PART=${1:-all}
mkdir -p "$OUT"
note() { echo "$*" | tee -a "$OUT/summary.txt"; }

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
note "$(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0), "x", torch.cuda.device_count())')"

demo() {   # demo NAME DEVICE [extra flags...]: train the shapes demo into its own backup folder, then map it
  local name=$1 device=$2; shift 2
  mkdir -p "$OUT/$name"
  sed "s#^backup *=.*#backup = $OUT/$name/#" data/shapes.data > "$OUT/$name/shapes.data"
  timeout 900 python3 -m darknet_py detector train "$OUT/$name/shapes.data" cfg/shapes-tiny.cfg --device "$device" \
    -dont_show --no-progress --log "$OUT/$name/train.jsonl" "$@" > "$OUT/$name/train.txt" 2>&1
  timeout 300 python3 -m darknet_py detector map "$OUT/$name/shapes.data" cfg/shapes-tiny.cfg \
    "$OUT/$name/shapes-tiny_final.weights" > "$OUT/$name/map.txt" 2>&1
  note "demo $name: $(grep -h 'mAP@' "$OUT/$name/map.txt" || echo 'no mAP (see train.txt)')"
}
if [ "$PART" = checks ] || [ "$PART" = all ]; then
  # 2, CPU side first: it trains on 6 of the CPU cores while the GPU parts run
  OMP_NUM_THREADS=6 demo cpu cpu --workers 3 &
  CPU_DEMO=$!
  # 1
  timeout 300 python3 -m pytest -q -rs tests/train/test_cuda_step.py "tests/train/test_train_step.py::test_device_argument" \
    > "$OUT/cuda_tests.txt" 2>&1
  note "CUDA tests: $(tail -1 "$OUT/cuda_tests.txt")"
  # 2, CUDA side
  demo cuda_fp32 cuda:0 --workers 6
  demo cuda_amp cuda:0 --workers 6 --amp
  wait "$CPU_DEMO"
fi
if [ "$PART" = bench ] || [ "$PART" = all ]; then
  # 3
  timeout 570 python3 bench/bench_gpu.py > "$OUT/bench_gpu.txt" 2>&1
  note "bench_gpu: exit $? (report appended to bench/RESULTS.md; log $OUT/bench_gpu.txt)"
  grep -A40 '^## `bench/bench_gpu.py`' "$OUT/bench_gpu.txt" >> "$OUT/summary.txt"
  cp bench/RESULTS.md "$OUT/RESULTS.md"     # the device machine's copy of the repository is not kept
fi
note "done ($PART); logs in $OUT"
