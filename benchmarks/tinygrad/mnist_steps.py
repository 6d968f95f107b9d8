#!/usr/bin/env python3
"""Time tinygrad training the same architecture as Kiln on an OpenCL device, for side-by-side speed.

The model is built from Kiln's own JSON spec (`kiln summary --model NAME --spec`; residual blocks,
nested or not, and every layer type), so both sides train the identical network, on the same data
(`--data`: MNIST's .gz files, or CIFAR-10's binary batches for 3x32x32 models such as resnet8) held on
the device as tensors normalised as Kiln does (benchmarks/kiln_data.py; no augmentation), SGD with
momentum 0.9 at the batch size given: the work Kiln does with `--no-augment`. The training step is one TinyJit function; the first `--warmup` steps (tinygrad's
kernel generation and compilation) are left out of the timing. Prints one JSON object (the first
warm-up step's loss and the last step's, the parameter count as `kiln summary` counts it):

    DEV=CL python3 benchmarks/tinygrad/mnist_steps.py --spec lean8k.json --steps 200
    DEV=CL python3 benchmarks/tinygrad/mnist_steps.py --spec resnet8.json --data CIFAR_FOLDER --steps 50
"""
import argparse, json, os, sys, time

import numpy as np
from tinygrad import Device, Tensor, TinyJit, nn
from tinygrad.helpers import TRAINING, Context
from tinygrad.nn.state import get_parameters, get_state_dict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from kiln_data import load_data  # noqa: E402


class Residual:
    """Kiln's `{"type": "residual", "body": [...], "shortcut": [...]}`: body(x) + shortcut(x), an absent or
    empty shortcut the identity. Its state-dict names are Kiln's checkpoint names (`3.body.0.weight`)."""

    def __init__(self, body, shortcut):
        self.body, self.shortcut = body, shortcut

    def __call__(self, x):
        return run(self.body, x) + run(self.shortcut, x)


class Linear(nn.Linear):
    """Kiln's linear layer: [N, C, H, W] flattened in, [N, F, 1, 1] out."""

    def __call__(self, x):
        return super().__call__(x.flatten(1)).reshape(x.shape[0], -1, 1, 1)


def run(steps, x):
    for step in steps:
        x = step(x)
    return x


