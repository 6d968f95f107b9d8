#!/usr/bin/env python3
"""Print the state_dict names and shapes of the PyTorch module built from a Kiln JSON spec.

One tensor a line, `name shape`, in state_dict order (`0.weight [8, 1, 3, 3]`,
`2.num_batches_tracked []`): the names Kiln's checkpoints must use, residual blocks included
(`3.body.0.weight`, `4.shortcut.1.running_mean`, nested `3.body.2.body.0.weight`; an identity
shortcut holds none). The tests compare Kiln's checkpoint tensor names against this.

    python3 benchmarks/pytorch/spec_names.py SPEC.json      (SPEC.json "-": the spec on stdin)

Needs torch and numpy (as mnist_epoch.py, whose `build` it uses).
"""
import json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_epoch import build  # noqa: E402


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    path = sys.argv[1]
    spec = json.load(sys.stdin) if path == "-" else json.load(open(path))
    for name, tensor in build(spec).state_dict().items():
        print(name, list(tensor.shape))


if __name__ == "__main__":
    main()
