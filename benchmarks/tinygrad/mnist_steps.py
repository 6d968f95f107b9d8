#!/usr/bin/env python3
"""Time tinygrad training the same architecture as Kiln on an OpenCL device, for side-by-side speed.

The model is built from Kiln's own JSON spec (`kiln summary --model NAME --spec`), so both sides train
the identical network, on the same MNIST .gz files held on the device as normalised tensors (no
augmentation), SGD with momentum 0.9 at the batch size given: the work Kiln does with
`--no-augment`. The training step is one TinyJit function; the first `--warmup` steps (tinygrad's
kernel generation and compilation) are left out of the timing. Prints one JSON object:

    DEV=CL python3 benchmarks/tinygrad/mnist_steps.py --spec lean8k.json --steps 200
"""
import argparse, gzip, json, os, struct, time

import numpy as np
from tinygrad import Device, Tensor, TinyJit, nn
from tinygrad.helpers import TRAINING, Context
from tinygrad.nn.state import get_parameters, get_state_dict


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class Model:
    """Kiln's layer list as tinygrad layers and functions, applied in order."""

    def __init__(self, spec):
        self.steps, channels, size = [], spec["input"][0], spec["input"][1]
        for l in spec["layers"]:
            t = l["type"]
            if t == "conv2d":
                k, s, p = l["kernel"], l.get("stride", 1), l.get("padding", 0)
                self.steps.append(nn.Conv2d(channels, l["out"], k, s, p, bias=l.get("bias", True)))
                channels, size = l["out"], (size + 2 * p - k) // s + 1
            elif t == "linear":
                self.steps.append(nn.Linear(channels, l["out"], bias=l.get("bias", True)))
                channels = l["out"]
            elif t == "batchnorm2d":
                self.steps.append(nn.BatchNorm(channels))
            elif t == "relu":
                self.steps.append(Tensor.relu)
            elif t in ("maxpool2d", "avgpool2d"):
                k, s, p = l["kernel"], l.get("stride", l["kernel"]), l.get("padding", 0)
                pool = Tensor.max_pool2d if t == "maxpool2d" else Tensor.avg_pool2d
                self.steps.append(lambda x, pool=pool, k=k, s=s, p=p: pool(x, k, s, padding=p))
                size = (size + 2 * p - k) // s + 1
            elif t == "globalavgpool":
                self.steps.append(lambda x: x.mean(axis=(2, 3), keepdim=True))
                size = 1
            elif t in ("dropout", "dropout2d"):
                # Dropout2d drops whole channels: a mask of shape [N, C, 1, 1].
                self.steps.append(lambda x, p=l["p"], planes=t == "dropout2d": dropout(x, p, planes))
            elif t == "flatten":
                self.steps.append(lambda x: x.flatten(1))
            elif t == "logsoftmax":
                self.steps.append(lambda x: x.flatten(1).log_softmax(axis=1))
            else:
                raise SystemExit(f"unknown layer type {t}")

    def __call__(self, x):
        for step in self.steps:
            x = step(x)
        return x


def dropout(x, p, planes):
    if not TRAINING or p == 0:
        return x
    shape = (x.shape[0], x.shape[1], 1, 1) if planes else x.shape
    return x * (Tensor.rand(*shape) >= p) * (1 / (1 - p))


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--spec", required=True, help="a Kiln JSON model spec (kiln summary --model NAME --spec)")
    a.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../Data/mnist"))
    a.add_argument("--steps", type=int, default=200, help="timed training steps")
    a.add_argument("--warmup", type=int, default=5, help="untimed steps first (JIT capture and compilation)")
    a.add_argument("--batch-size", type=int, default=128)
    a.add_argument("--lr", type=float, default=0.01)
    args = a.parse_args()

    spec = json.load(open(args.spec))
    Tensor.manual_seed(1)
    images = idx(f"{args.data}/train-images-idx3-ubyte.gz").astype(np.float32) / 255
    labels = idx(f"{args.data}/train-labels-idx1-ubyte.gz").astype(np.int32)
    x_train = Tensor(((images - 0.1307) / 0.3081)[:, None]).realize()
    y_train = Tensor(labels).realize()
    model = Model(spec)
    params = get_parameters(model.steps)
    optimizer = nn.optim.SGD(params, lr=args.lr, momentum=0.9)
    count = x_train.shape[0]

    @TinyJit
    def step(indices):
        with Context(TRAINING=1):
            optimizer.zero_grad()
            # The model ends in log-softmax, so the loss is the mean NLL, as Kiln's.
            loss = -model(x_train[indices]).gather(1, y_train[indices].unsqueeze(1)).mean()
            loss.backward()
            optimizer.step()
            return loss.realize()

    rng = np.random.default_rng(1)
    def batch():
        return Tensor(rng.integers(0, count, args.batch_size, dtype=np.int32)).realize()

    for _ in range(args.warmup):
        step(batch()).item()
    batches = [batch() for _ in range(args.steps)]
    start = time.perf_counter()
    for b in batches:
        loss = step(b)
    final = loss.item()  # waits for the queue
    seconds = time.perf_counter() - start
    print(json.dumps(dict(model=spec.get("name", args.spec), framework="tinygrad", device=Device.DEFAULT,
                          batch_size=args.batch_size, steps=args.steps, seconds=seconds,
                          images_per_second=args.steps * args.batch_size / seconds,
                          parameters=sum(t.numel() for k, t in get_state_dict(model.steps).items()
                                         if k.endswith(("weight", "bias"))),
                          final_loss=final)))


if __name__ == "__main__":
    main()
