#!/usr/bin/env python3
"""Kiln against PyTorch, step by step: the same model, weights, batches and recipe, every step's loss
and the final weights compared.

Writes a synthetic data set (a NumPy folder drawn from --data-seed: one random template per class plus
noise, so the loss falls), trains it in Kiln on the CPU (`kiln train --shuffle none --no-augment
--save-initial … --step-log …`; `--sync-bn` adds Kiln's flag: batch norm's sums in doubles), then builds the same spec in PyTorch (mnist_epoch.build), loads
Kiln's initial weights and trains on the same batches in the same order: SGD with momentum, Nesterov
and weight decay (torch.optim.SGD), the schedule as torch.optim.lr_scheduler computes it (OneCycleLR,
StepLR stepped per batch, or a constant rate) and nn.CrossEntropyLoss(label_smoothing=E) on the
model's log-probabilities. The images are normalised as Kiln does (the checkpoint's per-channel mean
and standard deviation, x·(1/(255σ)) − μ/σ in float32). It compares each step's loss and learning
rate with Kiln's step log, and the final weights, batch-norm running statistics and counters with
Kiln's final checkpoint; a tensor's error is ‖kiln − torch‖ / ‖torch‖ (2-norms over the tensor).

    python3 benchmarks/pytorch/same_steps.py --model lean8k
    python3 benchmarks/pytorch/same_steps.py --model resnet.json --lr 0.1 --label-smoothing 0.1 --weight-decay 5e-4

Prints a table and exits 1 when a loss differs by more than --loss-tolerance (relative), a weight or
running statistic by more than --weight-tolerance, or a counter at all. The model must have no
dropout (its masks are Kiln's own draws). Needs torch, safetensors, numpy and a built kiln (--kiln).
"""
import argparse, json, os, subprocess, sys, tempfile

import numpy as np
import torch
from torch import nn
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_epoch import build  # noqa: E402


def input_shape(kiln, model):
    """The model's input [C, H, W], from its spec (a JSON file, else `kiln summary --spec` of the preset)."""
    if os.path.exists(model):
        with open(model) as f:
            spec = json.load(f)
    else:
        spec = json.loads(subprocess.run([kiln, "summary", "--model", model, "--spec"], check=True,
                                         capture_output=True, text=True).stdout)
    return spec["input"]


def write_data(folder, shape, train, test, classes, seed):
    """x_train.npy/x_test.npy uint8 [N, H, W] (grey) or [N, H, W, C], y_*.npy int64: a template per class, plus noise."""
    c, h, w = shape
    rng = np.random.default_rng(seed)
    templates = rng.uniform(0, 255, size=(classes, h, w, c))
    os.makedirs(folder, exist_ok=True)
    for split, count in (("train", train), ("test", test)):
        labels = rng.integers(0, classes, size=count)
        images = 0.5 * templates[labels] + 0.5 * rng.uniform(0, 255, size=(count, h, w, c))
        images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
        np.save(f"{folder}/x_{split}.npy", images[..., 0] if c == 1 else images)
        np.save(f"{folder}/y_{split}.npy", labels.astype(np.int64))


def normalised(folder, normalization):
    """The training split as Kiln feeds it: [N, C, H, W] float32, each byte times 1/(255σ) plus −μ/σ."""
    x = np.load(f"{folder}/x_train.npy")
    if x.ndim == 3:
        x = x[..., None]
    x = x.transpose(0, 3, 1, 2)
    std = np.array(normalization["std"], dtype=np.float32)
    mean = np.array(normalization["mean"], dtype=np.float32)
    scale = (np.float32(1) / (np.float32(255) * std))[None, :, None, None]
    shift = (-mean / std)[None, :, None, None]
    return torch.from_numpy(x.astype(np.float32) * scale + shift), torch.from_numpy(np.load(f"{folder}/y_train.npy"))


def tensors(path):
    """A checkpoint's model tensors (Kiln's optimizer.* state left out)."""
    return {k: v for k, v in load_file(path).items() if not k.startswith("optimizer.")}


def relative(a, b):
    """‖a − b‖ / ‖b‖ over the tensor (an all-zero reference: ‖a − b‖): the size of the difference against the
    tensor's, not element by element, where a value near zero (a batch norm's β) makes any rounding large."""
    a, b = a.double(), b.double()
    scale = b.norm().item()
    difference = (a - b).norm().item()
    return difference / scale if scale > 0 else difference


