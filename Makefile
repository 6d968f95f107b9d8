# Kiln: `make train` trains the default model on the bundled MNIST, `make test` runs the tests.
# Both install the Debian packages they need first (sudo when not root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PACKAGES := libopenblas-dev zlib1g-dev
STAMP := .build/.deps-installed

.PHONY: deps build train test summary clean

deps: $(STAMP)
$(STAMP):
	@if ! dpkg -s $(PACKAGES) >/dev/null 2>&1; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(PACKAGES); fi
	@mkdir -p .build && touch $@

build: deps
	swift build -c release

train: build
	.build/release/kiln train $(ARGS)

test: deps
	swift test -c release

summary: build
	.build/release/kiln summary $(ARGS)

clean:
	rm -rf .build
