# Fixtures come from ../shared when it exists (the team's read-only copy) and
# from their public download locations otherwise. Nothing fetched here is
# committed: see .gitignore.
SHARED ?= ../shared
GO ?= go
# go.mod says Go 1.27: the go command fetches go1.27.3 from the module proxy
# (every shell that builds this module needs it).
export GOTOOLCHAIN ?= go1.27.3
HF := https://huggingface.co/karpathy/tinyllamas/resolve/main
LLAMA2C := https://github.com/karpathy/llama2.c/raw/master

# Models with a public source: name-in-testdata=URL.
PUBLIC_MODELS := stories260K.bin=$(HF)/stories260K/stories260K.bin \
	tok512.bin=$(HF)/stories260K/tok512.bin \
	tokenizer.bin=$(LLAMA2C)/tokenizer.bin

.PHONY: all build test test-go test-arm64 e2e loadtest cross check-generate bench-stories fixtures bench fuzz generate stories15M stories42M stories110M clean

all: build

build:
	$(GO) build -o llama2 .

## fixtures: fill testdata/ and ./tokenizer.bin from ../shared, or download them.
fixtures:
	@mkdir -p testdata
	@if [ -d "$(SHARED)/models" ]; then \
		echo "fixtures: copying from $(SHARED)"; \
		cp -f $(SHARED)/models/*.bin testdata/ && \
		mkdir -p testdata/gguf && cp -f $(SHARED)/models/gguf/* testdata/gguf/ && \
		rm -rf testdata/golden && mkdir -p testdata/golden && \
		cp -rf $(SHARED)/golden/. testdata/golden/ && chmod -R u+w testdata/golden testdata/gguf testdata/*.bin; \
	else \
		echo "fixtures: $(SHARED) not found; downloading the public files (goldens need $(SHARED))"; \
		for pair in $(PUBLIC_MODELS); do \
			f=$${pair%%=*}; url=$${pair#*=}; \
			[ -s testdata/$$f ] || curl -fL --retry 3 -o testdata/$$f "$$url" || exit 1; \
		done; \
	fi
	@cp -f testdata/tokenizer.bin tokenizer.bin

## test: the whole suite, as CI runs it: Go tests (race detector, pure-Go
## kernels) and the server's end-to-end test with the openai npm client.
test: test-go e2e

test-go:
	$(GO) vet ./...
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -tags purego ./...

## e2e: `llama2 serve` driven by the official openai client, and a load test.
e2e:
	cd e2e && npm ci --no-audit --no-fund && ./run.sh

## loadtest: `llama2 serve` with default flags on a random stories42M-shaped
## fp32 checkpoint (written once into $(BENCH_DIR)): tok/s and p50/p99 latency
## at 1, 4, 8 and 16 clients, then 500 requests checked for reliability
## (e2e/loadtest.sh, e2e/loadtest/). Takes a few minutes.
loadtest:
	@mkdir -p $(BENCH_DIR)
	@[ -s $(BENCH_DIR)/r42M.bin ] || $(GO) -C $(SHARED)/tools/mkckpt run . -o $(BENCH_DIR)/r42M.bin \
		-dim 512 -hidden 1376 -layers 8 -heads 8 -kv 8 -vocab 32000 -seq 1024
	e2e/loadtest.sh $(BENCH_DIR)/r42M.bin tokenizer.bin

## test-arm64: the arm64 build under qemu-user (qemu-aarch64, whose default
## CPU has NEON and the dot-product instructions): the tests of the kernels
## (-short; every implementation the emulated CPU offers, and the dispatch
## with each feature turned off), of the runtime, the tokenizer and the
## main package, and llama2.c's golden cases through the arm64 binary at 1
## and 2 threads, ARM64_REPS times each, each run killed after a timeout so
## a hang fails.
ARM64_DIR ?= /tmp/llama2-arm64-$(shell id -u)
ARM64_REPS ?= 3
QEMU_ARM64 ?= qemu-aarch64
ARM64_PKGS := internal/kernels model tokenizer
test-arm64:
	@mkdir -p $(ARM64_DIR)
	GOARCH=arm64 $(GO) vet ./...
	GOARCH=arm64 $(GO) build -o $(ARM64_DIR)/llama2 .
	for p in $(ARM64_PKGS); do GOARCH=arm64 $(GO) test -c -o $(ARM64_DIR)/$$(basename $$p).test ./$$p || exit 1; done
	GOARCH=arm64 $(GO) test -c -o $(ARM64_DIR)/main.test .
	for p in $(ARM64_PKGS); do \
		(cd $$p && timeout 900 $(QEMU_ARM64) $(ARM64_DIR)/$$(basename $$p).test -test.short -test.count=1 -test.timeout 840s) || exit 1; \
	done
	timeout 900 $(QEMU_ARM64) $(ARM64_DIR)/main.test -test.short -test.count=1 -test.timeout 840s \
		-test.skip '^(TestGoldenCases|TestGoldenBinary|TestExitCodes)$$'
	# The golden runs of the arm64 binary are driven by a native test
	# process (which runs it through qemu): a fork under qemu-user can hang
	# between fork and exec (seen in CI: Go's vfork-style clone).
	LLAMA2_GOLDEN_BIN=$(ARM64_DIR)/llama2 LLAMA2_GOLDEN_GOARCH=arm64 LLAMA2_GOLDEN_REPS=$(ARM64_REPS) \
		LLAMA2_GOLDEN_TIMEOUT=90s $(GO) test -count=1 -timeout 840s -run '^TestGoldenBinary$$' .

## cross: the other platforms build (NEON kernels on arm64, pure Go
## elsewhere and with -tags purego; mmap per OS).
cross:
	GOOS=linux GOARCH=arm64 $(GO) build ./...
	GOOS=linux GOARCH=arm64 $(GO) build -tags purego ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=freebsd GOARCH=amd64 $(GO) build ./...
	GOOS=js GOARCH=wasm $(GO) build ./...

## generate: rebuild the assembly from the avo generators in asm/.
generate:
	$(GO) generate ./internal/kernels/

## check-generate: the committed assembly is what the generators write.
check-generate: generate
	git diff --exit-code -- internal/kernels/*.s

## bench: kernel and per-token benchmarks (go test -bench).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/kernels/ ./model/

## bench-stories: `llama2 bench` on random checkpoints of the stories15M/42M/110M
## shapes (written once by ../shared/tools/mkckpt into $(BENCH_DIR)), fp32 and
## Q8_0, 1 and 2 threads. Takes a few minutes.
BENCH_DIR ?= /tmp/llama2-bench
bench-stories: build
	@mkdir -p $(BENCH_DIR)
	@[ -s $(BENCH_DIR)/r15M.bin ] || $(GO) -C $(SHARED)/tools/mkckpt run . -o $(BENCH_DIR)/r15M.bin
	@[ -s $(BENCH_DIR)/r42M.bin ] || $(GO) -C $(SHARED)/tools/mkckpt run . -o $(BENCH_DIR)/r42M.bin \
		-dim 512 -hidden 1376 -layers 8 -heads 8 -kv 8 -vocab 32000 -seq 1024
	@[ -s $(BENCH_DIR)/r110M.bin ] || $(GO) -C $(SHARED)/tools/mkckpt run . -o $(BENCH_DIR)/r110M.bin \
		-dim 768 -hidden 2048 -layers 12 -heads 12 -kv 12 -vocab 32000 -seq 1024
	@for m in 15M 42M; do [ -s $(BENCH_DIR)/r$$m-q8.bin ] || ./llama2 quantize $(BENCH_DIR)/r$$m.bin $(BENCH_DIR)/r$$m-q8.bin -g 32; done
	@[ -s $(BENCH_DIR)/r110M-q8.bin ] || ./llama2 quantize $(BENCH_DIR)/r110M.bin $(BENCH_DIR)/r110M-q8.bin
	@for m in 15M 42M 110M; do \
		./llama2 bench $(BENCH_DIR)/r$$m.bin -threads 1,2 -r 7 2>/dev/null; \
		./llama2 bench $(BENCH_DIR)/r$$m-q8.bin -p 0 -threads 1,2 -r 7 2>/dev/null; \
	done

## fuzz: a short run (FUZZTIME each) of every fuzz target of every package.
FUZZTIME ?= 20s
fuzz:
	@for p in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
			echo "fuzz $$p $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
		done; \
	done

## stories15M etc.: the published TinyStories models (60 MB, 167 MB, 438 MB),
## pulled into the cache by `llama2 pull` (with llama2.c's tokenizer.bin) and
## linked here as stories15M.bin (and tokenizer.bin, if there is none) for
## the examples that name the files. `llama2 -hf karpathy/tinyllamas/stories15M.bin`
## needs neither link.
stories15M stories42M stories110M: build
	./llama2 pull karpathy/tinyllamas/$@.bin | { read -r m && read -r t && \
		ln -sf "$$m" $@.bin && { [ -e tokenizer.bin ] || ln -s "$$t" tokenizer.bin; }; }

clean:
	rm -f llama2
