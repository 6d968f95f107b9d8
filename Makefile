# Kiln: `make train` trains the default model on the bundled MNIST, `make test` runs the tests.
# Both install the Debian packages they need first (sudo when not root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# OpenBLAS and zlib for the CPU path, libpng for `kiln predict`; the OpenCL ICD loader, CLBlast and PoCL (an OpenCL CPU device,
# so the OpenCL path is tested everywhere) for the OpenCL path; g++ for the C++ standard library that
# Sources/CCLBlastTuner (CLBlast's C++ tuning API) compiles against.
PACKAGES := libopenblas-dev zlib1g-dev libpng-dev ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd g++
# For the tests only: clang-15 and AMD's device library (built for it) compile the kernels offline for
# GPU instruction sets (see kernel-check); Python's venv for onnxruntime (see onnx-deps).
CHECK_PACKAGES := clang-15 rocm-device-libs python3 python3-venv

.PHONY: deps check-deps onnx-deps report-deps mpi-deps sanitize-deps build train test same-steps kernel-check kernel-sanitize rusticl-parity bench summary docs install uninstall clean gpu-bundle

# Installs only when a package is missing (dpkg -s is quick, so every run checks).
deps:
	@if ! dpkg -s $(PACKAGES) >/dev/null 2>&1; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(PACKAGES); fi

check-deps: deps
	@if ! dpkg -s $(CHECK_PACKAGES) >/dev/null 2>&1; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(CHECK_PACKAGES); fi

# The ONNX round trip's Python: onnx, onnxruntime and numpy from PyPI, in a virtual environment under
# .build. Where PyPI cannot be reached the round trip is skipped with a line saying so.
ONNX_PYTHON := .build/onnx-venv/bin/python3
onnx-deps: check-deps
	@if ! $(ONNX_PYTHON) -c 'import onnx, onnxruntime, numpy' 2>/dev/null; then \
		rm -rf .build/onnx-venv; python3 -m venv .build/onnx-venv && $(ONNX_PYTHON) -m pip install --quiet onnx onnxruntime numpy \
		|| echo "onnx-deps: cannot install onnx/onnxruntime from PyPI; the ONNX round trip will be skipped"; fi

# Chromium renders `kiln report`'s page in the tests (Tests/report-render.sh); skipped with a line where
# the package cannot be installed.
report-deps: deps
	@if ! command -v chromium >/dev/null 2>&1; then \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; } \
		|| echo "report-deps: cannot install chromium; the report rendering will be skipped"; fi

# Open MPI for the data-parallel tests (`mpirun -np 2`, Tests/KilnTests/DataParallelTests.swift), which
# are skipped with a line saying so where it cannot be installed. Kiln opens libmpi at run time, so only
# the runtime and mpirun are needed.
mpi-deps: deps
	@if ! command -v mpirun >/dev/null 2>&1; then \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends openmpi-bin; } \
		|| echo "mpi-deps: cannot install openmpi-bin; the data-parallel tests will be skipped"; fi

# Two more OpenCL implementations for the tests: Oclgrind (a simulated GPU that checks every memory
# access, races and API use: kernel-sanitize) and Mesa's rusticl on llvmpipe (rusticl-parity). Each is
# skipped with a line where its package cannot be installed.
sanitize-deps: deps
	@if ! dpkg -s oclgrind mesa-opencl-icd >/dev/null 2>&1; then \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends oclgrind mesa-opencl-icd; } \
		|| echo "sanitize-deps: cannot install oclgrind and mesa-opencl-icd; the kernel sanitizer and rusticl parity will be skipped"; fi

build: deps
	swift build -c release

train: build
	.build/release/kiln train $(ARGS)

# PoCL caches compiled kernels here, inside the clone (never an empty POCL_CACHE_DIR: PoCL aborts).
export POCL_CACHE_DIR := $(CURDIR)/.pocl-cache

# Kiln and PyTorch on the same steps (benchmarks/pytorch/same_steps.py; needs torch): every step taken from
# Kiln's own weights in both and compared (the check), and a free run's losses and final weights reported.
# `make same-steps ARGS="--model spec.json --lr 0.02"` passes flags through; `test` runs the check alone
# (--no-free) on resnet20 and lean8k (README, "Equal to PyTorch, step by step").
same-steps: build
	python3 benchmarks/pytorch/same_steps.py --kiln .build/release/kiln $(ARGS)

