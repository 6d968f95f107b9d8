#!/usr/bin/env bash
# `kiln report` in a real browser (`make test` runs it): two short runs and a checkpoint make a page,
# which headless Chromium renders to a PNG. The page must be self-contained (no scripts, nothing to
# fetch) and the screenshot must hold a drawn page, not a blank or an error page.
# usage: report-render.sh KILN CHROMIUM [SCREENSHOT.png]
set -euo pipefail
KILN=$(realpath "$1")
CHROMIUM=$2
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shot=${3:-$work/report.png}

for seed in 1 2; do
    "$KILN" train --device cpu --train-limit 2048 --epochs 3 --seed "$seed" --data "$root/Data/mnist" \
        --log "$work/lean8k-s$seed.jsonl" --save "$work/lean8k-s$seed.safetensors" >/dev/null
done
"$KILN" report "$work"/*.jsonl --checkpoint "$work/lean8k-s1.safetensors" --data "$root/Data/mnist" --misclassified 24 \
    --target 97 --title "lean8k, 3 epochs on 2,048 images" --out "$work/report.html"

page=$work/report.html
if grep -q '<script' "$page" || sed 's#http://www.w3.org/2000/svg##g' "$page" | grep -q 'http'; then
    echo "report-render: the page has a script or fetches something"; exit 1
fi
[ "$(grep -o 'data:image/png;base64,' "$page" | wc -l)" -eq 24 ] || { echo "report-render: expected 24 pictures"; exit 1; }

# A fresh profile each time; --no-sandbox because CI runs as root.
"$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile" \
    --window-size=1200,2400 --screenshot="$shot" "file://$page" >/dev/null 2>&1
[ -s "$shot" ] || { echo "report-render: Chromium wrote no screenshot"; exit 1; }
# A PNG of the window's size; a drawn page compresses far less than a blank one (a blank 1200x2400 is ~15 KB).
[ "$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || { echo "report-render: not a PNG"; exit 1; }
size=$(od -An -tu1 -j16 -N8 "$shot" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}')
bytes=$(stat -c %s "$shot")
[ "$size" = "1200x2400" ] && [ "$bytes" -gt 100000 ] || { echo "report-render: a ${size} screenshot of $bytes bytes looks blank"; exit 1; }
echo "report-render: Chromium drew the report ($size, $bytes bytes)"