def train(model, x, y, a):
    """Trains `model` on the batches in order with the recipe of `a`; returns each step's loss, learning
    rate and momentum, and the final state_dict."""
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, nesterov=a.nesterov,
                                weight_decay=a.weight_decay)
    if a.schedule == "onecycle":
        # Kiln's defaults are OneCycleLR's; momentum cycles only where SGD has momentum.
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=a.lr, total_steps=a.epochs * a.steps,
                                                       cycle_momentum=a.momentum > 0)
    elif a.schedule == "step":
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=a.step_size * a.steps, gamma=a.gamma)
    else:
        schedule = None
    criterion = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    losses, rates, momenta = [], [], []
    for epoch in range(a.epochs):
        for s in range(a.steps):
            batch = slice(s * a.batch_size, (s + 1) * a.batch_size)
            rates.append(optimizer.param_groups[0]["lr"])
            momenta.append(optimizer.param_groups[0]["momentum"])
            loss = criterion(model(x[batch]).flatten(1), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule:
                schedule.step()
            losses.append(loss.item())
    return losses, rates, momenta, model.state_dict()


def compare(kiln_losses, kiln_final, losses, final):
    """The largest relative difference of a step's loss (and its step), and per kind (weights, batch-norm
    statistics) the largest of any tensor (and its name); whether the counters agree."""
    loss_errors = [abs(k - t) / abs(t) for k, t in zip(kiln_losses, losses)]
    errors = {"weights": {}, "statistics": {}}
    counters_equal = True
    for name, tensor in final.items():
        if name.endswith("num_batches_tracked"):
            counters_equal &= int(kiln_final[name]) == int(tensor)
        else:
            errors["statistics" if name.endswith(("running_mean", "running_var")) else "weights"][name] = relative(kiln_final[name], tensor)
    worst = {kind: max(((e, n) for n, e in table.items()), default=(0.0, "none")) for kind, table in errors.items()}
    step = max(range(len(loss_errors)), key=loss_errors.__getitem__)
    return (loss_errors[step], step + 1), worst["weights"], worst["statistics"], counters_equal


def row(what, loss, weight, statistic, extra):
    return (f"| {what} | {loss[0]:.2e} (step {loss[1]}) | {weight[0]:.2e} ({weight[1]}) | {statistic[0]:.2e} ({statistic[1]}) | {extra} |")


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kiln", default=os.path.join(root, ".build/release/kiln"), help="the kiln binary")
    p.add_argument("--model", default="lean8k", help="a preset or a JSON spec file")
    p.add_argument("--steps", type=int, default=50, help="steps per epoch (the training split holds steps × batch images)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", choices=["onecycle", "step", "none"], default="onecycle")
    p.add_argument("--step-size", type=int, default=5, help="StepLR: epochs between decays")
    p.add_argument("--gamma", type=float, default=0.1, help="StepLR: decay factor")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=1, help="Kiln's seed (the initial weights)")
    p.add_argument("--data-seed", type=int, default=1, help="the synthetic data's seed")
    p.add_argument("--threads", type=int, default=2, help="CPU threads, each side")
    p.add_argument("--loss-tolerance", type=float, default=1e-4)
    p.add_argument("--weight-tolerance", type=float, default=1e-3)
    p.add_argument("--sync-bn", action="store_true",
                   help="train Kiln with --sync-bn (one process: batch norm's sums in doubles, unfused from the convolution)")
    p.add_argument("--float64", action="store_true",
                   help="also train PyTorch in float64 and print how far float32 rounding alone carries it (the noise floor)")
    p.add_argument("--keep", help="a folder to keep the data, checkpoints and step log in (default: a temporary one)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)

    work = a.keep or tempfile.mkdtemp(prefix="same-steps-")
    os.makedirs(work, exist_ok=True)
    data = f"{work}/data"
    write_data(data, input_shape(a.kiln, a.model), a.steps * a.batch_size, a.batch_size, a.classes, a.data_seed)
    initial, final, step_log = f"{work}/initial.safetensors", f"{work}/final.safetensors", f"{work}/steps.jsonl"
    command = [a.kiln, "train", "--device", "cpu", "--threads", str(a.threads), "--model", a.model, "--data", data,
               "--epochs", str(a.epochs), "--batch-size", str(a.batch_size), "--lr", str(a.lr), "--optimizer", "sgd",
               "--momentum", str(a.momentum), "--nesterov" if a.nesterov else "--no-nesterov",
               "--weight-decay", str(a.weight_decay), "--schedule", a.schedule, "--step-size", str(a.step_size),
               "--gamma", str(a.gamma), "--label-smoothing", str(a.label_smoothing), "--no-augment", "--shuffle", "none",
               "--seed", str(a.seed), "--save-initial", initial, "--save", final, "--step-log", step_log]
    command += ["--sync-bn"] if a.sync_bn else []
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"same_steps: kiln train failed ({run.returncode}):\n{run.stdout}{run.stderr}")
    with open(step_log) as f:
        kiln_steps = [json.loads(line) for line in f if line.strip()]

    with safe_open(initial, "pt") as f:
        metadata = f.metadata()
    spec = json.loads(metadata["kiln.spec"])
    normalization = json.loads(metadata["kiln.options"])["normalization"]
    model = build(spec)
    model.load_state_dict(tensors(initial))  # strict: every name and shape must match
    if any(isinstance(m, (nn.Dropout, nn.Dropout2d)) for m in model.modules()):
        sys.exit(f"same_steps: {spec.get('name', a.model)} has dropout, whose masks PyTorch cannot draw as Kiln does")
    model.train()
    x, y = normalised(data, normalization)

    total = a.epochs * a.steps
    losses, rates, momenta, torch_final = train(model, x, y, a)
    if len(kiln_steps) != total:
        sys.exit(f"same_steps: Kiln's step log has {len(kiln_steps)} steps, expected {total}")
    kiln_losses = [k["loss"] for k in kiln_steps]
    loss, weight, statistic, counters_equal = compare(kiln_losses, tensors(final), losses, torch_final)
    lr_error = max(abs(k["learning_rate"] - r) / r for k, r in zip(kiln_steps, rates))
    if a.schedule == "onecycle" and a.momentum > 0:
        lr_error = max([lr_error] + [abs(k["momentum"] - m) / m for k, m in zip(kiln_steps, momenta)])
    print(f"{spec.get('name', a.model)}: {total} steps of batch {a.batch_size}, lr {a.lr} {a.schedule}, momentum {a.momentum}"
          f"{' nesterov' if a.nesterov else ''}, weight decay {a.weight_decay}, label smoothing {a.label_smoothing} "
          f"(torch {torch.__version__}, {a.threads} threads; Kiln's batch norm {'--sync-bn' if a.sync_bn else 'plain'})")
    print(f"| {total} steps | max loss rel err | max weight rel err | max BN-stat rel err | max lr/momentum rel err |")
    print("|---|---|---|---|---|")
    print(row("kiln vs torch", loss, weight, statistic, f"{lr_error:.2e}"))
    if a.float64:
        # The same steps in float64: how far float32 rounding alone carries PyTorch on this recipe.
        model64 = build(spec).double()
        model64.load_state_dict(tensors(initial))
        model64.train()
        losses64, _, _, final64 = train(model64, x.double(), y, a)
        print(row("kiln vs torch float64", *compare(kiln_losses, tensors(final), losses64, final64)[:3], ""))
        print(row("torch vs torch float64", *compare(losses, torch_final, losses64, final64)[:3], ""))
    print(f"loss at step 1: kiln {kiln_losses[0]:.6f}, torch {losses[0]:.6f}; at step {total}: "
          f"kiln {kiln_losses[-1]:.6f}, torch {losses[-1]:.6f}")
    loss_error, weight_error, stat_error = loss[0], weight[0], statistic[0]
    failures = []
    if loss_error > a.loss_tolerance:
        failures.append(f"a loss differs by {loss_error:.2e} > {a.loss_tolerance:g}")
    if max(weight_error, stat_error) > a.weight_tolerance:
        failures.append(f"a weight or statistic differs by {max(weight_error, stat_error):.2e} > {a.weight_tolerance:g}")
    if lr_error > 1e-5:
        failures.append(f"a learning rate or momentum differs by {lr_error:.2e}: the schedules disagree")
    if not counters_equal:
        failures.append("num_batches_tracked differs")
    if failures:
        sys.exit("same_steps: FAILED: " + "; ".join(failures))
    print("same_steps: within bounds")


if __name__ == "__main__":
    main()
