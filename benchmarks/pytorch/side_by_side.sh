#!/usr/bin/env bash
# One CPU training epoch per model in Kiln and in PyTorch, alternating model by model, ROUNDS times,
# in one sitting: the same architecture (from Kiln's JSON spec), batch 128, THREADS threads, no
# augmentation. Writes both run-report files into OUT and prints medians and their ratio.
#   ROUNDS=2 THREADS=2 bash benchmarks/pytorch/side_by_side.sh     (needs `make build` and pip torch)
# MODELS of another input shape than MNIST's (resnet20: 3x32x32) train on DATA, a CIFAR-10 folder; without
# one, on a synthetic folder of CIFAR-10's format and numbers (random images and labels, seed 1):
#   MODELS=resnet20 bash benchmarks/pytorch/side_by_side.sh
# TRAIN_LIMIT=N trains both on the first N training images (a shorter epoch; the ratio is per image).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-2} threads=${THREADS:-2} out=${OUT:-benchmarks/results} kiln=${KILN:-.build/release/kiln}
limit=(${TRAIN_LIMIT:+--train-limit "$TRAIN_LIMIT"})
models=${MODELS:-lean8k strided12k ref18k}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mnist_shaped() { python3 -c "import json,sys; sys.exit(json.load(open('$tmp/$1.json'))['input'] != [1, 28, 28])"; }
for m in $models; do
  "$kiln" summary --model "$m" --spec > "$tmp/$m.json"
  if ! mnist_shaped "$m" && [ -z "${DATA:-}" ]; then
    DATA="$tmp/cifar"
    python3 benchmarks/synthetic_cifar.py "$DATA"
  fi
done
data_for() { if mnist_shaped "$1"; then echo Data/mnist; else echo "$DATA"; fi; }
: > "$out/side_by_side_kiln.jsonl"
: > "$out/side_by_side_pytorch.jsonl"
for round in $(seq "$rounds"); do
  for m in $models; do
    data=$(data_for "$m")
    "$kiln" train --device cpu --model "$m" --data "$data" --epochs 1 --no-augment --threads "$threads" "${limit[@]}" --log "$tmp/k.jsonl" >/dev/null
    cat "$tmp/k.jsonl" >> "$out/side_by_side_kiln.jsonl"
    python3 benchmarks/pytorch/mnist_epoch.py --spec "$tmp/$m.json" --data "$data" --epochs 1 --threads "$threads" "${limit[@]}" --log "$tmp/t.jsonl" >/dev/null
    cat "$tmp/t.jsonl" >> "$out/side_by_side_pytorch.jsonl"
    echo "round $round $m: kiln $(python3 -c "import json;print(round(json.load(open('$tmp/k.jsonl'))['epoch_seconds'],2))") s," \
         "pytorch $(python3 -c "import json;print(round(json.load(open('$tmp/t.jsonl'))['epoch_seconds'],2))") s"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def medians(path):
    runs = {}
    for line in open(path):
        r = json.loads(line)
        runs.setdefault(r["model"], []).append(r["epoch_seconds"])
    return {m: (statistics.median(v), len(v)) for m, v in runs.items()}
kiln, torch = medians(f"{out}/side_by_side_kiln.jsonl"), medians(f"{out}/side_by_side_pytorch.jsonl")
print("| model | Kiln epoch s (median) | PyTorch epoch s (median) | Kiln / PyTorch | runs each |")
print("|---|---|---|---|---|")
for m in kiln:
    print(f"| {m} | {kiln[m][0]:.2f} | {torch[m][0]:.2f} | {kiln[m][0] / torch[m][0]:.2f}x | {kiln[m][1]} |")
PY
