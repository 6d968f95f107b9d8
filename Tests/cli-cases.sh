#!/usr/bin/env bash
# The `kiln` command against bad input, faults and misuse, as a new user meets them (`make test` runs
# this after the build; `bash Tests/cli-cases.sh [KILN]`). Every case must end with one clear
# "Error: …" line containing the expected words, a non-zero exit, no trap or backtrace, and nothing
# lost: files that existed before are unchanged. The files it feeds kiln are made here, in a temp folder.
set -u
KILN=$(realpath "${1:-.build/release/kiln}")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cases=0 failures=0
export POCL_CACHE_DIR=$work/pocl-cache

fail() {
    echo "FAIL: $1"
    printf '%s\n' "$2" | tail -n 6 | sed 's/^/    /'
    failures=$((failures + 1))
}

# expect_error WHAT WORDS COMMAND…: a non-zero exit whose "Error:" line contains WORDS.
expect_error() {
    local what=$1 words=$2 output status
    shift 2
    cases=$((cases + 1))
    output=$("$@" 2>&1)
    status=$?
    local line
    line=$(printf '%s\n' "$output" | grep -m1 '^Error: ')
    if [ "$status" -eq 0 ] || [ -z "$line" ] || [[ "$line" != *"$words"* ]] \
        || grep -qE 'Fatal error|Stack dump|Current stack trace|Illegal instruction|Segmentation|AddressSanitizer|^[0-9]+ +(\[[a-z]+\] +)?0x' <<<"$output"; then
        fail "$what (exit $status)" "$output"
    fi
}

# expect_same FILE CHECKSUM WHAT: FILE still has its checksum.
expect_same() {
    cases=$((cases + 1))
    [ "$(sha256sum <"$1")" = "$2" ] || fail "$3: $1 changed" ""
}

