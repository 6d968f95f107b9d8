#!/usr/bin/env python3
"""Write a synthetic CIFAR-10 folder: random records in its binary format (a label byte 0-9, then
3,072 random bytes), data_batch_1.bin … data_batch_5.bin and test_batch.bin, for timing 3x32x32
models where CIFAR-10 is not at hand (their accuracy then means nothing).

    python3 benchmarks/synthetic_cifar.py FOLDER [--records 10000] [--test-records 10000] [--seed 1]
"""
import argparse, os

import numpy as np


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("folder")
    a.add_argument("--records", type=int, default=10000, help="records in each training batch (CIFAR-10: 10,000)")
    a.add_argument("--test-records", type=int, default=10000)
    a.add_argument("--seed", type=int, default=1)
    args = a.parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.folder)
    files = [(f"data_batch_{i}.bin", args.records) for i in range(1, 6)] + [("test_batch.bin", args.test_records)]
    for name, count in files:
        records = rng.integers(0, 256, (count, 3073), dtype=np.uint8)
        records[:, 0] %= 10
        records.tofile(f"{args.folder}/{name}")


if __name__ == "__main__":
    main()
