#!/usr/bin/env bash
# One CPU training epoch per model in Kiln and in PyTorch, alternating model by model, ROUNDS times,
# in one sitting: the same architecture (from Kiln's JSON spec), batch 128, THREADS threads, no
# augmentation. Writes both run-report files into OUT and prints medians and their ratio.
#   ROUNDS=2 THREADS=2 bash benchmarks/pytorch/side_by_side.sh     (needs `make build` and pip torch)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-2} threads=${THREADS:-2} out=${OUT:-benchmarks/results}
models=${MODELS:-lean8k strided12k ref18k}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in $models; do .build/release/kiln summary --model "$m" --spec > "$tmp/$m.json"; done
: > "$out/side_by_side_kiln.jsonl"
: > "$out/side_by_side_pytorch.jsonl"
for round in $(seq "$rounds"); do
  for m in $models; do
    .build/release/kiln train --device cpu --model "$m" --epochs 1 --no-augment --threads "$threads" --log "$tmp/k.jsonl" >/dev/null
    cat "$tmp/k.jsonl" >> "$out/side_by_side_kiln.jsonl"
    python3 benchmarks/pytorch/mnist_epoch.py --spec "$tmp/$m.json" --epochs 1 --threads "$threads" --log "$tmp/t.jsonl" >/dev/null
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
