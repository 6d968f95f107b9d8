#!/usr/bin/env bash
# Kiln's checkpoints in PyTorch (`make test` runs it when torch is installed): a residual model trained
# briefly saves tensors under exactly the names and shapes of the module benchmarks/pytorch builds from
# the same spec (spec_names.py), and eval_checkpoint.py prints the same test line as `kiln eval`.
# usage: pytorch-checkpoint.sh KILN PYTHON (a Python with torch, safetensors and numpy)
set -euo pipefail
KILN=$(realpath "$1")
PYTHON=$2
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export POCL_CACHE_DIR=$work/pocl-cache

# Identity and projection shortcuts, a block nested in a body, a ReLU folded into a batch norm.
cat >"$work/res.json" <<'JSON'
{"name": "res", "input": [1, 28, 28], "layers": [
  {"type": "conv2d", "out": 6, "kernel": 3, "bias": false}, {"type": "relu"}, {"type": "batchnorm2d"},
  {"type": "residual", "body": [{"type": "conv2d", "out": 6, "kernel": 3, "padding": 1, "bias": false}, {"type": "relu"}, {"type": "batchnorm2d"}]},
  {"type": "maxpool2d", "kernel": 2},
  {"type": "residual",
   "body": [{"type": "conv2d", "out": 10, "kernel": 3, "stride": 2, "padding": 1, "bias": false}, {"type": "batchnorm2d"},
            {"type": "residual", "body": [{"type": "relu"}, {"type": "conv2d", "out": 10, "kernel": 3, "padding": 1}]}],
   "shortcut": [{"type": "conv2d", "out": 10, "kernel": 1, "stride": 2, "bias": false}, {"type": "batchnorm2d"}]},
  {"type": "globalavgpool"}, {"type": "conv2d", "out": 10, "kernel": 1, "bias": false}, {"type": "logsoftmax"}]}
JSON
"$KILN" train --device cpu --model "$work/res.json" --data "$root/Data/mnist" --train-limit 1024 --epochs 1 \
    --save "$work/res.safetensors" >/dev/null
"$PYTHON" - "$work/res.safetensors" "$work/res.json" "$root/benchmarks/pytorch" <<'PY'
import json, subprocess, sys
from safetensors import safe_open
checkpoint, spec, scripts = sys.argv[1:]
with safe_open(checkpoint, "np") as f:
    kiln = {k: list(f.get_tensor(k).shape) for k in f.keys() if not k.startswith("optimizer.")}
torch = {}
for line in subprocess.run([sys.executable, f"{scripts}/spec_names.py", spec], check=True, capture_output=True, text=True).stdout.splitlines():
    name, shape = line.split(" ", 1)
    torch[name] = json.loads(shape)
if kiln != torch:
    print("pytorch-checkpoint: (kiln, torch) differ:",
          {k: (kiln.get(k), torch.get(k)) for k in sorted(set(kiln) | set(torch)) if kiln.get(k) != torch.get(k)})
    sys.exit(1)
print(f"pytorch-checkpoint: {len(kiln)} tensors named and shaped as in PyTorch's module")
PY
kiln_line=$("$KILN" eval --device cpu --checkpoint "$work/res.safetensors" --data "$root/Data/mnist" | grep "^Test set")
torch_line=$(cd "$root/benchmarks/pytorch" && "$PYTHON" eval_checkpoint.py --checkpoint "$work/res.safetensors" --data "$root/Data/mnist")
echo "kiln eval:          $kiln_line"
echo "eval_checkpoint.py: $torch_line"
[ "$kiln_line" = "$torch_line" ] || { echo "pytorch-checkpoint: the test lines differ"; exit 1; }
