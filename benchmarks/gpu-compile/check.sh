#!/usr/bin/env bash
# Offline check that Kiln's OpenCL kernels compile for real GPU instruction sets (AMD GCN/RDNA, NVIDIA
# PTX) with clang, no GPU needed. Fails on any compiler warning or error, and on AMD register spills.
# Prints a markdown resource table per target; `--out FILE` also writes it to FILE.
# Usage: benchmarks/gpu-compile/check.sh [--out FILE]      (run from anywhere; needs `make deps`)
set -euo pipefail
cd "$(dirname "$0")/../.."   # the repository root: paths below and in the report are relative to it
SELF=benchmarks/gpu-compile/check.sh

# Kiln's build options live in OpenCLDevice.swift (`options:` in init). Its fixed flags are read from
# there; each `-D NAME=\(value)` it interpolates takes its values from VARIANTS, one compile per entry.
# REDUCE_GROUP is a power of two <= 64: 64 on GPUs, 16 covers a device whose kernels allow fewer.
# Add new -D's here.
SWIFT=Sources/Kiln/Devices/OpenCL/OpenCLDevice.swift
VARIANTS=("REDUCE_GROUP=64" "REDUCE_GROUP=16")
# convolution.cl is its own program, built per layer with the window and tiling constants that
# OpenCLConvolution.swift picks on a GPU (ConvTiling: OXT CT; WeightTiling: WCT WKY; BNC the channels
# of a fused batch norm, 0 for none; STATS=1 the forward that computes its statistics; ACC=1 an input
# gradient added to another reader's; DIL a dilation, GROUPS channel groups): the largest tiles of each
# kernel, the smallest, the strided, 5x5 and padded 1x1 windows the tests use, and grouped/dilated ones.
CONV_VARIANTS=("KS=3 ST=1 OXT=4 CT=8 WCT=4 WKY=3 BNC=16 STATS=1" "KS=3 ST=1 OXT=1 CT=8 WCT=8 WKY=3 BNC=0"
               "KS=3 ST=1 OXT=1 CT=1 WCT=1 WKY=1 BNC=8" "KS=3 ST=2 OXT=1 CT=8 WCT=4 WKY=3 BNC=16 STATS=1"
               "KS=3 ST=2 OXT=4 CT=8 WCT=8 WKY=3 BNC=0" "KS=5 ST=2 OXT=4 CT=8 WCT=2 WKY=5 BNC=0"
               "KS=5 ST=1 OXT=1 CT=2 WCT=4 WKY=1 BNC=3" "KS=1 ST=1 OXT=4 CT=8 WCT=8 WKY=1 BNC=0"
               "KS=3 ST=1 OXT=4 CT=8 WCT=4 WKY=3 BNC=16 ACC=1" "KS=3 ST=2 OXT=1 CT=8 WCT=4 WKY=3 BNC=16 ACC=1"
               "KS=3 ST=1 OXT=4 CT=1 WCT=1 WKY=3 BNC=32 STATS=1 DIL=2 GROUPS=32" "KS=3 ST=2 OXT=1 CT=1 WCT=1 WKY=3 BNC=16 ACC=1 DIL=2 GROUPS=16"
               "KS=3 ST=1 OXT=4 CT=8 WCT=8 WKY=3 BNC=0 ACC=1 GROUPS=2" "KS=1 ST=1 OXT=4 CT=4 WCT=4 WKY=1 BNC=0 GROUPS=4")
# AMD: CDNA2 (MI200, wave64) and RDNA3 (RX 7000, wave32). NVIDIA: sm_80 (A100), clang-15's newest but one.
AMD_CPUS=(gfx90a gfx1100)
NV_ARCH=sm_80
# -Wall -Wextra plus what matters on GPUs: silent double maths, lossy float/int conversions, undefined
# macros in #if (a -D missing). Not flagged: int <-> size_t mixing (`int i = get_global_id(0)`,
# `n / get_local_size(0)`), which is idiomatic; -Wextra still flags signed/unsigned comparisons.
WARN="-Wall -Wextra -Wconversion -Wno-shorten-64-to-32 -Wno-sign-conversion -Wdouble-promotion -Wundef -Wshadow"
CLANG=${CLANG:-clang-15}
KERNELS=${KERNELS:-Kernels}   # a temp copy can be checked instead (KERNELS=/tmp/k ...)

OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=${2:?--out needs a file}; shift 2 ;;
        *) echo "usage: $SELF [--out FILE]" >&2; exit 2 ;;
    esac
