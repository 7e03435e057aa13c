# make demo: the main job on container hosts. make test: every test (set-up included).
# make unit: the fast, hermetic tests for your own loop. make bench: the benchmarks.
GO        ?= go
BIN       := bin/machine
E2E_FLAGS ?= -count=1 -timeout 45m -v -parallel 4

.PHONY: all build unit test e2e setup demo demo-check bench lint clean fuzz

all: build

build:
	$(GO) build -o $(BIN) ./cmd/machine

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	$(GO) vet -tags vboxreal ./drivers/virtualbox/
	bash -n scripts/*.sh drivers/virtualbox/testdata/record.sh drivers/virtualbox/testimage/build.sh
	cd test/example && $(GO) vet ./...

unit:
	$(GO) test ./...

# Every parser of user input, fuzzed for a fixed number of inputs (the seeds are the testdata files).
# Counted, not timed: a timed -fuzztime can fail with "context deadline exceeded" and no crasher
# (the fuzzing coordinator's race, golang/go#75804, fixed in Go 1.27).
# A new input that finds new code is minimized for at most 1000 runs (by default for a minute,
# which made one target take 90 s). Fewer inputs where each costs more: the env round trip
# starts five real shells; an ssh_config is resolved as for a user (2 ms: its files are looked at).
FUZZTIME ?= 40000x
FUZZ      = $(GO) test -run '^$$' -fuzzminimizetime 1000x -fuzz
fuzz:
	$(FUZZ) '^FuzzParse$$' -fuzztime $(FUZZTIME) ./swarm/cluster/
	$(FUZZ) '^FuzzParseOSRelease$$' -fuzztime $(FUZZTIME) ./provision/
	$(FUZZ) '^FuzzValidateName$$' -fuzztime $(FUZZTIME) ./internal/store/
	$(FUZZ) '^FuzzParse$$' -fuzztime 15000x ./internal/sshconfig/
	$(FUZZ) '^FuzzTemplate$$' -fuzztime $(FUZZTIME) ./internal/format/
	$(FUZZ) '^FuzzDropIn$$' -fuzztime $(FUZZTIME) ./provision/
	$(FUZZ) '^FuzzPrintable$$' -fuzztime $(FUZZTIME) ./internal/safetext/
	$(GO) test -run '^$$' -fuzzminimizetime 50x -fuzz '^FuzzEnvRoundTrip$$' -fuzztime 1000x ./internal/shellenv/

setup:
	bash scripts/setup.sh
	bash scripts/setup-libvirt.sh

# Builds the host images once per recipe (cached by its hash), the libvirt test guest and the
# image with a real VirtualBox, then runs the end-to-end tests against real container hosts,
# side by side.
e2e: setup build
	./$(BIN) image build --variant base
	./$(BIN) image build
	./$(BIN) image build --release debian-11
	./$(BIN) image build --release debian-13
	MACHINE_LIBVIRT_TEST_IMAGE=$$(bash scripts/libvirt-test-image.sh) MACHINE_VBOX_IMAGE=$$(bash scripts/vbox-image.sh) \
		$(GO) test -tags e2e $(E2E_FLAGS) ./test/e2e/
	$(GO) test -tags e2e -run '^Example' -v ./machine/ ./swarm/

# The README's first command, run in CI too (on the demo's own store, which it cleans up first),
# and torn down after.
demo-check: build
	bash scripts/demo.sh
	MACHINE_STORAGE_PATH=$${MACHINE_STORAGE_PATH:-$$HOME/.machine-demo} ./$(BIN) swarm down -f testdata/cluster/demo.yml

test: setup lint unit fuzz e2e demo-check

demo: setup build
	bash scripts/demo.sh

bench: setup build
	$(GO) test -run '^$$' -bench . -benchtime 5x ./internal/... 
	$(GO) test -tags e2e -run '^$$' -bench . -benchtime 3x -timeout 30m ./test/e2e/

clean:
	rm -rf bin
