# fliswarm developer targets. `make demo` and `make test` are the two
# commands a newcomer needs; both install what they need (Docker Engine
# from Debian's packages, the registry, Go modules) and need root for the
# test bed.

SHELL        := /bin/bash
GO           ?= go
BIN          := bin
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -X github.com/sdss/fliswarm/pkg/version.Version=$(VERSION)
TESTBED      := hack/testbed
BED_CONFIG   ?= /var/lib/fliswarm-testbed/fliswarm.yaml
E2E_TIMEOUT  ?= 40m
FUZZTIME     ?= 10s
# The parsers of outside input fuzzed by every `make test`: the
# configuration loader, the actor's command-line parser and the camera-line
# decoder, each for a number of executions (about 20 s each on 2 cores).
# A count, not a duration: Go 1.26's coordinator can report "context
# deadline exceeded" when a -fuzztime duration ends while a worker is busy
# (go.dev/issue/75804, fixed in Go 1.27), which failed a CI run with no
# crasher. Minimizing a new input is capped at 5 s for the same reason.
CI_FUZZ      := ./pkg/config:FuzzParse:100000x ./pkg/opscore:FuzzParseLine:400000x \
                ./pkg/clu:FuzzParseReply:400000x ./pkg/clu:FuzzParseReplyPython:250000x

.PHONY: all build test unit kube-check kube-bin fuzz-ci e2e e2e-secure bench bench-relay lint fmt vet fuzz demo demo-stop testbed-up testbed-down testbed-status clean tools chromium

all: build

## build: bin/fliswarm and bin/flicamera-sim (static)
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/fliswarm ./cmd/fliswarm
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/flicamera-sim ./cmd/flicamera-sim

## test: unit tests, the Kubernetes export against a real API server (kube-check), a bounded fuzz of the input parsers, then the end-to-end suites on a fresh test bed, then tear it down
test: build
	$(MAKE) unit
	$(MAKE) kube-check
	$(MAKE) fuzz-ci
	$(MAKE) e2e

