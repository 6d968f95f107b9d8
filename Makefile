# Kiln: `make train` trains the default model on the bundled MNIST, `make test` runs the tests.
# Both install the Debian packages they need first (sudo when not root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# OpenBLAS and zlib for the CPU path; the OpenCL ICD loader, CLBlast and PoCL (an OpenCL CPU device,
# so the OpenCL path is tested everywhere) for the OpenCL path.
PACKAGES := libopenblas-dev zlib1g-dev ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd

.PHONY: deps build train test bench summary clean

# Installs only when a package is missing (dpkg -s is quick, so every run checks).
deps:
	@if ! dpkg -s $(PACKAGES) >/dev/null 2>&1; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(PACKAGES); fi

build: deps
	swift build -c release

train: build
	.build/release/kiln train $(ARGS)

# PoCL caches compiled kernels here, inside the clone (never an empty POCL_CACHE_DIR: PoCL aborts).
export POCL_CACHE_DIR := $(CURDIR)/.pocl-cache

# The tests, then a smoke run of the benchmark on every device.
test: deps
	swift test -c release
	swift build -c release --product kiln-bench
	.build/release/kiln-bench --quick

bench: build
	.build/release/kiln-bench $(ARGS)

summary: build
	.build/release/kiln summary $(ARGS)

clean:
	rm -rf .build
