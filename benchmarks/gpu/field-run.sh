#!/usr/bin/env bash
# The GPU field run: everything worth measuring on a machine with a GPU, in under 8 minutes, with
# nothing to install there. `make gpu-bundle` builds the bundle (kiln, kiln-bench and their libraries
# packed in payload.tar.xz, which the first run unpacks; share/kiln/mnist/; this script); copy it to the
# GPU machine and run
#
#   BUNDLE/field-run.sh OUTDIR            # the field run (OUTDIR must be new or empty)
#   field-run.sh --dry-run OUTDIR         # the same parts on any OpenCL device (PoCL here), tiny limits,
#                                         # about a minute: `make test` runs it so the script cannot rot
#
# It finds an OpenCL platform (where the NVIDIA driver's libnvidia-opencl.so.1 exists but no ICD file
# names it, it writes one into OUTDIR/opencl-vendors and points OCL_ICD_VENDORS there), then runs each
# part under its own `timeout` so one failure does not stop the rest, all within a deadline:
#   kiln devices; kiln parity for every preset; kiln-bench for every preset on the GPU with the launch
#   profile, cold (empty --cache-dir) and warm (the same cache again), and on the CPU; kiln tune for
#   lean8k (--budget 120), then lean8k's bench again; a 15-epoch lean8k kiln train on the GPU.
# OUTDIR gets the JSON (kiln-bench --out folders, parity-*.json, train-lean8k.jsonl), logs/*.log, parts.tsv
# and summary.md: the device, each part's status and seconds, and the key figures (python3 if the machine
# has it; else the logs' key lines). Commit summary.md as benchmarks/results/gpu-field-run-DATE.md.
# Exit status: 0 when every part passed, 1 when any failed, timed out or was skipped, 2 on bad usage.
#
# Environment:
#   KILN_BIN_DIR             the folder of kiln and kiln-bench (default: bin/ beside this script, the bundle's)
#   KILN_FIELD_LAUNCH_SHAPE  --launch-shape for every command (default auto; gpu in --dry-run)
#   KILN_FIELD_NVIDIA_SEARCH colon-separated folders searched for libnvidia-opencl.so.1 (default: the usual
#                            library folders, then ldconfig -p)
#   KILN_FIELD_VENDORS_DIR   the system's ICD folder (default /etc/OpenCL/vendors)
#   KILN_FIELD_DEADLINE      seconds for all the parts (default 480; 100 in --dry-run)
#   KILN_FIELD_NO_PYTHON=1   write summary.md without python3 (how a machine without it gets it)
set -euo pipefail

die() { echo "field-run: $*" >&2; exit 2; }
usage="usage: field-run.sh [--dry-run] OUTDIR"
dry=0 outdir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 ($usage)" ;;
        *) [ -z "$outdir" ] || die "one OUTDIR only ($usage)"; outdir=$1 ;;
    esac
    shift
done
[ -n "$outdir" ] || die "$usage"
for tool in timeout date grep sed sort cut; do
    command -v "$tool" >/dev/null || die "this machine has no $tool, which the script needs"
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# A bundle's bin/ and lib/ travel packed (payload.tar.xz): unpacked beside this script on the first run,
# or into a temporary folder (with share/ linked) where this folder cannot be written.
root=$here
if [ -z "${KILN_BIN_DIR:-}" ] && [ -f "$here/payload.tar.xz" ] && [ ! -x "$here/bin/kiln" ]; then
    command -v tar >/dev/null || die "this machine has no tar, which unpacking the bundle needs"
    if command -v xz >/dev/null; then unxz=(xz); else unxz=(env "LD_LIBRARY_PATH=$here/unxz" "$here/unxz/xz"); fi
    if [ ! -w "$here" ]; then
        root=$(mktemp -d) && ln -s "$here/share" "$root/share" || die "cannot create a temporary folder to unpack into"
        trap 'rm -rf "$root"' EXIT
    fi
    rm -rf "$root/.unpacking" && mkdir "$root/.unpacking"
    "${unxz[@]}" -dc "$here/payload.tar.xz" | tar -xf - -C "$root/.unpacking" || die "cannot unpack $here/payload.tar.xz into $root"
    rm -rf "$root/bin" "$root/lib" && mv "$root/.unpacking/bin" "$root/.unpacking/lib" "$root/" && rmdir "$root/.unpacking"
    echo "field-run: unpacked kiln, kiln-bench and their libraries into $root"
