# The two commands of the README: `make run` (the main job) and `make test`.
SWIFT ?= swift
DEMO := .build/demo

.PHONY: run test setup build bench clean

setup:
	@scripts/setup-system.sh

build: setup
	$(SWIFT) build -c release

# Main job: draw one picture with the demo pipeline shipped in models/demo (trained on simple
# shapes by tools/demo-model; the default model of `diffuse generate`), and print its path.
run: build
	@mkdir -p $(DEMO)
	@.build/release/diffuse generate --prompt "a large red circle on a blue background" \
		--steps 25 --seed 42 --out $(DEMO)/image.png --report $(DEMO)/report.json >/dev/null
	@echo "$(abspath $(DEMO)/image.png)"

# Tests run in release mode: the kernels they check are the ones users run, and the large
# attention and memory tests take seconds instead of minutes.
# Products and tests share one release build: testable imports stay off (no test uses them), so
# `swift test` does not rebuild the modules with other settings than `swift build` (mixing the
# two in one build folder left stale objects behind).
test: setup
	$(SWIFT) build -c release
	$(SWIFT) test -c release --disable-testable-imports --disable-swift-testing

# Op throughput beside PyTorch's (needs a Python with torch; see BENCHMARKS.md).
bench: build
	tools/bench/ops-vs-torch.sh

clean:
	rm -rf .build
