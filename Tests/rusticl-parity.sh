#!/usr/bin/env bash
# `kiln parity` for every preset on a second OpenCL implementation, Mesa's rusticl on llvmpipe: another
# compiler and runtime than PoCL's, so a kernel that leans on one implementation's leniency shows up.
# Both launch cuts. Skipped with one line where rusticl has no device (mesa-opencl-icd not installed).
# Usage: Tests/rusticl-parity.sh KILN      (make rusticl-parity)
set -euo pipefail
KILN=$(realpath "${1:?usage: Tests/rusticl-parity.sh KILN}")
export RUSTICL_ENABLE=llvmpipe
device=$("$KILN" devices | awk '/\| platform rusticl \|/ { print $1; exit }')
if [ -z "$device" ]; then
    echo "rusticl-parity: skipped, no rusticl device (apt-get install mesa-opencl-icd; see make sanitize-deps)"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
started=$SECONDS
for shape in gpu cpu; do
    for model in lean8k tiny5k strided12k ref18k res8k; do
        t=$SECONDS
        # rusticl warns on stderr about kernels it compiles ("MESA: warning: …"); only Kiln's lines count.
        if "$KILN" parity --model "$model" --device "$device" --launch-shape "$shape" --batch-size 5 --steps 2 --quiet \
            --cache-dir "$work/cache" >"$work/out" 2>"$work/err"; then
            echo "ok      $model on rusticl $device, $shape launches ($((SECONDS - t)) s): $(tail -1 "$work/out")"
        else
            echo "FAILED  $model on rusticl $device, $shape launches:"; sed 's/^/        /' "$work/out" "$work/err" | grep -v '^ *[0-9]' | head -20
            failed=1
        fi
    done
done
[ "$failed" = 0 ] && echo "rusticl-parity passed ($((SECONDS - started)) s)" || { echo "rusticl-parity FAILED"; exit 1; }