fi
bindir=${KILN_BIN_DIR:-$root/bin}
[ -x "$bindir/kiln" ] && [ -x "$bindir/kiln-bench" ] \
    || die "no kiln and kiln-bench in $bindir (run from the bundle, or set KILN_BIN_DIR, e.g. KILN_BIN_DIR=.build/release)"
bindir=$(cd "$bindir" && pwd)
kiln=$bindir/kiln bench=$bindir/kiln-bench

if [ -e "$outdir" ] && [ -n "$(ls -A "$outdir" 2>/dev/null)" ]; then
    die "$outdir is not empty: give a new folder (a second run into it would not start cold)"
fi
mkdir -p "$outdir/logs" || die "cannot create $outdir"
outdir=$(cd "$outdir" && pwd)
started=$(date +%s)
note() { echo "field-run: $*" | tee -a "$outdir/logs/field-run.log"; }

# ---- Libraries: the bundle's lib/ first; its libstdc++/libgcc_s only where the machine's are missing or too old.
# shellcheck source=find-lib.sh
source "$here/find-lib.sh"
if [ -d "$root/lib" ] && [ -z "${KILN_BIN_DIR:-}" ]; then
    libs=$root/lib
    if [ -d "$root/lib/fallback" ]; then
        cxx=$(find_lib libstdc++.so.6) gcc_s=$(find_lib libgcc_s.so.1)
        need=$(cat "$root/lib/fallback/GLIBCXX_NEEDED" 2>/dev/null || true)
        if [ -z "$cxx" ] || [ -z "$gcc_s" ]; then
            libs=$libs:$root/lib/fallback; note "no libstdc++/libgcc_s on this machine: using the bundle's"
        elif [ -n "$need" ] && ! grep -qa "GLIBCXX_$need" "$cxx"; then
            libs=$libs:$root/lib/fallback; note "$cxx lacks GLIBCXX_$need: using the bundle's libstdc++"
        fi
    fi
    export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    if [ -f "$here/GLIBC_NEEDED" ] && command -v getconf >/dev/null; then
        need=$(cat "$here/GLIBC_NEEDED") have=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed 's/^glibc //')
        if [ -n "$need" ] && [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" != "$need" ]; then
            note "warning: this machine's glibc $have is older than the $need the bundle was built against; the binaries may not start"
        fi
    fi
fi

# ---- OpenCL: an ICD file for the NVIDIA driver where it has none.
vendors=${KILN_FIELD_VENDORS_DIR:-/etc/OpenCL/vendors}
search=${KILN_FIELD_NVIDIA_SEARCH:-/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:/usr/lib64:/lib64:/usr/lib:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:/usr/lib/nvidia:/run/nvidia/driver/usr/lib/x86_64-linux-gnu}
nvidia=""
IFS=: read -r -a dirs <<< "$search"
for d in "${dirs[@]}"; do [ -e "$d/libnvidia-opencl.so.1" ] && { nvidia=$d/libnvidia-opencl.so.1; break; }; done
if [ -z "$nvidia" ] && [ -z "${KILN_FIELD_NVIDIA_SEARCH:-}" ]; then
    nvidia=$(cached_lib libnvidia-opencl.so.1)
fi
if [ -n "${OCL_ICD_VENDORS:-}" ]; then
    note "OCL_ICD_VENDORS=$OCL_ICD_VENDORS given: kept"
elif [ -z "$nvidia" ]; then
    note "no libnvidia-opencl.so.1 (searched $search${KILN_FIELD_NVIDIA_SEARCH:+}, ldconfig): OpenCL platforms are those $vendors lists"
elif grep -qs "libnvidia-opencl" "$vendors"/*.icd; then
    note "NVIDIA OpenCL: $nvidia, named by $(grep -ls "libnvidia-opencl" "$vendors"/*.icd | head -n 1)"
else
    mkdir -p "$outdir/opencl-vendors"
    for f in "$vendors"/*.icd; do [ -e "$f" ] && cp "$f" "$outdir/opencl-vendors/"; done
    echo "$nvidia" > "$outdir/opencl-vendors/nvidia.icd"
    export OCL_ICD_VENDORS=$outdir/opencl-vendors
    note "NVIDIA OpenCL: $nvidia has no ICD file in $vendors: wrote $OCL_ICD_VENDORS/nvidia.icd, OCL_ICD_VENDORS=$OCL_ICD_VENDORS"
fi
# The NVIDIA driver's own compiled-kernel cache, fresh for this run, so that the cold start is cold.
export CUDA_CACHE_PATH=$outdir/nvidia-cache

# ---- What to run: the field run, or the dry run's tiny version of each part.
presets=(lean8k tiny5k ref18k strided12k res8k)
shape=${KILN_FIELD_LAUNCH_SHAPE:-auto}
if [ "$dry" = 1 ]; then
    presets=(lean8k)
    shape=${KILN_FIELD_LAUNCH_SHAPE:-gpu}
    total=180  # a deadline, not the expected time: about a minute with a warm PoCL cache, 100 s cold
    parity_args=(--steps 1 --batch-size 8)
    bench_args=(--quick)
    cpu_bench_args=(--quick)
    tune_budget=10
    train_args=(--epochs 1 --train-limit 256 --batch-size 64)
else
    total=480
    parity_args=(--steps 3 --batch-size 32)
    bench_args=(--steps 100 --repeats 3 --test-limit 2000)
    cpu_bench_args=(--steps 40 --repeats 3 --test-limit 2000)
    tune_budget=120
    train_args=(--epochs 15)
fi
total=${KILN_FIELD_DEADLINE:-$total}
case "$total" in ''|*[!0-9]*) die "KILN_FIELD_DEADLINE must be a number of seconds, got $total" ;; esac
models=$(IFS=,; echo "${presets[*]}")

# ---- The parts. plan() runs twice: first adding up each part's minimum seconds (so an overrunning part
# leaves the later ones their minimum), then running them. part NAME LIMIT MIN COMMAND…
deadline=$((started + total)) mins_left=0 counting=1 failures=0
printf 'part\tstatus\tseconds\tlimit\tcommand\n' > "$outdir/parts.tsv"
part() {
    local name=$1 limit=$2 min=$3; shift 3
    [ "$dry" = 0 ] || min=$((min / 10))
    if [ "$counting" = 1 ]; then mins_left=$((mins_left + min)); return 0; fi
    mins_left=$((mins_left - min))
    local now t start rc status seconds
    now=$(date +%s)
    t=$((deadline - now - mins_left)); [ "$t" -le "$limit" ] || t=$limit
    if [ "$t" -lt 5 ]; then
        note "$name: skipped, no time left"; failures=$((failures + 1))
        printf '%s\tskipped (no time left)\t0\t0\t%s\n' "$name" "$*" >> "$outdir/parts.tsv"
        return 0
    fi
    [ "$name" != tune-lean8k ] || { local b=$((t - 40)); [ "$b" -ge "$tune_budget" ] || tune_budget=$((b < 10 ? 10 : b)); set -- "$@" --budget "$tune_budget"; }
    note "$name (limit ${t}s): $*"
    start=$(date +%s%N)
    set +e
    (cd "$outdir" && exec timeout -k 10 "$t" "$@") > "$outdir/logs/$name.log" 2>&1 < /dev/null
    rc=$?
    set -e
    seconds=$(( ($(date +%s%N) - start) / 100000000 )); seconds=$((seconds / 10)).$((seconds % 10))
    case $rc in
        0) status=ok ;;
        124|137) status="timed out after ${t} s"; failures=$((failures + 1)) ;;
        *) status="failed (exit $rc): $(grep -v '^[[:space:]]*$' "$outdir/logs/$name.log" | tail -n 1 | cut -c1-160 | tr '\t|' '  ')"
           failures=$((failures + 1)) ;;
    esac
    note "$name: $status, $seconds s"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$seconds" "$t" "$*" >> "$outdir/parts.tsv"
}
plan() {
    local cold=$outdir/cache
    part devices 30 5 "$kiln" devices --cache-dir "$outdir/cache-devices"
    for p in "${presets[@]}"; do
        part "parity-$p" 60 10 "$kiln" parity --model "$p" --device opencl "${parity_args[@]}" --json "$outdir/parity-$p.json" \
            --cache-dir "$outdir/cache-parity" --launch-shape "$shape"
    done
    part bench-gpu-cold 120 30 "$bench" --devices opencl --models "$models" "${bench_args[@]}" --profile --cache-dir "$cold" \
        --out "$outdir/bench-gpu-cold" --launch-shape "$shape"
    part bench-gpu-warm 90 20 "$bench" --devices opencl --models "$models" "${bench_args[@]}" --profile --cache-dir "$cold" \
        --out "$outdir/bench-gpu-warm" --launch-shape "$shape"
    part bench-cpu 90 20 "$bench" --devices cpu --models "$models" "${cpu_bench_args[@]}" --out "$outdir/bench-cpu"
    part tune-lean8k 180 40 "$kiln" tune --device opencl --model lean8k --cache-dir "$cold"
    part bench-gpu-tuned 60 15 "$bench" --devices opencl --models lean8k "${bench_args[@]}" --cache-dir "$cold" \
        --out "$outdir/bench-gpu-tuned" --launch-shape "$shape"
    part train-lean8k 240 120 "$kiln" train --model lean8k --device opencl "${train_args[@]}" --cache-dir "$cold" \
        --log "$outdir/train-lean8k.jsonl" --launch-shape "$shape"
}
note "$([ "$dry" = 1 ] && echo "dry run" || echo "field run") into $outdir with $bindir, deadline ${total} s"
plan
counting=0
plan
wall=$(( $(date +%s) - started ))

# ---- summary.md: what ran, then the figures.
{
    echo "# Kiln GPU field run$([ "$dry" = 1 ] && echo " (dry run: tiny limits, not measurements)")"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), wall time $wall s (deadline $total s)"
    echo "- machine: $(uname -srm), $(nproc 2>/dev/null || echo '?') cores, $(getconf GNU_LIBC_VERSION 2>/dev/null || echo 'glibc ?')"
    if command -v nvidia-smi >/dev/null; then
        timeout 20 nvidia-smi > "$outdir/logs/nvidia-smi.log" 2>&1 || true
        echo "- GPU: $(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 2 | tr '\n' ';' | sed 's/;$//')"
    else
        echo "- GPU: no nvidia-smi on the PATH"
    fi
    [ -f "$here/BUILD_INFO" ] && echo "- build: $(cat "$here/BUILD_INFO")"
    echo "- binaries: $bindir; launch shape: $shape"
    sed -n 's/^field-run: \(NVIDIA OpenCL\|no libnvidia\|OCL_ICD_VENDORS\|no libstdc\|.*lacks GLIBCXX\|warning\)/- \1/p' "$outdir/logs/field-run.log"
    echo
    echo "| part | status | seconds | limit s |"
    echo "|---|---|---|---|"
    sed 1d "$outdir/parts.tsv" | while IFS=$'\t' read -r name status seconds limit _; do echo "| $name | $status | $seconds | $limit |"; done
    echo
    echo "Commands: \`parts.tsv\`; output of each part: \`logs/PART.log\`."
    echo
} > "$outdir/summary.md"
python=""
if [ "${KILN_FIELD_NO_PYTHON:-0}" != 1 ] && command -v python3 >/dev/null && python3 -c 'import json' 2>/dev/null; then python=python3; fi
if [ -n "$python" ] && "$python" "$here/field-summary.py" "$outdir" >> "$outdir/summary.md" 2> "$outdir/logs/summary.log"; then
    :
else
    {
        [ -n "$python" ] && echo "(field-summary.py failed: see logs/summary.log; the logs' key lines instead)" \
            || echo "(no python3: the logs' key lines instead of the figures)"
        echo
        echo '```'
        grep -h -E "^(opencl|cpu|auto picks|[a-z0-9:. ]+ cache:)" "$outdir/logs/devices.log" 2>/dev/null || true
        for f in "$outdir"/logs/parity-*.log; do
            [ -e "$f" ] && { name=${f##*/}; echo "${name%.log}: $(grep -h -E "parity (passed|FAILED)|^Error" "$f" | tail -n 1)"; }
        done
        grep -h -E "^(GEMM|kept|No tuner|CLBlast's own)|GFLOP" "$outdir/logs/tune-lean8k.log" 2>/dev/null || true
        grep -h -E "Test set:|^Epoch|images/s" "$outdir/logs/train-lean8k.log" 2>/dev/null | tail -n 40 || true
        echo '```'
        for b in bench-gpu-cold bench-gpu-warm bench-cpu bench-gpu-tuned; do
            if [ -f "$outdir/$b/results.md" ]; then echo; echo "### $b"; echo; sed -n '/^| model/,/^$/p' "$outdir/$b/results.md"; fi
        done
    } >> "$outdir/summary.md"
fi

if [ "$failures" -gt 0 ]; then
    echo "field-run: $failures part(s) failed, timed out or were skipped in $wall s; see $outdir/summary.md" >&2
    exit 1
fi
note "all parts ok in $wall s; $outdir/summary.md"