# The kernel check (seconds, so first), the build (the tests run the `kiln` binary too), the tests,
# the kernel sanitizer (Oclgrind) and parity on rusticl (see kernel-sanitize, rusticl-parity), the shell cases of bad input and faults (Tests/cli-cases.sh), the ONNX export checked in onnxruntime
# (Tests/onnx-roundtrip.sh), a residual checkpoint loaded in PyTorch where torch is installed
# (Tests/pytorch-checkpoint.sh) and the same steps as PyTorch's (see same-steps; minutes on 2 cores),
# `kiln report`'s page rendered in Chromium (Tests/report-render.sh), then a smoke run of the benchmark on
# every device, and the GPU field run's dry run (benchmarks/gpu/field-run.sh on PoCL with tiny limits,
# about a minute; see gpu-bundle).
test: deps kernel-check onnx-deps report-deps mpi-deps sanitize-deps
	swift build -c release
	@seed=$${KILN_TEST_SEED:-$$(date +%s%3N)}; echo "swift test -c release with KILN_TEST_SEED=$$seed"; \
		KILN_TEST_SEED=$$seed swift test -c release || { echo "swift test failed with KILN_TEST_SEED=$$seed; repeat a failing test with KILN_TEST_SEED=$$seed swift test -c release --filter NAME"; exit 1; }
	$(SANITIZE)
	bash Tests/rusticl-parity.sh .build/release/kiln
	bash Tests/cli-cases.sh .build/release/kiln
	@if $(ONNX_PYTHON) -c 'import onnxruntime' 2>/dev/null; then bash Tests/onnx-roundtrip.sh .build/release/kiln $(ONNX_PYTHON); \
		else echo "onnx-roundtrip: skipped, onnxruntime could not be installed (see onnx-deps above)"; fi
	@if python3 -c 'import torch, safetensors, numpy' 2>/dev/null; then bash Tests/pytorch-checkpoint.sh .build/release/kiln python3; \
		else echo "pytorch-checkpoint: skipped, no torch in python3 (pip install torch safetensors numpy to run it)"; fi
	@if python3 -c 'import torch, safetensors, numpy' 2>/dev/null; then \
		python3 benchmarks/pytorch/same_steps.py --kiln .build/release/kiln --no-free --model resnet20 && \
		python3 benchmarks/pytorch/same_steps.py --kiln .build/release/kiln --no-free --model lean8k --steps 20; \
		else echo "same-steps: skipped, no torch in python3 (pip install torch safetensors numpy to run it)"; fi
	@if command -v chromium >/dev/null 2>&1; then bash Tests/report-render.sh .build/release/kiln chromium; \
		else echo "report-render: skipped, chromium could not be installed (see report-deps above)"; fi
	.build/release/kiln-bench --quick
	rm -rf .build/field-run-dry
	KILN_BIN_DIR=.build/release bash benchmarks/gpu/field-run.sh --dry-run .build/field-run-dry

# The OpenCL kernels compiled offline for AMD and NVIDIA GPUs (no GPU needed): fails on any compiler
# warning or register spill, prints each kernel's registers and memory. `benchmarks/gpu-compile/check.sh
# --out benchmarks/results/kernel-resources.md` refreshes the committed table.
kernel-check: check-deps
	benchmarks/gpu-compile/check.sh

# Kiln's kernels under Oclgrind (Tests/kernel-sanitize.sh): kiln parity over the presets and specs that reach
# every kernel and variant, both launch cuts, with bounds, race and API checks; fails on any report or on
# a kernel that never ran. About 5 minutes on 2 cores; SANITIZE_ARGS=--all adds ref18k and strided12k and
# runs every preset in both cuts (8.5 minutes).
OCLGRIND_RUNTIME := /usr/lib/oclgrind/liboclgrind-rt.so
SANITIZE = @if [ -f $(OCLGRIND_RUNTIME) ]; then bash Tests/kernel-sanitize.sh $(SANITIZE_ARGS) .build/release/kiln $(OCLGRIND_RUNTIME); \
		else echo "kernel-sanitize: skipped, oclgrind could not be installed (see sanitize-deps above)"; fi
kernel-sanitize: sanitize-deps build
	$(SANITIZE)

# kiln parity for the presets on Mesa's rusticl (Tests/rusticl-parity.sh), both launch cuts.
rusticl-parity: sanitize-deps build
	bash Tests/rusticl-parity.sh .build/release/kiln

bench: build
	.build/release/kiln-bench $(ARGS)

summary: build
	.build/release/kiln summary $(ARGS)

# `make install [PREFIX=/usr/local]`: kiln and kiln-bench in PREFIX/bin, the bundled MNIST in
# PREFIX/share/kiln/mnist, where an installed kiln finds it. A static Swift runtime, so the binaries
# need only the Debian libraries (`make deps`; OpenCL and CLBlast only for OpenCL devices).
PREFIX ?= /usr/local
install: deps
	swift build -c release --static-swift-stdlib
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/kiln/mnist
	install -m 755 .build/release/kiln .build/release/kiln-bench $(DESTDIR)$(PREFIX)/bin/
	install -m 644 Data/mnist/*.gz $(DESTDIR)$(PREFIX)/share/kiln/mnist/

# `make gpu-bundle`: .build/gpu-bundle, a folder to copy to a GPU machine that may have no Swift, OpenBLAS,
# OpenCL ICD loader or CLBlast, and run there as `gpu-bundle/field-run.sh OUTDIR` (README: GPU field run).
# kiln and kiln-bench with the Swift runtime linked in, built in .build-static so that the release build
# in .build stays as it is; the libraries they link or open that a bare machine may lack; the MNIST files;
# the field-run script. Prints the size and fails over 64 MiB or on a dependency outside the bundle.
GPU_BUNDLE ?= .build/gpu-bundle
gpu-bundle: deps
	swift build -c release --static-swift-stdlib --build-path .build-static
	benchmarks/gpu/make-bundle.sh .build-static/release $(GPU_BUNDLE) 64

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/kiln $(DESTDIR)$(PREFIX)/bin/kiln-bench
	rm -rf $(DESTDIR)$(PREFIX)/share/kiln

# The library's API documentation (DocC) as a static site in .build/docs.
docs: deps
	swift package --allow-writing-to-directory .build/docs generate-documentation --target Kiln \
		--output-path .build/docs --transform-for-static-hosting --warnings-as-errors

clean:
	rm -rf .build .build-static
