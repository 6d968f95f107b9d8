#!/usr/bin/env python3
"""Time PyTorch on the CPU training the same architecture as Kiln, for side-by-side epoch times.

The model is built from Kiln's own JSON spec (`kiln summary --model NAME --spec`), so both sides
train the identical network. `build` covers residual blocks too (`{"type": "residual", "body":
[...], "shortcut": [...]}`, nested or not, an absent shortcut the identity) and leaky ReLU; its
state_dict names are Kiln's checkpoint names (`3.body.0.weight`), see spec_names.py. Data comes
from the same MNIST .gz files (or CIFAR-10 binary batches, `--data`), already in memory as normalised tensors (no DataLoader workers, no
augmentation), SGD with momentum 0.9 and batch size as given: the work Kiln does with
`--no-augment`. Writes Kiln's run-report schema as JSON lines.

    python3 benchmarks/pytorch/mnist_epoch.py --spec lean8k.json ref18k.json --epochs 2 --threads 2 --log torch.jsonl

`kiln-bench --compare torch.jsonl` then prints Kiln's CPU figures against these.
"""
import argparse, json, os, sys, time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from kiln_data import idx, load_data  # noqa: E402,F401 (idx for eval_checkpoint.py)


class Residual(nn.Module):
    """Kiln's `{"type": "residual", "body": [...], "shortcut": [...]}`: body(x) + shortcut(x).

    Exactly two children, both nn.Sequential, so the state_dict names are Kiln's checkpoint names
    (`3.body.0.weight`, `4.shortcut.1.running_mean`, nested `3.body.2.body.0.weight`). An absent or
    empty shortcut is the identity: an empty nn.Sequential, which holds no tensors.
    """

    def __init__(self, body, shortcut):
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


def run_probe(layers, probe):
    """`probe` through `layers` as in evaluation (batch norm takes one image then), leaving them training."""
    sequence = nn.Sequential(*layers)
    with torch.no_grad():
        output = sequence.eval()(probe)
    sequence.train()
    return output


def build_layers(specs, channels, probe):
    """An nn.Sequential of the layer specs `specs` on `channels` input channels, and its output channels.

    Each layer takes its list index (parameterless ones too), as nn.Sequential numbers its children;
    residual blocks recurse into their body and shortcut lists. `probe` is a zero input of one image,
    run through the layers so far where a layer needs its input's [C, H, W] (layer norm).
    """
    layers = []
    for l in specs:
        t = l["type"]
        if t == "conv2d":
            layers.append(nn.Conv2d(channels, l["out"], l["kernel"], l.get("stride", 1), l.get("padding", 0), l.get("dilation", 1),
                                    l.get("groups", 1), bias=l.get("bias", True)))
            channels = l["out"]
        elif t == "linear":
            layers.append(nn.Linear(channels, l["out"], bias=l.get("bias", True)))
            channels = l["out"]
        elif t == "batchnorm2d":
            layers.append(nn.BatchNorm2d(channels))
        elif t == "groupnorm":
            layers.append(nn.GroupNorm(l["groups"], channels, eps=l.get("eps", 1e-5)))
        elif t == "layernorm":
            shape = run_probe(layers, probe).shape[1:]
            if len(shape) != 3:
                raise SystemExit("layernorm on flattened features: Kiln's weight is [F, 1, 1], nn.LayerNorm's here would be [F]")
            layers.append(nn.LayerNorm(shape, eps=l.get("eps", 1e-5)))
        elif t == "relu":
            layers.append(nn.ReLU())
        elif t == "leakyrelu":
            layers.append(nn.LeakyReLU(negative_slope=l.get("slope", 0.01)))
        elif t in ("maxpool2d", "avgpool2d"):
            cls = nn.MaxPool2d if t == "maxpool2d" else nn.AvgPool2d
            layers.append(cls(l["kernel"], l.get("stride", l["kernel"]), l.get("padding", 0)))
        elif t == "globalavgpool":
            layers.append(nn.AdaptiveAvgPool2d(1))
        elif t == "dropout":
            layers.append(nn.Dropout(l["p"]))
        elif t == "dropout2d":
            layers.append(nn.Dropout2d(l["p"]))
        elif t == "flatten":
            layers.append(nn.Flatten())
        elif t == "logsoftmax":
            layers.append(nn.LogSoftmax(dim=1))
        elif t == "residual":
            if not isinstance(l.get("body"), list):
                raise SystemExit("a residual block needs a \"body\" list of layers")
            block_probe = run_probe(layers, probe)
            body, out = build_layers(l["body"], channels, block_probe)
            shortcut, short_out = build_layers(l.get("shortcut") or [], channels, block_probe)
            if short_out != out:
                raise SystemExit(f"residual block: the body gives {out} channels, the shortcut {short_out}")
            layers.append(Residual(body, shortcut))
            channels = out
        else:
            raise SystemExit(f"unknown layer type {t}")
    return nn.Sequential(*layers), channels


