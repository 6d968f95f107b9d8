"""Kiln's data sets in NumPy, normalised as Kiln normalises them, for the comparison scripts (no torch).

`load_data(folder)` reads MNIST's four IDX .gz files or CIFAR-10's binary batches and returns
(x_train, y_train, x_test, y_test): float32 images [N, C, H, W] and int64 labels.
"""
import gzip, os, struct

import numpy as np


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist(folder, prefix):
    x = idx(f"{folder}/{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255
    y = idx(f"{folder}/{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return ((x - 0.1307) / 0.3081)[:, None], y


def cifar(folder, files):
    """CIFAR-10 binary records (a label byte, then 3x32x32 bytes) as uint8 images [N, 3, 32, 32] and labels."""
    raw = np.concatenate([np.fromfile(f"{folder}/{f}", dtype=np.uint8).reshape(-1, 3073) for f in files])
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def load_data(folder):
    """MNIST's IDX files with MNIST's statistics; CIFAR-10's binary batches with the training split's
    per-channel mean and population standard deviation (Kiln's `Normalization.measured`)."""
    if not os.path.exists(f"{folder}/data_batch_1.bin"):
        return mnist(folder, "train") + mnist(folder, "t10k")
    xtr, ytr = cifar(folder, [f"data_batch_{i}.bin" for i in range(1, 6)])
    xte, yte = cifar(folder, ["test_batch.bin"])
    planes = xtr.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    mean = planes.mean(1) / 255
    std = np.maximum(np.sqrt(np.maximum((planes ** 2).mean(1) - (planes.mean(1)) ** 2, 0)), 1e-3) / 255
    mean, std = mean.astype(np.float32).reshape(1, 3, 1, 1), std.astype(np.float32).reshape(1, 3, 1, 1)
    norm = lambda x: (x.astype(np.float32) / 255 - mean) / std
    return norm(xtr), ytr, norm(xte), yte
