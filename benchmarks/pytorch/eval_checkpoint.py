#!/usr/bin/env python3
"""Evaluate a Kiln checkpoint in PyTorch: the oracle for `kiln eval`.

Builds the torch.nn.Sequential of the checkpoint's own spec (metadata `kiln.spec`, through
mnist_epoch.build, residual blocks included), loads the weights, running statistics and batch norm's
int64 `num_batches_tracked` counters by state_dict name (`load_state_dict`, strict: every name must
match, `3.body.0.weight` and `4.shortcut.1.running_mean` inside residual blocks; Kiln's `optimizer.*`
keys are skipped), normalises the data folder's test split as Kiln does (the checkpoint's per-channel
normalisation, `kiln.options`, else MNIST's) and prints the same line as `kiln eval`:

    python3 benchmarks/pytorch/eval_checkpoint.py --checkpoint model.safetensors --data DIR

DIR holds MNIST-format .gz files or NumPy arrays (x_test.npy, y_test.npy). Needs torch, safetensors, numpy.
"""
import argparse, json, os

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from mnist_epoch import build, idx


def test_split(folder, normalization):
    if os.path.exists(f"{folder}/x_test.npy"):
        x, y = np.load(f"{folder}/x_test.npy"), np.load(f"{folder}/y_test.npy")
        if x.ndim == 3:
            x = x[..., None]
        x = x.transpose(0, 3, 1, 2)  # [N, H, W, C] -> [N, C, H, W]
    else:
        x, y = idx(f"{folder}/t10k-images-idx3-ubyte.gz")[:, None], idx(f"{folder}/t10k-labels-idx1-ubyte.gz")
    mean = np.array(normalization["mean"], dtype=np.float32)[None, :, None, None]
    std = np.array(normalization["std"], dtype=np.float32)[None, :, None, None]
    return torch.from_numpy((x.astype(np.float32) / 255 - mean) / std), torch.from_numpy(y.astype(np.int64))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    with safe_open(args.checkpoint, "pt") as f:
        metadata = f.metadata()
    spec = json.loads(metadata["kiln.spec"])
    options = json.loads(metadata.get("kiln.options", "{}"))
    normalization = options.get("normalization") or {"mean": [0.1307], "std": [0.3081]}
    model = build(spec)
    state = {k: v for k, v in load_file(args.checkpoint).items() if not k.startswith("optimizer.")}
    model.load_state_dict(state)
    model.eval()
    x, y = test_split(args.data, normalization)
    with torch.no_grad():
        logp = torch.cat([model(x[i:i + 1000]).flatten(1) for i in range(0, len(x), 1000)])
    loss = torch.nn.functional.nll_loss(logp, y, reduction="mean").item()
    correct = int((logp.argmax(1) == y).sum())
    print(f"Test set: Average loss: {loss:.4f}, Accuracy: {correct}/{len(y)} ({100 * correct / len(y):.2f}%)")


if __name__ == "__main__":
    main()