# Little-endian 64-bit bytes of $1, for safetensors headers.
le64() { local n=$1 i; for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(((n >> (8 * i)) & 255)))"; done; }
# Big-endian 32-bit bytes of $1, for IDX headers.
be32() { local n=$1; printf "\\x$(printf %02x $(((n >> 24) & 255)))\\x$(printf %02x $(((n >> 16) & 255)))\\x$(printf %02x $(((n >> 8) & 255)))\\x$(printf %02x $((n & 255)))"; }
# idx FILE COUNT SIZE: an IDX image file of COUNT images SIZE×SIZE, or a label file when SIZE is 0.
idx() {
    if [ "$3" -eq 0 ]; then { printf '\x00\x00\x08\x01'; be32 "$2"; head -c "$2" /dev/zero; } >"$1"
    else { printf '\x00\x00\x08\x03'; be32 "$2"; be32 "$3"; be32 "$3"; head -c $(($2 * $3 * $3)) /dev/urandom; } >"$1"; fi
}
# mnist DIR TRAIN TEST TRAINSIZE TESTSIZE: an MNIST-format folder.
mnist() {
    mkdir -p "$1"
    idx "$1/train-images-idx3-ubyte" "$2" "$4"; idx "$1/train-labels-idx1-ubyte" "$2" 0
    idx "$1/t10k-images-idx3-ubyte" "$3" "$5"; idx "$1/t10k-labels-idx1-ubyte" "$3" 0
}
# safetensors FILE HEADER [BODY]: a file with that JSON header.
safetensors() { { le64 ${#2}; printf '%s' "$2"; printf '%s' "${3:-}"; } >"$1"; }
# npy FILE DESCR SHAPE [VALUE…]: a version-1 .npy file of SHAPE ("4, 28, 28"; "4," for one dimension),
# random bytes for DESCR '|u1', else '<i8' holding the VALUEs.
npy() {
    local file=$1 descr=$2 shape=$3 header count=1 d
    shift 3
    header="{'descr': '$descr', 'fortran_order': False, 'shape': ($shape), }"
    header+=$(printf '%*s' $((63 - (10 + ${#header}) % 64)) '')
    {
        printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(((${#header} + 1) & 255)))\\x$(printf %02x $(((${#header} + 1) >> 8)))"
        printf '%s\n' "$header"
        if [ "$descr" = "|u1" ]; then for d in ${shape//,/ }; do count=$((count * d)); done; head -c "$count" /dev/urandom
        else for d in "$@"; do le64 "$d"; done; fi
    } >"$file"
}
# numpy DIR SIZE "TRAIN LABELS" "TEST LABELS": a NumPy data folder of random grey SIZExSIZE images.
numpy() {
    local train=($3) test=($4)
    mkdir -p "$1"
    npy "$1/x_train.npy" '|u1' "${#train[@]}, $2, $2"; npy "$1/y_train.npy" '<i8' "${#train[@]}," "${train[@]}"
    npy "$1/x_test.npy" '|u1' "${#test[@]}, $2, $2"; npy "$1/y_test.npy" '<i8' "${#test[@]}," "${test[@]}"
}

quick=(--device cpu --threads 1 --train-limit 128 --batch-size 64)

# --- Data that does not fit the model, or no data ---
mnist sizes 4 4 28 32
expect_error "train and test images of different sizes" "the test images of" "$KILN" train "${quick[@]}" --data sizes --epochs 1
mnist empty 0 4 28 28
expect_error "an empty training split" "has no images" "$KILN" train "${quick[@]}" --data empty --epochs 1
mnist tiny 4 4 1 1
expect_error "1x1 images for a 28x28 model" "takes [1, 28, 28] images" "$KILN" train "${quick[@]}" --data tiny --epochs 1
{ printf '\x00\x00\x08\x03'; be32 4294967295; be32 4294967295; be32 4294967295; } >huge-images
mkdir -p overflow && cp huge-images overflow/train-images-idx3-ubyte && cp sizes/train-labels-idx1-ubyte sizes/t10k-* overflow/
expect_error "IDX dimensions whose product overflows" "more than 2 GiB" "$KILN" train "${quick[@]}" --data overflow --epochs 1
mkdir -p bomb && cp sizes/train-labels-idx1-ubyte sizes/t10k-* bomb/
{ printf '\x00\x00\x08\x03'; be32 4; be32 28; be32 28; head -c 300000000 /dev/zero; } | gzip -1 >bomb/train-images-idx3-ubyte.gz
expect_error "a gzip bomb (300 MB of zeros)" "more data than the header" "$KILN" train "${quick[@]}" --data bomb --epochs 1
expect_error "a missing data folder" "no such data folder" "$KILN" train "${quick[@]}" --data nowhere --epochs 1
numpy stray 28 "0 1 200 3" "0 1"
expect_error "a NumPy label 200 for a 10-class model" "y_train.npy: label 200 at index 2 is out of range for model lean8k's 10 classes" \
    "$KILN" train "${quick[@]}" --data stray --epochs 1
numpy channels-first 28 "0 1 0 1" "1 0" && npy channels-first/x_train.npy '|u1' "4, 1, 28, 28"
expect_error "NumPy images [N, C, H, W]" "look like [N, C, H, W]" "$KILN" train "${quick[@]}" --data channels-first --epochs 1

# --- Flags out of range ---
expect_error "--rotate inf" "--rotate must be" "$KILN" train --rotate inf
expect_error "--shift 1e30" "--shift must be" "$KILN" train --shift 1e30
expect_error "--shift inf" "--shift must be" "$KILN" train --shift inf
expect_error "--batch-size near Int.max" "--batch-size must be" "$KILN" train --batch-size 9223372036854775807
expect_error "--epochs near Int.max" "--epochs must be" "$KILN" train --epochs 9223372036854775807
expect_error "--threads near Int.max" "--threads must be" "$KILN" train --threads 9223372036854775807
expect_error "--lr nan" "--lr" "$KILN" train --lr nan
expect_error "--label-smoothing 1" "--label-smoothing must be in [0, 1)" "$KILN" train --label-smoothing 1
expect_error "--label-smoothing nan" "--label-smoothing must be in [0, 1)" "$KILN" train --label-smoothing nan
expect_error "--shuffle sometimes" "'sometimes' is invalid for '--shuffle" "$KILN" train --shuffle sometimes
expect_error "--ema 1" "--ema must be a decay between 0 and 1" "$KILN" train --ema 1
expect_error "--ema 0" "--ema must be a decay between 0 and 1" "$KILN" train --ema 0
expect_error "an unknown device" "--device gpu7" "$KILN" train --device gpu7
expect_error "an unknown model" "unknown model" "$KILN" train --model lean9k
expect_error "an empty item in --lr" "--lr 0.1,,0.2: expected a comma-separated list of valid values (item 2 is empty)" \
    "$KILN" sweep "${quick[@]}" --epochs 1 --last 1 --out sweep-lr --lr 0.1,,0.2
expect_error "a trailing comma in --seeds" "(item 2 is empty)" "$KILN" sweep "${quick[@]}" --epochs 1 --last 1 --out sweep-seeds --seeds 1,
expect_error "--last above --epochs" "--last 3 must be between 1 and --epochs (1)" "$KILN" sweep --epochs 1 --last 3
touch a-file
expect_error "--cache-dir naming a file" "--cache-dir a-file: it is a file, not a folder" "$KILN" train "${quick[@]}" --epochs 1 --cache-dir a-file
# kiln tune finds out that it cannot store its result before it spends its budget (PoCL, where installed).
mkdir -p tune-cache && touch tune-cache/clblast
if "$KILN" devices 2>/dev/null | grep -q 'opencl:'; then
    expect_error "kiln tune into a cache it cannot write" "cannot create the cache folder (it is a file, not a folder)" \
        timeout 60 "$KILN" tune --device opencl --cache-dir tune-cache --budget 600
fi

# --- Models that cannot be built ---
printf '%s' '{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 1000000, "kernel": 3}, {"type": "globalavgpool"},
  {"type": "conv2d", "out": 10, "kernel": 1}, {"type": "logsoftmax"}]}' >wide.json
expect_error "a model too large for memory" "more than this machine's memory" "$KILN" train "${quick[@]}" --model wide.json --epochs 1
printf '%s' '{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 10, "kernel": 3, "padding": 100000}, {"type": "globalavgpool"}, {"type": "logsoftmax"}]}' >padded.json
expect_error "padding 100000" "more than 2^31 elements" "$KILN" train "${quick[@]}" --model padded.json --epochs 1
printf '%s' '{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 10, "kernel": 3, "stride": 0}]}' >stride.json
expect_error "stride 0" "stride must be at least 1" "$KILN" summary --model stride.json
printf '%s' '{"input": [3, 28, 28], "layers": [{"type": "conv2d", "out": 8, "kernel": 3, "groups": 2}]}' >groups.json
expect_error "groups that do not divide the input channels" 'layer 0 (conv2d): groups 2 must divide the input channels (3) and "out" (8)' \
    "$KILN" summary --model groups.json
printf '%s' '{"input": [3, 28, 28], "layers": [{"type": "conv2d", "out": 10, "kernel": 28}, {"type": "logsoftmax"}]}' >rgb.json
expect_error "parity of a 3-channel model on MNIST" "takes [3, 28, 28] images" "$KILN" parity --model rgb.json
printf 'not json' >garbage.json
expect_error "a spec that is not JSON" "garbage.json: not JSON" "$KILN" summary --model garbage.json
printf '%s' '{"name": "a\"b", "input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 10, "\u006fut": 20, "kernel": 28}, {"type": "logsoftmax"}]}' >twice.json
expect_error "a key given twice (once escaped)" 'twice.json: the key "out" appears twice in layers[0]' "$KILN" summary --model twice.json
printf '%s' '{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 4, "kernel": 3}, {"type": "linear", "out": 10}, {"type": "logsoftmax"}]}' >noflatten.json
expect_error "linear after a conv, the file named once" "Error: noflatten.json: layer 1 (linear)" "$KILN" summary --model noflatten.json

# --- Checkpoints: broken, foreign, or of another model ---
"$KILN" train "${quick[@]}" --epochs 1 --save good.safetensors >/dev/null 2>&1 || fail "training a checkpoint" ""
good=$(sha256sum <good.safetensors)
spec=$("$KILN" summary --spec | tr -d '\n' | sed 's/"/\\"/g')
safetensors negative.safetensors "{\"__metadata__\": {\"kiln.spec\": \"$spec\", \"kiln.epoch\": \"-3\"}}"
expect_error "a negative kiln.epoch" "kiln.epoch is -3, not a count" "$KILN" eval --checkpoint negative.safetensors --device cpu
safetensors offsets.safetensors '{"0.weight": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}}' 0123456789abcdef
expect_error "safetensors shape whose size overflows" "does not fit its shape" "$KILN" eval --checkpoint offsets.safetensors --device cpu
safetensors length.safetensors '{}' && printf '\xff\xff\xff\xff\xff\xff\xff\x7f' | dd of=length.safetensors conv=notrunc status=none
expect_error "a header length past the file" "exceeds the file" "$KILN" eval --checkpoint length.safetensors --device cpu
head -c 100 good.safetensors >cut.safetensors
expect_error "a truncated checkpoint" "cut.safetensors" "$KILN" eval --checkpoint cut.safetensors --device cpu
expect_error "a checkpoint on data of another size" "takes [1, 28, 28] images" "$KILN" eval --checkpoint good.safetensors --device cpu --data sizes
expect_error "a missing checkpoint" "missing.safetensors" "$KILN" eval --checkpoint missing.safetensors --device cpu
# Labels need only be classes of the model: a 10-class model on data labelled 0 and 1 trains and evaluates.
numpy binary 28 "0 1 1 0" "1 0 1"
cases=$((cases + 1))
output=$("$KILN" eval --checkpoint good.safetensors --device cpu --data binary --confusion 2>&1 && "$KILN" train "${quick[@]}" --data binary --epochs 1 2>&1) \
    || fail "a 10-class model on labels 0 and 1" "$output"

# CIFAR-10's binary batches: a record is a label byte, then 3,072 bytes of red, green and blue planes.
# cifar DIR RECORDS: the six files of RECORDS random records each, labels 0-9 in turn.
cifar() {
    local file r
    mkdir -p "$1"
    for file in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
        for ((r = 0; r < $2; r++)); do printf "\\x0$((r % 10))"; head -c 3072 /dev/urandom; done >"$1/$file.bin"
    done
}
cifar cifar-cut 4 && truncate -s 5000 cifar-cut/data_batch_2.bin
expect_error "a CIFAR-10 file cut short" "cifar-cut/data_batch_2.bin is 5000 bytes, not a whole number of 3,073-byte records" \
    "$KILN" train "${quick[@]}" --data cifar-cut --epochs 1
cifar cifar-label 4 && printf '\x0a' | dd of=cifar-label/data_batch_4.bin bs=1 seek=$((2 * 3073)) conv=notrunc status=none
expect_error "a CIFAR-10 label 10" "cifar-label/data_batch_4.bin: record 2 has label 10, not a class 0-9" \
    "$KILN" train "${quick[@]}" --data cifar-label --epochs 1
cifar cifar-gap 4 && rm cifar-gap/data_batch_3.bin
expect_error "a CIFAR-10 folder without data_batch_3.bin" "cifar-gap/data_batch_3.bin: file not found" \
    "$KILN" train "${quick[@]}" --data cifar-gap --epochs 1
cifar cifar-untested 4 && rm cifar-untested/test_batch.bin
expect_error "a CIFAR-10 folder without test_batch.bin" "cifar-untested/test_batch.bin: file not found" \
    "$KILN" train "${quick[@]}" --data cifar-untested --epochs 1
# The folder the tarball unpacks into trains (the first 12 of 20 images) and its checkpoint evaluates.
cifar cifar-tarball/cifar-10-batches-bin 4
printf '%s' '{"name": "cifar-small", "input": [3, 32, 32], "layers": [{"type": "conv2d", "out": 8, "kernel": 3, "bias": false},
  {"type": "relu"}, {"type": "batchnorm2d"}, {"type": "globalavgpool"}, {"type": "conv2d", "out": 10, "kernel": 1},
  {"type": "logsoftmax"}]}' >cifar-small.json
cases=$((cases + 1))
output=$("$KILN" train --data cifar-tarball --model cifar-small.json --epochs 1 --device cpu --threads 1 --batch-size 4 \
             --train-limit 12 --save cifar.safetensors 2>&1 \
         && "$KILN" eval --checkpoint cifar.safetensors --data cifar-tarball --device cpu --threads 1 2>&1)
[ $? -eq 0 ] && [[ "$output" == *"12 training images"* ]] && [[ "$output" == *"augmentation crop padded 4 (zero), flip,"* ]] \
    || fail "training and evaluating on a CIFAR-10 folder (colour images' default augmentation)" "$output"
cases=$((cases + 1))
output=$("$KILN" train --data cifar-tarball --model cifar-small.json --epochs 1 --device cpu --threads 1 --batch-size 4 \
             --train-limit 12 --crop-padding 4 --padding-mode reflect --no-flip --cutout 16 --log cifar-augmented.jsonl 2>&1)
[ $? -eq 0 ] && [[ "$output" == *"augmentation crop padded 4 (reflect), cutout 16,"* ]] \
    && grep -q '"augmentation":"crop padded 4 (reflect), cutout 16"' cifar-augmented.jsonl \
    || fail "crop, reflect padding and cutout on CIFAR-10, in the run report too" "$output"
# Augmentation that does not fit the images or itself.
cifar_run=("$KILN" train --data cifar-tarball --model cifar-small.json --epochs 1 --device cpu --threads 1 --batch-size 4 --train-limit 12)
expect_error "--crop-padding the image size" "--crop-padding 32 must be between 0 and 31 on 32×32 images" "${cifar_run[@]}" --crop-padding 32
expect_error "--crop-padding below 0" "--crop-padding must be 0 or more" "${cifar_run[@]}" --crop-padding=-1
expect_error "--cutout above the image size" "--cutout 33 must be between 1 and the image size 32" "${cifar_run[@]}" --cutout 33
expect_error "--cutout 0" "--cutout must be at least 1" "${cifar_run[@]}" --cutout 0
expect_error "--crop-padding with --rotate" "--crop-padding with --rotate/--shift: both move the image, use one of them" \
    "${cifar_run[@]}" --crop-padding 2 --rotate 5
expect_error "--no-augment with augmentation flags" "--no-augment turns every augmentation off; drop --flip, --cutout" \
    "${cifar_run[@]}" --no-augment --flip --cutout 4
expect_error "--padding-mode without a crop (MNIST)" "--padding-mode pads a crop, and this run has none: pass --crop-padding" \
    "$KILN" train "${quick[@]}" --epochs 1 --padding-mode reflect
expect_error "an unknown --padding-mode" "--padding-mode" "${cifar_run[@]}" --padding-mode mirror
expect_error "--resume with --flip" "drop --flip" "$KILN" train --resume cifar.safetensors --epochs 2 --flip --device cpu

# Checkpoints whose contents training would have refused: loading refuses them too, and writes nothing.
tamper() {  # tamper FROM TO WHAT: a copy of a checkpoint with one thing made wrong
    python3 - "$@" <<'PY'
import json, struct, sys
src, dst, what = sys.argv[1:4]
data = open(src, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header, body = json.loads(data[8:8 + n]), bytearray(data[8 + n:])
meta = header["__metadata__"]
def first(name, value):
    at = header[name]["data_offsets"][0]
    body[at:at + 4] = struct.pack("<f", value)
def options(change):
    o = json.loads(meta["kiln.options"]); change(o); meta["kiln.options"] = json.dumps(o)
if what == "nan": first("0.weight", float("nan"))
if what == "variance": first("2.running_var", -1.0)
if what == "std": options(lambda o: o["normalization"].update(std=[0.0]))
if what == "normalization": options(lambda o: o.pop("normalization"))
if what == "logsoftmax":
    spec = json.loads(meta["kiln.spec"]); spec["layers"].pop(); meta["kiln.spec"] = json.dumps(spec)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + bytes(body))
PY
}
tamper good.safetensors nan.safetensors nan
expect_error "a NaN weight" "tensor 0.weight holds nan" "$KILN" eval --checkpoint nan.safetensors --device cpu
expect_error "export of a NaN weight" "tensor 0.weight holds nan" "$KILN" export --checkpoint nan.safetensors --onnx nan.onnx
[ ! -e nan.onnx ] || fail "export wrote nan.onnx from a NaN weight" ""
tamper good.safetensors variance.safetensors variance
expect_error "a negative running variance" "negative variance" "$KILN" eval --checkpoint variance.safetensors --device cpu
tamper good.safetensors std.safetensors std
expect_error "a normalisation std of 0" "positive std" "$KILN" eval --checkpoint std.safetensors --device cpu
tamper good.safetensors normalization.safetensors normalization
expect_error "no normalisation" "no input normalisation" "$KILN" eval --checkpoint normalization.safetensors --device cpu
tamper good.safetensors logsoftmax.safetensors logsoftmax
{ printf 'P5 28 28 255\n'; head -c 784 /dev/zero; } >digit.pgm
expect_error "a spec without its logsoftmax" "does not end in logsoftmax" "$KILN" predict --checkpoint logsoftmax.safetensors digit.pgm

# --- Runs that would lose work ---
expect_error "--save into a missing folder" "does not exist" "$KILN" train "${quick[@]}" --epochs 1 --save nowhere/x.safetensors
mkdir -p folder
expect_error "--save onto a folder" "folder" "$KILN" train "${quick[@]}" --epochs 1 --save folder
expect_error "--save where nothing can be written" "/proc" "$KILN" train "${quick[@]}" --epochs 1 --save /proc/kiln.safetensors
expect_error "parity --json into a missing folder" "--json nowhere/p.json" "$KILN" parity --json nowhere/p.json
expect_error "--save and --log the same file" "the same file as --save" "$KILN" train "${quick[@]}" --epochs 1 --save same --log same
expect_error "--save-initial onto --save" "--save-initial same is the same file as --save" "$KILN" train "${quick[@]}" --epochs 1 --save same --save-initial same
expect_error "--step-log onto --log" "--step-log same is the same file as --log" "$KILN" train "${quick[@]}" --epochs 1 --log same --step-log same
expect_error "--save-initial into a missing folder" "--save-initial nowhere/i.safetensors: the folder" \
    "$KILN" train "${quick[@]}" --epochs 1 --save-initial nowhere/i.safetensors
expect_error "a diverging run" "diverged" "$KILN" train "${quick[@]}" --epochs 2 --lr 1e9 --save good.safetensors --log run.jsonl
expect_same good.safetensors "$good" "a diverging run"
expect_error "--resume with another learning rate" "--lr" "$KILN" train --resume good.safetensors --epochs 2 --lr 0.5
expect_error "--resume with --shuffle" "drop --shuffle" "$KILN" train --resume good.safetensors --epochs 2 --shuffle none
expect_error "--resume with --ema" "drop --ema" "$KILN" train --resume good.safetensors --epochs 2 --ema 0.99
expect_error "--weights ema of a run without one" "holds no moving average of the weights" \
    "$KILN" eval --checkpoint good.safetensors --device cpu --weights ema
expect_error "--weights sometimes" "'sometimes' is invalid for '--weights" "$KILN" export --checkpoint good.safetensors --onnx x.onnx --weights sometimes
expect_error "--resume with another --train-limit" "--train-limit" "$KILN" train --resume good.safetensors --epochs 2 --train-limit 256
expect_error "--resume past the epochs asked for" "already trained 1 epochs" "$KILN" train --resume good.safetensors --epochs 1
expect_same good.safetensors "$good" "a refused resume"

# Batch norm over one value per channel (after global pooling, a batch of 1) is refused, naming the layer.
printf '%s' '{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 10, "kernel": 3}, {"type": "globalavgpool"},
  {"type": "residual", "body": [{"type": "batchnorm2d"}]}, {"type": "logsoftmax"}]}' >onevalue.json
expect_error "batch norm over one value per channel" "layer 2.body.0 (batchnorm2d): expected more than 1 value per channel" \
    "$KILN" train "${quick[@]}" --model onevalue.json --batch-size 1 --epochs 1

# A resumed run saves to the checkpoint it resumed, and without --epochs aims at the resumed run's epochs.
"$KILN" train "${quick[@]}" --epochs 1 --save resumed.safetensors >/dev/null 2>&1 || fail "a one-epoch run to resume" ""
"$KILN" train --resume resumed.safetensors --epochs 2 >/dev/null 2>&1 || fail "resuming to epoch 2 without --save" ""
expect_error "--resume of a finished run without --epochs" "already trained 2 epochs" "$KILN" train --resume resumed.safetensors

# --ema: the run's test line is the average's, and kiln eval gives it by default; --weights trained gives
# the trained weights' line, printed beside it; a resumed run goes on with the average.
cases=$((cases + 1))
if "$KILN" train "${quick[@]}" --epochs 1 --ema 0.9 --save ema.safetensors >ema.out 2>&1; then
    run_line=$(grep -m1 '^Test set:' ema.out)
    trained_line="Test set: $(grep -m1 'the trained weights:' ema.out | sed 's/.*the trained weights: //; s/)$//')"
    eval_line=$("$KILN" eval --checkpoint ema.safetensors --device cpu --threads 1 2>&1 | grep '^Test set:')
    eval_trained=$("$KILN" eval --checkpoint ema.safetensors --device cpu --threads 1 --weights trained 2>&1 | grep '^Test set:')
    if [ "$run_line" != "$eval_line" ] || [ "$trained_line" != "$eval_trained" ] || [ "$run_line" = "$trained_line" ]; then
        fail "kiln eval of an --ema checkpoint" "run: $run_line / $trained_line
eval: $eval_line / $eval_trained"
    fi
    "$KILN" train --resume ema.safetensors --epochs 2 >ema.out 2>&1 && grep -q 'EMA of the weights with decay 0.9' ema.out \
        || fail "resuming an --ema run" "$(cat ema.out)"
else
    fail "a run with --ema" "$(cat ema.out)"
fi

# kiln sweep makes a run's file name from its spec's name: never outside --out, never one over another.
mkdir -p sweep-specs
printf '%s' '{"name": "../../escaped", "input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 10, "kernel": 28}, {"type": "logsoftmax"}]}' >sweep-specs/a.json
cp sweep-specs/a.json sweep-specs/b.json
cases=$((cases + 1))
output=$("$KILN" sweep --model sweep-specs/a.json,sweep-specs/b.json --lr 0.1 --epochs 1 --last 1 --train-limit 128 --device cpu --threads 1 --out sweep-out 2>&1)
if [ $? -ne 0 ] || ls ./*escaped* ../*escaped* >/dev/null 2>&1 || [ "$(ls sweep-out/*.jsonl 2>/dev/null | wc -l)" -ne 2 ]; then
    fail "a sweep over two specs named ../../escaped" "$output
$(ls sweep-out)"
fi

# A sweep of one epoch takes --last 1 when --last is not given; a second sweep into the same --out is
# refused, the first one's files unchanged; a sweep whose every run failed exits non-zero.
cases=$((cases + 1))
output=$("$KILN" sweep --epochs 1 --train-limit 128 --device cpu --threads 1 --out sweep-one 2>&1)
[ $? -eq 0 ] && [[ "$output" == *"last 1 test acc."* ]] || fail "a one-epoch sweep without --last" "$output"
summary=$(sha256sum <sweep-one/summary.md)
expect_error "a second sweep into the same --out" "--out sweep-one already holds results" \
    "$KILN" sweep --epochs 1 --last 1 --train-limit 128 --device cpu --threads 1 --out sweep-one
expect_same sweep-one/summary.md "$summary" "a refused second sweep"
expect_error "a sweep whose every run diverged" "1 of 1 runs failed or diverged" \
    "$KILN" sweep "${quick[@]}" --epochs 2 --last 1 --lr 1e9 --out sweep-diverged
expect_error "sweep --out naming a file" "a-file: cannot create the --out folder (it is a file, not a folder)" "$KILN" sweep --epochs 1 --last 1 --out a-file

# An output that names the command's own input (directly or through a link) is refused; the input stays.
"$KILN" train "${quick[@]}" --epochs 1 --log ok.jsonl >/dev/null 2>&1 || fail "a short run for the report cases" ""
ln -sf good.safetensors link.safetensors
log_sum=$(sha256sum <ok.jsonl)
expect_error "export --onnx onto its --checkpoint" "the same file as --checkpoint" "$KILN" export --checkpoint good.safetensors --onnx good.safetensors
expect_error "eval --outputs onto its --checkpoint, through a link" "the same file as --checkpoint" "$KILN" eval --checkpoint good.safetensors --outputs link.safetensors --device cpu
expect_error "report --out onto its --checkpoint" "the same file as --checkpoint" "$KILN" report ok.jsonl --checkpoint good.safetensors --out good.safetensors
expect_error "report --out onto its run report" "the same file as the run report" "$KILN" report ok.jsonl --out ok.jsonl
expect_same good.safetensors "$good" "an output naming its input"
expect_same ok.jsonl "$log_sum" "report --out naming its run"

# A report's --checkpoint must be one of its runs': another model's would be drawn under their table.
"$KILN" train "${quick[@]}" --epochs 1 --model tiny5k --save other.safetensors >/dev/null 2>&1 || fail "a tiny5k checkpoint" ""
expect_error "report --checkpoint from another model" "--checkpoint other.safetensors holds tiny5k (4,720 parameters" \
    "$KILN" report ok.jsonl --checkpoint other.safetensors --out other.html

# Ctrl-C mid-run: exit 130, the last checkpoint whole, and how to resume.
cases=$((cases + 1))
output=$(timeout --preserve-status -s INT 8 "$KILN" train "${quick[@]}" --epochs 100000 --save stopped.safetensors 2>&1)
status=$?
if [ "$status" -ne 130 ] || [[ "$output" != *"kiln train --resume stopped.safetensors"* ]] || ls -a | grep -q '^\.stopped'; then
    fail "Ctrl-C during training (exit $status)" "$output"
fi
"$KILN" eval --checkpoint stopped.safetensors --device cpu >/dev/null 2>&1 || fail "the checkpoint left by Ctrl-C does not load" ""

# Two runs writing the same checkpoint or log: the second is refused while the first holds them, and
# the first's lock goes with it.
"$KILN" train "${quick[@]}" --epochs 100000 --save busy.safetensors --log busy.jsonl >/dev/null 2>&1 &
first=$!
for _ in $(seq 100); do [ -e .busy.jsonl.lock ] && break; sleep 0.2; done
expect_error "a second run onto a checkpoint being written" "--save busy.safetensors is being written by another kiln run (process $first)" \
    "$KILN" train "${quick[@]}" --epochs 1 --save busy.safetensors
expect_error "a second run onto a log being written" "--log busy.jsonl is being written by another kiln run" \
    "$KILN" train "${quick[@]}" --epochs 1 --log busy.jsonl
# (TERM: a background job of a script ignores INT.)
kill -TERM "$first"; wait "$first"
cases=$((cases + 1))
ls -a | grep -q '^\.busy' && fail "a stopped run's locks are left behind" "$(ls -a)"

# A OneCycle run too short to reach its peak says so; a range test on less than a batch is refused.
cases=$((cases + 1))
output=$("$KILN" train --device cpu --threads 1 --train-limit 64 --batch-size 64 --epochs 1 2>&1)
[[ "$output" == *"warning: OneCycle over 1 step never comes near its peak lr 0.3"* ]] || fail "a one-step OneCycle run" "$output"
expect_error "lr-find on fewer images than a batch" "needs a whole batch of 128 training images; the data has 100" \
    "$KILN" lr-find --device cpu --threads 1 --train-limit 100 --out lr.html
expect_error "a divergence from weight decay" "weight decay 1000.0 times the peak learning rate 0.3 is 300.0, over 1" \
    "$KILN" train --device cpu --threads 1 --train-limit 512 --batch-size 64 --epochs 1 --weight-decay 1000

# kiln-bench's time to accuracy (built beside kiln) needs real data and whole-number seeds.
bench=$(dirname "$KILN")/kiln-bench
expect_error "time to accuracy on synthetic data" "--to-accuracy needs real data of resnet20's shape [3, 32, 32]" \
    "$bench" --to-accuracy 99.4 --models resnet20 --devices cpu
expect_error "time to accuracy with a seed that is no number" "--seeds must be comma-separated whole numbers" \
    "$bench" --to-accuracy 99.4 --seeds 1,x
expect_error "a CIFAR preset on MNIST" "model resnet20 takes [3, 32, 32] images, the training images of" \
    "$KILN" train "${quick[@]}" --model resnet20 --epochs 1

# An installed kiln (the layout of `make install`) finds the bundled data from any folder; a copy with no
# data near it says what is missing.
mkdir -p prefix/bin prefix/share/kiln elsewhere lone
cp "$KILN" prefix/bin/kiln
ln -s "$root/Data/mnist" prefix/share/kiln/mnist
cases=$((cases + 1))
output=$(cd elsewhere && ../prefix/bin/kiln train "${quick[@]}" --epochs 1 2>&1) || fail "an installed kiln training on the bundled data" "$output"
cp "$KILN" lone/kiln
expect_error "a copied kiln with no data beside it" "no such data folder" bash -c "cd elsewhere && ../lone/kiln train --device cpu --epochs 1"

echo "cli-cases: $cases cases, $failures failed"
[ "$failures" -eq 0 ]