def build(spec):
    """The nn.Sequential of a Kiln JSON spec; its state_dict names are Kiln's checkpoint names."""
    return build_layers(spec["layers"], spec["input"][0], torch.zeros(1, *spec["input"]))[0]


def train(spec, path, a, xtr, ytr, xte, yte):
    """Trains `spec` for a.epochs epochs; returns one run report per epoch."""
    torch.manual_seed(1)
    model = build(spec)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
    params = sum(p.numel() for p in model.parameters())
    reports = []
    for epoch in range(1, a.epochs + 1):
        model.train()
        order = torch.randperm(len(xtr))
        total_loss, correct, start = 0.0, 0, time.perf_counter()
        for i in range(0, len(xtr), a.batch_size):
            idx_ = order[i:i + a.batch_size]
            x, y = xtr[idx_], ytr[idx_]
            out = model(x).flatten(1)
            loss = nn.functional.nll_loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
        seconds = time.perf_counter() - start
        model.eval()
        t0, test_loss, test_correct = time.perf_counter(), 0.0, 0
        with torch.no_grad():
            for i in range(0, len(xte), 1000):
                out = model(xte[i:i + 1000]).flatten(1)
                test_loss += nn.functional.nll_loss(out, yte[i:i + 1000], reduction="sum").item()
                test_correct += (out.argmax(1) == yte[i:i + 1000]).sum().item()
        r = dict(model=spec.get("name", path), device=f"pytorch {torch.__version__} cpu", parameters=params,
                 epoch=epoch, epochs=a.epochs, batch_size=a.batch_size, threads=a.threads, seed=1,
                 learning_rate=a.lr, warmup_seconds=0.0, epoch_seconds=seconds,
                 images_per_second=len(xtr) / seconds, train_loss=total_loss / len(xtr),
                 train_accuracy=100 * correct / len(xtr), eval_seconds=time.perf_counter() - t0,
                 test_loss=test_loss / len(xte), test_correct=test_correct, test_count=len(xte),
                 test_accuracy=100 * test_correct / len(xte))
        reports.append(r)
        print(f"{r['model']} epoch {epoch}/{a.epochs}: {seconds:.2f} s, {r['images_per_second']:.0f} images/s, "
              f"test {test_correct}/{len(xte)} ({r['test_accuracy']:.2f}%)", flush=True)
    return reports


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", required=True, nargs="+", help="Kiln JSON model specs (kiln summary --model NAME --spec)")
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../Data/mnist"),
                   help="MNIST's four .gz files or CIFAR-10's binary batches (default: the bundled MNIST)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--train-limit", type=int, help="train on the first N training images only (as kiln train --train-limit)")
    p.add_argument("--log", help="write one JSON object per epoch here")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    xtr, ytr, xte, yte = map(torch.from_numpy, load_data(a.data))
    xtr, ytr = xtr[:a.train_limit], ytr[:a.train_limit]
    reports = []
    for path in a.spec:
        reports += train(json.load(open(path)), path, a, xtr, ytr, xte, yte)
    if a.log:
        with open(a.log + ".tmp", "w") as f:
            f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in reports))
        os.replace(a.log + ".tmp", a.log)


if __name__ == "__main__":
    main()
