# The two commands of the README: `make run` (the main job) and `make test`.
SWIFT ?= swift
DEMO := .build/demo

.PHONY: run test setup build bench clean

setup:
	@scripts/setup-system.sh

build: setup
	$(SWIFT) build -c release

# Main job: generate an image with the small Stable Diffusion pipeline the tests use (random
# weights, so expect colourful noise until a trained default model arrives), and report it.
run: build
	@mkdir -p $(DEMO)
	.build/release/diffuse generate --model Tests/Fixtures/tiny-sd --prompt "a red circle on a blue background" \
		--steps 20 --width 64 --height 64 --seed 42 --out $(DEMO)/image.png --report $(DEMO)/report.json

# Tests run in release mode: the kernels they check are the ones users run, and the large
# attention and memory tests take seconds instead of minutes.
test: setup
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build --disable-swift-testing

# Op throughput beside PyTorch's (needs a Python with torch; see BENCHMARKS.md).
bench: build
	tools/bench/ops-vs-torch.sh

clean:
	rm -rf .build
