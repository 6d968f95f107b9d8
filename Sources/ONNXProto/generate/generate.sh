#!/usr/bin/env bash
# Regenerates Sources/ONNXProto/onnx.pb.swift, the Swift messages of ONNX's onnx.proto, with protoc and
# swift-protobuf's protoc-gen-swift. Committed, since building the plugin in every CI run is slow (minutes).
#   apt-get install protobuf-compiler; pip install onnx        (onnx.proto comes with the onnx package)
#   git clone https://github.com/apple/swift-protobuf -b 1.39.0 && (cd swift-protobuf && swift build -c release --product protoc-gen-swift)
#   Sources/ONNXProto/generate/generate.sh swift-protobuf/.build/release/protoc-gen-swift
set -euo pipefail
plugin=${1:?usage: generate.sh PATH/TO/protoc-gen-swift}
here=$(cd "$(dirname "$0")" && pwd)
proto_dir=$(python3 -c 'import onnx, os; print(os.path.dirname(onnx.__file__))')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$proto_dir/onnx.proto" "$work/"
protoc --plugin=protoc-gen-swift="$plugin" --proto_path="$work" --swift_out="$work" --swift_opt=Visibility=Public "$work/onnx.proto"
mv "$work/onnx.pb.swift" "$here/../onnx.pb.swift"
echo "wrote Sources/ONNXProto/onnx.pb.swift from $proto_dir/onnx.proto (onnx $(python3 -c 'import onnx; print(onnx.__version__)'))"