done
die() { echo "kernel-check: FAIL: $*" >&2; exit 1; }
command -v "$CLANG" >/dev/null || die "$CLANG not found (make deps installs clang-15)"
# Without AMD's device library every builtin (get_global_id, exp, barrier...) is an external call and
# the counts are meaningless (16 KiB assumed stack); Debian's rocm-device-libs is built for clang-15.
LIBS=${ROCM_DEVICE_LIBS:-$(dirname "$(ls /usr/lib/*/amdgcn/bitcode/ocml.bc 2>/dev/null | head -1)")}
[ -f "$LIBS/ocml.bc" ] || die "no ROCm device library (make deps installs rocm-device-libs)"

# The fixed options, and the names Kiln sets with interpolated -D's, from the Swift source.
opts=$(grep -o 'options: "[^"]*"' "$SWIFT" | head -1 | sed 's/^options: "//; s/"$//') || true
[ -n "$opts" ] || die "no 'options: \"...\"' in $SWIFT: update $SELF to how Kiln builds its program now"
read -ra tokens <<<"$opts"
FIXED=() NAMES=()
for ((i = 0; i < ${#tokens[@]}; i++)); do
    t=${tokens[i]}
    [ "$t" = -D ] && { i=$((i + 1)); t=-D${tokens[i]}; }
    if [[ $t == *'\('* ]]; then
        [[ $t == -D* ]] || die "$SWIFT interpolates '$t' in its options: $SELF cannot mirror it"
        n=${t#-D}; NAMES+=("${n%%=*}")
    else FIXED+=("$t"); fi
done
for v in "${VARIANTS[@]}"; do for n in "${NAMES[@]}"; do
    [[ " $v" == *" $n="* ]] || die "Kiln passes -D $n but VARIANTS entry '$v' sets no value for it (top of $SELF)"
done; done

WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
# The programs as Kiln builds them: common.cl first, then the rest in name order, each behind `#line`;
# convolution.cl apart.
program() { for f in "$KERNELS/common.cl" "$@"; do printf '#line 1 "%s"\n' "$(basename "$f")"; cat "$f"; echo; done; }
program $(ls "$KERNELS"/*.cl | LC_ALL=C sort | grep -v '/common\.cl$' | grep -v '/convolution\.cl$') >"$WORK/all.cl"
program "$KERNELS/convolution.cl" >"$WORK/conv.cl"
BUILDS=()
for v in "${VARIANTS[@]}"; do BUILDS+=("all.cl:$v"); done
for v in "${CONV_VARIANTS[@]}"; do BUILDS+=("conv.cl:${VARIANTS[0]} $v"); done

# Debian's device library predates gfx1100 (it only lacks the ISA-version constant, which ockl reads
# for a few version-gated paths): synthesise it as major*1000 + minor*100 + stepping.
mkdir "$WORK/lib"; ln -s "$LIBS"/*.bc "$WORK/lib/"
for cpu in "${AMD_CPUS[@]}"; do
    v=${cpu#gfx}; [ -e "$WORK/lib/oclc_isa_version_$v.bc" ] && continue
    [[ $v =~ ^[0-9]+$ ]] || die "no oclc_isa_version_$v.bc for $cpu"
    printf 'target triple = "amdgcn-amd-amdhsa"\n@__oclc_ISA_version = linkonce_odr protected local_unnamed_addr addrspace(4) constant i32 %d, align 4\n' \
        $((${v:0:-2} * 1000 + ${v: -2:1} * 100 + ${v: -1})) >"$WORK/isa.ll"
    "$CLANG" -target amdgcn-amd-amdhsa -nogpulib -x ir -c -emit-llvm -o "$WORK/lib/oclc_isa_version_$v.bc" "$WORK/isa.ll"
done

# Compiles $SOURCE for one target; any diagnostic at all (warning or error) fails the check.
compile() { # label output clang-target-flags...
    local label=$1 out=$2; shift 2
    if ! "$CLANG" -x cl "${FIXED[@]}" -Xclang -finclude-default-header -O2 $WARN $DEFS "$@" \
            -S -o "$out" "$WORK/$SOURCE" 2>"$WORK/err" || [ -s "$WORK/err" ]; then
        cat "$WORK/err" >&2; die "$label: compiler diagnostics above (file:line is per kernel file)"
    fi
}

VERSION=$("$CLANG" --version | head -1)
LIBVER=$(dpkg-query -W -f='${Version}' rocm-device-libs 2>/dev/null || echo "at $LIBS")
{
    echo "# OpenCL kernel resources"
    echo
    echo "Generated by \`$SELF${OUT:+ --out $OUT}\` with $VERSION and rocm-device-libs $LIBVER."
    echo
    echo "Kernels/*.cl built as Kiln builds them (one program, and Kernels/convolution.cl apart, once per"
    echo "window and tiling), with \`${FIXED[*]} -O2 $WARN\` plus each section's -D's. AMD figures are the code object's metadata (LDS: static \`__local\` only;"
    echo "waves/SIMD: the compiler's occupancy estimate). PTX has no physical registers, so NVIDIA shows"
    echo "shared and local (stack) bytes only."
} >"$WORK/report.md"

for build in "${BUILDS[@]}"; do
    SOURCE=${build%%:*} v=${build#*:}
    DEFS=$(printf -- '-D%s ' $v)
    for cpu in "${AMD_CPUS[@]}"; do
        label="amdgcn $cpu, ${SOURCE%.cl}, $v"
        compile "$label" "$WORK/amd.s" -target amdgcn-amd-amdhsa -mcpu="$cpu" --rocm-device-lib-path="$WORK/lib"
        # Occupancy is only in the asm comments (after each kernel's `.size NAME,`); the rest is in the
        # amdhsa.kernels YAML at the end: one `  - ` record per kernel, its own keys at 4 spaces.
        printf '\n## %s\n\n' "$label" >>"$WORK/report.md"
        awk -v label="$label" '
            /^\t\.size\t/ { fn = $2; sub(/,$/, "", fn) }
            /^; Occupancy: / { occ[fn] = $3 }
            function row() { if (name == "") return; rows++
                if (k["vgpr_spill_count"] + k["sgpr_spill_count"] > 0) bad = bad " " name
                printf "| %s | %s | %s | %s | %s | %s | %s |\n", name, k["vgpr_count"], k["sgpr_count"],
                    k["group_segment_fixed_size"], k["private_segment_fixed_size"],
                    k["vgpr_spill_count"] + k["sgpr_spill_count"], occ[name] }
            /^amdhsa.kernels:/ { yaml = 1
                print "| kernel | VGPRs | SGPRs | LDS bytes | scratch bytes | spills | waves/SIMD |"
                print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |" }
            yaml && /^  - / { row(); name = ""; delete k }
            yaml && /^ *- *\.[a-z_]+:/ { sub(/- /, "  ") }   # a record'"'"'s first key rides on its dash
            yaml && /^    \.[a-z_]+:/ { key = substr($1, 2, length($1) - 2); k[key] = $2; if (key == "name") name = $2 }
            END { row(); msg = !rows ? "no kernel metadata in the asm (format changed?)" : bad != "" ? "register spills in:" bad : ""
                  if (msg != "") { print "kernel-check: FAIL: " label ": " msg > "/dev/stderr"; exit 1 } }
        ' "$WORK/amd.s" >>"$WORK/report.md" || exit 1
    done
    label="nvptx64 $NV_ARCH, ${SOURCE%.cl}, $v"
    compile "$label" "$WORK/nv.ptx" -target nvptx64-nvidia-cuda -march="$NV_ARCH" -nogpulib
    printf '\n## %s\n\n| kernel | shared bytes | local bytes |\n| --- | ---: | ---: |\n' "$label" >>"$WORK/report.md"
    # Each `.entry NAME(` body declares its `.shared` variables (arrays, or scalars once split up:
    # `.f32 NAME;`) and a `.local` `__local_depot` (stack) if any: bytes = type width * count.
    awk -v label="$label" 'function row() { if (name != "") { printf "| %s | %d | %d |\n", name, shared, local; rows++ } }
         /^\.visible \.entry / { row(); name = $3; sub(/\(.*/, "", name); shared = local = 0 }
         /^\.visible \.func / { row(); name = "" }
         name != "" && /^\t\.(shared|local) / { bytes = 1
             for (f = 2; f <= NF; f++) if ($f ~ /^\.([bfsu][0-9]+|v[0-9])$/) bytes *= substr($f, 3) / ($f ~ /^\.v/ ? 1 : 8)
             if ($NF ~ /\[[0-9]+\];$/) { n = $NF; gsub(/.*\[|\];/, "", n); bytes *= n }
             if ($1 == ".shared") shared += bytes; else local += bytes }
         END { row(); if (!rows) { print "kernel-check: FAIL: " label ": no .entry in the PTX" > "/dev/stderr"; exit 1 } }
        ' "$WORK/nv.ptx" >>"$WORK/report.md" || exit 1
done

cat "$WORK/report.md"
if [ -n "$OUT" ]; then   # atomically: a reader never sees half a file
    mkdir -p "$(dirname "$OUT")"; cp "$WORK/report.md" "$OUT.tmp.$$" && mv "$OUT.tmp.$$" "$OUT"
fi
echo "kernel-check: OK (${#BUILDS[@]} option sets x $((${#AMD_CPUS[@]} + 1)) targets, no warnings, no spills)" >&2
