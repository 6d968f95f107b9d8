"""Checks `kiln export --onnx` against `kiln eval --outputs` (run by Tests/onnx-roundtrip.sh).

usage: onnx_check.py MODEL.onnx OUTPUTS.npy DATA_DIR

Runs the ONNX model in onnxruntime on the test split of DATA_DIR (MNIST-format files, gzipped or
plain, x_test.npy, or CIFAR-10's test_batch.bin), as pixel values in [0, 1], and compares it with Kiln's outputs: the same
prediction for every image and every output within 1e-4. Prints one line; exits 1 on a mismatch.
"""
import gzip
import os
import sys

import numpy as np
import onnx
import onnxruntime


def test_images(folder):
    """The test images as float32 [N, C, H, W] in [0, 1]."""
    npy, cifar = os.path.join(folder, "x_test.npy"), os.path.join(folder, "test_batch.bin")
    if os.path.exists(cifar):
        x = np.fromfile(cifar, np.uint8).reshape(-1, 3073)[:, 1:].reshape(-1, 3, 32, 32)
    elif os.path.exists(npy):
        x = np.load(npy)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    else:
        path = os.path.join(folder, "t10k-images-idx3-ubyte")
        data = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
        count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
        x = np.frombuffer(data, np.uint8, offset=16).reshape(count, 1, rows, cols)
    return np.ascontiguousarray(x, dtype=np.float32) / 255


def main(model_path, outputs_path, folder):
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": test_images(folder)})[0]
    want = np.load(outputs_path)
    name = os.path.basename(model_path)
    if got.shape != want.shape:
        print(f"FAIL: {name}: onnxruntime gives {got.shape}, kiln eval {want.shape}")
        return 1
    error = float(np.abs(got - want).max())
    agree = int((got.argmax(1) == want.argmax(1)).sum())
    ops = sorted({node.op_type for node in model.graph.node})
    line = f"{name}: {agree}/{len(want)} predictions agree, max |onnxruntime - kiln| = {error:.2e} (opset {model.opset_import[0].version}; {', '.join(ops)})"
    if agree != len(want) or error > 1e-4:
        print("FAIL: " + line)
        return 1
    print("ok: " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
