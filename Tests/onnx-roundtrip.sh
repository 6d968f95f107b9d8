#!/usr/bin/env bash
# The ONNX round trip (`make test` runs it): train briefly, `kiln export --onnx`, and check the model in
# onnxruntime against `kiln eval --outputs` on the whole test split (Tests/onnx_check.py): the same
# predictions, outputs within 1e-4. The models cover every layer type: the three presets (padding,
# stride, dropout, average and global pooling) and a spec with biases, strided and padded pooling,
# residual blocks (identity and projection shortcuts: ONNX Add), flatten, linear layers, batch norm
# and a convolution after a linear, on 3-channel NumPy data; grouped, depthwise and dilated convolutions;
# a spec with group and layer norm; and resnet8 on CIFAR-10's binary format.
# usage: onnx-roundtrip.sh KILN PYTHON (a Python with onnx, onnxruntime and numpy; `make onnx-deps`)
set -euo pipefail
KILN=$(realpath "$1")
PYTHON=$2
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export POCL_CACHE_DIR=$work/pocl-cache
failures=0 models=0

# roundtrip NAME MODEL DATA [TRAIN FLAGS…]
roundtrip() {
    local name=$1 model=$2 data=$3
    shift 3
    models=$((models + 1))
    "$KILN" train --device cpu --model "$model" --data "$data" --epochs 1 --batch-size 32 --save "$work/$name.safetensors" "$@" >/dev/null
    "$KILN" export --checkpoint "$work/$name.safetensors" --onnx "$work/$name.onnx" >/dev/null
    "$KILN" eval --device cpu --checkpoint "$work/$name.safetensors" --data "$data" --outputs "$work/$name.npy" >/dev/null
    "$PYTHON" "$root/Tests/onnx_check.py" "$work/$name.onnx" "$work/$name.npy" "$data" || failures=$((failures + 1))
}

mnist=$root/Data/mnist
roundtrip lean8k lean8k "$mnist" --train-limit 1024
roundtrip ref18k ref18k "$mnist" --train-limit 256
# With --ema, export and eval both take the average.
roundtrip strided12k strided12k "$mnist" --train-limit 512 --ema 0.9

"$PYTHON" - "$work/rgb" <<'PY'
import os, sys
import numpy as np
folder = sys.argv[1]
os.makedirs(folder)
rng = np.random.default_rng(7)
for split, count in (("train", 96), ("test", 33)):
    np.save(f"{folder}/x_{split}.npy", rng.integers(0, 256, (count, 13, 13, 3), dtype=np.uint8))
    np.save(f"{folder}/y_{split}.npy", rng.integers(0, 5, count))
PY
cat >"$work/mixed.json" <<'JSON'
{"name": "mixed", "input": [3, 13, 13], "layers": [
  {"type": "conv2d", "out": 6, "kernel": 3, "stride": 2, "padding": 1}, {"type": "relu"}, {"type": "batchnorm2d"},
  {"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1},
  {"type": "residual", "body": [{"type": "conv2d", "out": 6, "kernel": 3, "padding": 1, "bias": false}, {"type": "batchnorm2d"}, {"type": "relu"}]},
  {"type": "residual", "body": [{"type": "conv2d", "out": 5, "kernel": 3, "stride": 2, "padding": 1}, {"type": "relu"}],
   "shortcut": [{"type": "conv2d", "out": 5, "kernel": 1, "stride": 2, "bias": false}, {"type": "batchnorm2d"}]},
  {"type": "conv2d", "out": 5, "kernel": 1, "bias": false}, {"type": "dropout2d", "p": 0.2},
  {"type": "avgpool2d", "kernel": 2, "stride": 1, "padding": 1},
  {"type": "flatten"}, {"type": "linear", "out": 7}, {"type": "relu"}, {"type": "batchnorm2d"}, {"type": "dropout", "p": 0.1},
  {"type": "conv2d", "out": 6, "kernel": 1}, {"type": "relu"},
  {"type": "linear", "out": 5, "bias": false}, {"type": "logsoftmax"}]}
JSON
roundtrip mixed "$work/mixed.json" "$work/rgb"
# Grouped, depthwise and dilated convolutions (ONNX Conv's group and dilations).
cat >"$work/grouped.json" <<'JSON'
{"name": "grouped", "input": [3, 13, 13], "layers": [
  {"type": "conv2d", "out": 6, "kernel": 3, "padding": 1, "groups": 3}, {"type": "relu"}, {"type": "batchnorm2d"},
  {"type": "conv2d", "out": 6, "kernel": 3, "padding": 2, "dilation": 2, "groups": 6, "bias": false}, {"type": "batchnorm2d"},
  {"type": "relu"}, {"type": "conv2d", "out": 8, "kernel": 3, "stride": 2, "padding": 1, "dilation": 3, "groups": 2},
  {"type": "relu"}, {"type": "conv2d", "out": 5, "kernel": 1}, {"type": "globalavgpool"}, {"type": "logsoftmax"}]}
JSON
roundtrip grouped "$work/grouped.json" "$work/rgb"

# Group and layer norm (decomposed for opset 13): one group per channel in a residual body, on flattened
# features (the graph's Unsqueeze back to an image) and with another eps.
cat >"$work/norms.json" <<'JSON'
{"name": "norms", "input": [3, 13, 13], "layers": [
  {"type": "conv2d", "out": 6, "kernel": 3, "stride": 2, "padding": 1}, {"type": "groupnorm", "groups": 3}, {"type": "relu"},
  {"type": "residual", "body": [{"type": "groupnorm", "groups": 6}, {"type": "conv2d", "out": 6, "kernel": 3, "padding": 1}]},
  {"type": "layernorm"}, {"type": "conv2d", "out": 5, "kernel": 1}, {"type": "globalavgpool"},
  {"type": "flatten"}, {"type": "linear", "out": 7}, {"type": "groupnorm", "groups": 1, "eps": 0.001}, {"type": "relu"},
  {"type": "linear", "out": 5}, {"type": "logsoftmax"}]}
JSON
roundtrip norms "$work/norms.json" "$work/rgb"

# resnet8 on a synthetic CIFAR-10 folder (random records in its binary format).
"$PYTHON" "$root/benchmarks/synthetic_cifar.py" "$work/cifar" --records 20 --test-records 37 --seed 8
roundtrip resnet8 resnet8 "$work/cifar"

if [ "$failures" -ne 0 ]; then echo "onnx-roundtrip: $failures model(s) failed"; exit 1; fi
echo "onnx-roundtrip: $models models exported and checked in onnxruntime"
