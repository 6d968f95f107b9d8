#!/usr/bin/env bash
# Kiln and tinygrad training the same model on the same OpenCL device, alternating, ROUNDS times, in
# one sitting: the same architecture (Kiln's JSON spec), batch 128, no augmentation, STEPS steps each
# (Kiln: an epoch of STEPS·128 images with --train-limit; tinygrad: after its JIT warm-up). Prints
# each run and the medians' ratio.
#   ROUNDS=3 STEPS=200 MODEL=lean8k bash benchmarks/tinygrad/side_by_side.sh   (needs `make build`, pip tinygrad)
# A MODEL of another input shape than MNIST's (resnet8, resnet20: 3x32x32) trains on DATA, a CIFAR-10
# folder; without one, on a synthetic folder of CIFAR-10's format (benchmarks/synthetic_cifar.py):
#   ROUNDS=3 STEPS=50 MODEL=resnet8 bash benchmarks/tinygrad/side_by_side.sh
# KILN names the kiln binary (default .build/release/kiln).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3} steps=${STEPS:-200} model=${MODEL:-lean8k} device=${DEVICE:-opencl} kiln=${KILN:-.build/release/kiln}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$kiln" summary --model "$model" --spec > "$tmp/spec.json"
data=${DATA:-Data/mnist}
if [ -z "${DATA:-}" ] && python3 -c "import json,sys; sys.exit(json.load(open('$tmp/spec.json'))['input'] == [1, 28, 28])"; then
    data=$tmp/cifar
    python3 benchmarks/synthetic_cifar.py "$data"
fi
for round in $(seq "$rounds"); do
    "$kiln" train --device "$device" --model "$model" --data "$data" --epochs 1 --no-augment --schedule none --lr 0.01 \
        --train-limit $((steps * 128)) --log "$tmp/k.jsonl" >/dev/null
    kiln_ips=$(python3 -c "import json; print(json.load(open('$tmp/k.jsonl'))['images_per_second'])")
    tiny=$(DEV=CL python3 benchmarks/tinygrad/mnist_steps.py --spec "$tmp/spec.json" --data "$data" --steps "$steps" | \
           python3 -c "import json, sys; print(json.load(sys.stdin)['images_per_second'])")
    echo "round $round $model: kiln $(printf %.0f "$kiln_ips") images/s, tinygrad $(printf %.0f "$tiny") images/s"
    echo "$kiln_ips $tiny" >> "$tmp/runs"
done
python3 - "$tmp/runs" "$model" <<'PY'
import statistics, sys
runs = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
kiln, tiny = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
print(f"| model | Kiln images/s (median) | tinygrad images/s (median) | Kiln / tinygrad | runs each |")
print(f"|---|---|---|---|---|")
print(f"| {sys.argv[2]} | {kiln:.0f} | {tiny:.0f} | {kiln / tiny:.2f}x | {len(runs)} |")
PY
