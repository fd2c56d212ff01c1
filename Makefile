# The two commands of the README: `make run` (the main job) and `make test`.
SWIFT ?= swift
DEMO := .build/demo

.PHONY: run test setup build bench clean

setup:
	@scripts/setup-system.sh

build: setup
	$(SWIFT) build -c release

# Main job: shard a checkpoint written by Diffusers into 300 KB pieces, then inspect the result.
run: build
	@rm -rf $(DEMO)
	.build/release/diffuse shard Tests/Fixtures/checkpoints/unet-single --max-shard-size 300KB --out $(DEMO)/unet-sharded
	.build/release/diffuse inspect $(DEMO)/unet-sharded

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