def build(specs, shape):
    """Kiln's layer list as tinygrad layers and functions, applied in order, and its output [C, H, W].

    Every step keeps [N, C, H, W], features as [N, F, 1, 1], as Kiln does: a layer after a linear or
    flatten sees an image of F channels."""
    steps = []
    for l in specs:
        t, (channels, height, width) = l["type"], shape
        if t == "conv2d":
            k, s, p, d = l["kernel"], l.get("stride", 1), l.get("padding", 0), l.get("dilation", 1)
            steps.append(nn.Conv2d(channels, l["out"], k, s, p, d, l.get("groups", 1), bias=l.get("bias", True)))
            side = lambda n: (n + 2 * p - d * (k - 1) - 1) // s + 1
            shape = (l["out"], side(height), side(width))
        elif t == "linear":
            steps.append(Linear(channels * height * width, l["out"], bias=l.get("bias", True)))
            shape = (l["out"], 1, 1)
        elif t == "batchnorm2d":
            steps.append(nn.BatchNorm(channels))
        elif t == "groupnorm":
            steps.append(nn.GroupNorm(l["groups"], channels, eps=l.get("eps", 1e-5)))
        elif t == "layernorm":
            steps.append(nn.LayerNorm(shape, eps=l.get("eps", 1e-5)))
        elif t == "relu":
            steps.append(Tensor.relu)
        elif t == "leakyrelu":
            steps.append(lambda x, slope=l.get("slope", 0.01): x.leaky_relu(slope))
        elif t in ("maxpool2d", "avgpool2d"):
            k, s, p = l["kernel"], l.get("stride", l["kernel"]), l.get("padding", 0)
            pool = Tensor.max_pool2d if t == "maxpool2d" else Tensor.avg_pool2d
            steps.append(lambda x, pool=pool, k=k, s=s, p=p: pool(x, k, s, padding=p))
            shape = (channels, (height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1)
        elif t == "globalavgpool":
            steps.append(lambda x: x.mean(axis=(2, 3), keepdim=True))
            shape = (channels, 1, 1)
        elif t in ("dropout", "dropout2d"):
            # Dropout2d drops whole channels: a mask of shape [N, C, 1, 1].
            steps.append(lambda x, p=l["p"], planes=t == "dropout2d": dropout(x, p, planes))
        elif t == "flatten":
            steps.append(lambda x: x.reshape(x.shape[0], -1, 1, 1))
            shape = (channels * height * width, 1, 1)
        elif t == "logsoftmax":
            steps.append(lambda x: x.flatten(1).log_softmax(axis=1))
        elif t == "residual":
            if not isinstance(l.get("body"), list):
                raise SystemExit("a residual block needs a \"body\" list of layers")
            body, out = build(l["body"], shape)
            shortcut, short_out = build(l.get("shortcut") or [], shape)
            if short_out != out:
                raise SystemExit(f"residual block: the body gives {list(out)}, the shortcut {list(short_out)}")
            steps.append(Residual(body, shortcut))
            shape = out
        else:
            raise SystemExit(f"unknown layer type {t}")
    return steps, shape


def dropout(x, p, planes):
    if not TRAINING or p == 0:
        return x
    shape = (x.shape[0], x.shape[1], 1, 1) if planes else x.shape
    return x * (Tensor.rand(*shape) >= p) * (1 / (1 - p))


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--spec", required=True, help="a Kiln JSON model spec (kiln summary --model NAME --spec)")
    a.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../Data/mnist"),
                   help="MNIST's four .gz files or CIFAR-10's binary batches (default: the bundled MNIST)")
    a.add_argument("--steps", type=int, default=200, help="timed training steps")
    a.add_argument("--warmup", type=int, default=5, help="untimed steps first (JIT capture and compilation)")
    a.add_argument("--batch-size", type=int, default=128)
    a.add_argument("--lr", type=float, default=0.01)
    args = a.parse_args()

    spec = json.load(open(args.spec))
    Tensor.manual_seed(1)
    images, labels = load_data(args.data)[:2]
    x_train, y_train = Tensor(images).realize(), Tensor(labels.astype(np.int32)).realize()
    model = build(spec["layers"], tuple(spec["input"]))[0]
    params = get_parameters(model)
    optimizer = nn.optim.SGD(params, lr=args.lr, momentum=0.9)
    count = x_train.shape[0]

    @TinyJit
    def step(indices):
        with Context(TRAINING=1):
            optimizer.zero_grad()
            # The model ends in log-softmax, so the loss is the mean NLL, as Kiln's.
            loss = -run(model, x_train[indices]).gather(1, y_train[indices].unsqueeze(1)).mean()
            loss.backward()
            optimizer.step()
            return loss.realize()

    rng = np.random.default_rng(1)
    def batch():
        return Tensor(rng.integers(0, count, args.batch_size, dtype=np.int32)).realize()

    first = [step(batch()).item() for _ in range(args.warmup)][:1]
    batches = [batch() for _ in range(args.steps)]
    start = time.perf_counter()
    for b in batches:
        loss = step(b)
    final = loss.item()  # waits for the queue
    seconds = time.perf_counter() - start
    print(json.dumps(dict(model=spec.get("name", args.spec), framework="tinygrad", device=Device.DEFAULT,
                          batch_size=args.batch_size, steps=args.steps, seconds=seconds,
                          images_per_second=args.steps * args.batch_size / seconds,
                          parameters=sum(t.numel() for k, t in get_state_dict(model).items()
                                         if k.endswith(("weight", "bias"))),
                          first_loss=first[0] if first else None, final_loss=final)))


if __name__ == "__main__":
    main()