## kube-check: `fliswarm export kubernetes` of the embedded default (APO, LCO), the test bed's
## configuration and every sample, checked by a real kube-apiserver and etcd (hack/kube, envtest):
## strict server-side dry-run, a second server-side apply that moves no generation, Pod Security at
## baseline admitting the camera pods only in the exported namespace. The binaries are built into
## hack/kube/bin (gitignored) from Go modules; a cold build takes several minutes, later runs reuse
## them (or the Go build cache).
KUBE_DIR     := hack/kube
KUBE_BIN     := $(KUBE_DIR)/bin
KUBE_OUT     := $(KUBE_DIR)/out
KUBE_CONFIGS := default-apo: default-lco: testbed:pkg/export/kubernetes/testdata/testbed.yaml \
                $(foreach f,$(wildcard config/samples/*.yaml),sample-$(basename $(notdir $(f))):$(f))
kube-check: build kube-bin
	@rm -rf $(KUBE_OUT); set -e; for c in $(KUBE_CONFIGS); do name=$${c%%:*}; file=$${c#*:}; \
	  obs=APO; [ $$name = default-lco ] && obs=LCO; \
	  OBSERVATORY=$$obs $(BIN)/fliswarm $${file:+-c $$file} export kubernetes --namespace fliswarm-$$name -o $(KUBE_OUT)/$$name; \
	done
	@start=$$(date +%s); cd $(KUBE_DIR) && KUBEBUILDER_ASSETS=$(CURDIR)/$(KUBE_BIN) FLISWARM_EXPORTS=$(CURDIR)/$(KUBE_OUT) \
	  $(GO) test -count=1 -v . ; status=$$?; echo "kube-check: the API server checks took $$(( $$(date +%s) - start )) s"; exit $$status

## kube-bin: kube-apiserver and etcd in hack/kube/bin, rebuilt when hack/kube's modules change
kube-bin: $(KUBE_BIN)/kube-apiserver $(KUBE_BIN)/etcd
$(KUBE_BIN)/kube-apiserver $(KUBE_BIN)/etcd &: $(KUBE_DIR)/go.mod $(KUBE_DIR)/go.sum $(KUBE_DIR)/cmd/etcd/main.go
	@mkdir -p $(KUBE_BIN); start=$$(date +%s); cd $(KUBE_DIR) && \
	  CGO_ENABLED=0 $(GO) build -o bin/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver && \
	  CGO_ENABLED=0 $(GO) build -o bin/etcd ./cmd/etcd && \
	  echo "kube-bin: kube-apiserver and etcd built in $$(( $$(date +%s) - start )) s"

## fuzz-ci: fuzz each parser of outside input (CI_FUZZ: package:target:count).
## A crasher is written under the package's testdata/fuzz/ and fails the
## run: commit it, and it stays a regular test case from then on.
fuzz-ci:
	@for t in $(CI_FUZZ); do pkg=$${t%%:*}; rest=$${t#*:}; f=$${rest%%:*}; n=$${rest#*:}; \
	  echo "== fuzz $$pkg $$f for $$n"; \
	  $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $$n -fuzzminimizetime 5s $$pkg || exit 1; \
	done

## unit: unit tests (with the race detector) and fuzz seeds; no engine needed
unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...   # e2e suites skip themselves without FLISWARM_E2E=1

# A second, small bed whose nodes are reached through TLS and ssh (and one
# plain, to be warned about), on its own bridge and subnet.
SECURE_BED := TESTBED_DIR=/var/lib/fliswarm-testbed-secure TESTBED_RUN_DIR=/run/fliswarm-testbed-secure \
	TESTBED_BRIDGE=fsbr9 TESTBED_SUBNET=10.219.0 TESTBED_REGISTRY_PORT=5009 TESTBED_ACTOR_PORT=19906 \
	TESTBED_NODES="sec1 sec2 sec3" TESTBED_TLS_NODES=sec2 TESTBED_SSH_NODES=sec3

## e2e: bring the test bed up, run test/e2e against real engines, tear the bed down; then the same on the TLS/ssh bed
e2e: build chromium
	$(TESTBED) up
	FLISWARM_E2E=1 FLISWARM_BIN=$(CURDIR)/$(BIN)/fliswarm \
	FLISWARM_TEST_DOCKER_HOST=tcp://10.213.0.11:2375 FLISWARM_TEST_REGISTRY=10.213.0.1:5000 \
	  $(GO) test -count=1 -p 1 -timeout $(E2E_TIMEOUT) -v ./pkg/engine/... ./test/e2e/...; \
	  status=$$?; $(TESTBED) down; [ $$status = 0 ] || exit $$status
	$(MAKE) e2e-secure

## e2e-secure: the TLS and ssh engines, end to end, on a bed of their own
e2e-secure: build
	$(SECURE_BED) $(TESTBED) up
	$(SECURE_BED) FLISWARM_E2E=1 FLISWARM_BIN=$(CURDIR)/$(BIN)/fliswarm \
	  $(GO) test -count=1 -p 1 -timeout 10m -v -run 'TestSecureEngines' ./test/e2e/; \
	  status=$$?; $(SECURE_BED) $(TESTBED) down; exit $$status

## chromium: Debian's chromium, which the status page's browser test drives (installed when missing)
chromium:
	@command -v chromium >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get -o DPkg::Lock::Timeout=600 install -y chromium || \
	  { apt-get -o DPkg::Lock::Timeout=600 update && apt-get -o DPkg::Lock::Timeout=600 install -y chromium; }; }

## bench: the benchmark table on the test bed (test/e2e BenchmarkTable): every figure a median over samples
## taken in one run beside a baseline measured in the same run; prints one table and writes it to
## test/bench-results/<date>.md and latest.md. Uses the bed the TESTBED_* variables describe (the default
## bed when none is set); BENCH_IDLE, BENCH_CRASHLOOP, BENCH_FLOOD tune it; BENCH_KEEP_BED=1 leaves the bed up.
bench: build
	$(TESTBED) up
	FLISWARM_E2E=1 FLISWARM_BIN=$(CURDIR)/$(BIN)/fliswarm \
	  $(GO) test -run '^$$' -bench '^BenchmarkTable$$' -benchtime 1x -count 1 -timeout 30m -v ./test/e2e/ 2>&1 | tee bench.out; \
	  status=$${PIPESTATUS[0]}; [ "$(BENCH_KEEP_BED)" = 1 ] || $(TESTBED) down; exit $$status

## bench-relay: the relay on loopback, no test bed (simulated cameras on 127.0.0.1): talk ping latency against the direct ping, flood lines/s, CPU per line, heap; RELAY_FLOOD lines (default 1000000)
RELAY_FLOOD ?= 1000000
bench-relay:
	FLISWARM_BENCH_FLOOD=$(RELAY_FLOOD) $(GO) test -run '^$$' -bench Relay -benchtime 1x -count 1 -v ./pkg/actor/

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## lint: gofmt and go vet
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## demo: bring the test bed up and run fliswarm against it in the foreground (Ctrl-C stops fliswarm; `make testbed-down` removes the bed)
demo: build
	$(TESTBED) up
	@echo
	@echo "fliswarm manages the test bed now. In another terminal try:"
	@echo "  $(BIN)/fliswarm -c $(BED_CONFIG) status"
	@echo "  $(BIN)/fliswarm -c $(BED_CONFIG) send 'talk expose 1'"
	@echo "  $(TESTBED) crash gfa1    # and watch fliswarm bring it back"
	@echo
	$(BIN)/fliswarm -c $(BED_CONFIG) start --debug

testbed-up:
	$(TESTBED) up
testbed-down:
	$(TESTBED) down
testbed-status:
	$(TESTBED) status

clean:
	rm -rf $(BIN) $(KUBE_BIN) $(KUBE_OUT)
