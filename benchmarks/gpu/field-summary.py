#!/usr/bin/env python3
"""The figures of a GPU field run's summary.md (benchmarks/gpu/field-run.sh writes the rest).

field-summary.py OUTDIR prints markdown: parity per preset, kiln-bench images/s per preset and device,
cold and warm, the launch profile, kiln tune before and after, and the 15-epoch training run. Each
section reads its part's JSON and says so when the part left none. Standard library only.
"""
import json
import os
import re
import sys

out = sys.argv[1]


def jsonl(path):
    """The JSON objects of a JSON-lines file, [] when it is missing or unreadable."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def num(value, digits=1):
    return "" if value is None else f"{value:,.{digits}f}"


def missing(what):
    print(f"No {what} (the part failed or did not run: see its log).\n")


# ---- Devices
print("## Devices\n")
try:
    with open(os.path.join(out, "logs", "devices.log")) as f:
        print("```\n" + f.read().strip() + "\n```\n")
except OSError:
    missing("`kiln devices` output")

# ---- Parity
print("## Parity (CPU against the OpenCL device, layer by layer)\n")
reports = []
for name in sorted(os.listdir(out)):
    match = re.fullmatch(r"parity-(.+)\.json", name)
    if match:
        try:
            with open(os.path.join(out, name)) as f:
                reports.append(json.load(f))
        except (OSError, ValueError):
            pass
if reports:
    print("| model | device | batch × steps | result | tensors | worst (% of tolerance) | first failure |")
    print("|---|---|---|---|---|---|---|")
    for r in reports:
        entries = r.get("entries", [])
        worst = max((e["max_rel_error"] / e["tolerance"] for e in entries if e["tolerance"] > 0), default=0)
        failed = [e for e in entries if not e["passed"]]
        first = (f"step {failed[0]['step']} layer {failed[0]['layer']} ({failed[0]['layer_type']}) {failed[0]['quantity']}"
                 if failed else "")
        print(f"| {r.get('model')} | {r.get('device')} | {r.get('batch_size')} × {r.get('steps')} | "
              f"{'FAIL' if failed else 'pass'} | {len(entries)} | {100 * worst:.0f}% | {first} |")
    print()
else:
    missing("parity report")

# ---- kiln-bench
runs = {"bench-gpu-cold": "GPU, cold (empty cache)", "bench-gpu-warm": "GPU, warm (same cache)",
        "bench-cpu": "CPU", "bench-gpu-tuned": "GPU, after kiln tune"}
results = {run: jsonl(os.path.join(out, run, "results.jsonl")) for run in runs}
print("## kiln-bench: images/s per preset and device\n")
rows = [(run, r) for run in runs for r in results[run]]
if rows:
    print("| model | run | device | warm-up s | images/s | train GFLOP/s | sgemm peak GFLOP/s | steps × repeats | device MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run, r in sorted(rows, key=lambda x: (x[1].get("model", ""), list(runs).index(x[0]))):
        print(f"| {r.get('model')} | {runs[run]} | {r.get('device')} | {num(r.get('warmup_seconds'), 2)} | "
              f"{num(r.get('images_per_second'), 0)} | {num(r.get('train_gflops'), 1)} | {num(r.get('sgemm_peak_gflops'), 0)} | "
              f"{r.get('steps')} × {len(r.get('epoch_seconds_runs', []))} | {num(r.get('device_mb'), 0)} |")
    print()
    gpu = {r["model"]: r for r in results["bench-gpu-warm"]} or {r["model"]: r for r in results["bench-gpu-cold"]}
    cpu = {r["model"]: r for r in results["bench-cpu"]}
    both = [m for m in gpu if m in cpu]
    if both:
        print("GPU (warm) against CPU: " + ", ".join(
            f"{m} {gpu[m]['images_per_second'] / cpu[m]['images_per_second']:.1f}x" for m in both) + ".\n")
else:
    missing("kiln-bench results")

# ---- Launch profile and per-layer time
profiles = jsonl(os.path.join(out, "bench-gpu-warm", "launches.jsonl")) or jsonl(os.path.join(out, "bench-gpu-cold", "launches.jsonl"))
print("## Launch profile (one training step, launches cut for a GPU)\n")
if profiles:
    print("| model | device | batch | launches per step | Kiln | CLBlast | below min groups | of them on ≥ 65,536 elements |")
    print("|---|---|---|---|---|---|---|---|")
    for p in profiles:
        launches, groups = p.get("launches", []), p.get("min_groups", 264)
        clblast = sum(1 for l in launches if l.get("routine"))
        small = [l for l in launches if (l.get("work_groups") or (l["work_items"] + 63) // 64) < groups]
        print(f"| {p.get('model')} | {p.get('device')} | {p.get('batch_size')} | {len(launches)} | {len(launches) - clblast} | "
              f"{clblast} | {len(small)} (< {groups}) | {sum(1 for l in small if l['elements'] >= 65536)} |")
    print()
else:
    missing("launch profile")
layered = results["bench-gpu-warm"] or results["bench-gpu-cold"]
if layered:
    print("Per-layer time on the GPU (kiln-bench's layer table, warm; ms per batch, forward + backward), slowest three:\n")
    for r in layered:
        layers = sorted(r.get("layers", []), key=lambda l: -(l["forward_ms"] + l["backward_ms"]))
        total = sum(l["forward_ms"] + l["backward_ms"] for l in layers)
        top = "; ".join(f"{l['layer']} {l['forward_ms']:.3f} + {l['backward_ms']:.3f}" for l in layers[:3])
        print(f"- {r.get('model')}: {total:.2f} ms over {len(layers)} layers; {top}")
    print()

# ---- kiln tune
print("## kiln tune (lean8k) before and after\n")
warm = {r["model"]: r for r in results["bench-gpu-warm"]}.get("lean8k")
tuned = {r["model"]: r for r in results["bench-gpu-tuned"]}.get("lean8k")
if warm and tuned:
    print(f"lean8k images/s: {warm['images_per_second']:,.0f} before, {tuned['images_per_second']:,.0f} after "
          f"({tuned['images_per_second'] / warm['images_per_second']:.2f}x); sgemm 1024³ "
          f"{warm.get('sgemm_peak_gflops', 0):,.0f} → {tuned.get('sgemm_peak_gflops', 0):,.0f} GFLOP/s.\n")
gemms = (tuned or {}).get("clblast_gemms") or []
if gemms:
    print("| CLBlast call | calls per step | GFLOP/s, CLBlast's own | tuned |")
    print("|---|---|---|---|")
    for g in gemms:
        print(f"| {g['shape']} | {g['calls']} | {num(g.get('own_gflops'), 1)} | {num(g.get('tuned_gflops'), 1)} |")
    print()
try:
    with open(os.path.join(out, "logs", "tune-lean8k.log")) as f:
        lines = [l.rstrip() for l in f if re.match(r"(Tuning|GEMM|[NT][NT] |kept|No tuner|CLBlast's own|Saved)", l)]
    if lines:
        print("```\n" + "\n".join(lines) + "\n```\n")
except OSError:
    pass
if not (warm and tuned) and not gemms:
    missing("before/after measurement")

# ---- kiln train
print("## kiln train: lean8k on the GPU\n")
epochs = jsonl(os.path.join(out, "train-lean8k.jsonl"))
if epochs:
    first = epochs[0]
    print(f"{first.get('device')}, batch {first.get('batch_size')}, warm-up {num(first.get('warmup_seconds'), 2)} s.\n")
    print("| epoch | test accuracy % | test loss | epoch s | images/s | eval s |")
    print("|---|---|---|---|---|---|")
    for e in epochs:
        print(f"| {e.get('epoch')} | {num(e.get('test_accuracy'), 2)} | {num(e.get('test_loss'), 4)} | "
              f"{num(e.get('epoch_seconds'), 2)} | {num(e.get('images_per_second'), 0)} | {num(e.get('eval_seconds'), 2)} |")
    last = [f"{e['test_accuracy']:.2f}%" for e in epochs[-3:]]
    print(f"\nLast {len(last)} epochs: {', '.join(last)}; {len(epochs)} of {first.get('epochs')} epochs in "
          f"{sum(e.get('epoch_seconds', 0) for e in epochs):.1f} s of training.\n")
else:
    missing("training log")
