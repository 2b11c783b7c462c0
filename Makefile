.PHONY: run test gotest nodetest deps fuzz fuzz-short bench build promtest bundle

# FUZZTIME is how long `make fuzz` runs each fuzz target (go test -fuzztime);
# FUZZTIME_SHORT the same for `make fuzz-short`, which `make test` runs.
FUZZTIME ?= 30s
FUZZTIME_SHORT ?= 3s

build: bundle
	go build -o bin/roomcast ./cmd/roomcast
	go build -o bin/roomcast-bench ./cmd/roomcast-bench

run:
	go run ./cmd/roomcast serve

test: promtest bundle gotest fuzz-short nodetest

gotest:
	gofmt -l . | grep -v node_modules | (! grep .)
	go vet ./...
	go test -race -count=1 ./...

# The Node suites need node_modules as package-lock.json pins them.
deps:
	npm ci --no-audit --no-fund

nodetest: build deps
	npm test
	npm run test:harness
	npm run test:browser

# Every native fuzz target of the module (func FuzzX in any package), one
# after the other: go test -fuzz takes one target of one package at a time.
fuzz:
	@FUZZTIME=$(FUZZTIME) sh .ci/fuzz
fuzz-short:
	@FUZZTIME=$(FUZZTIME_SHORT) sh .ci/fuzz

bench:
	go test -run '^$$' -bench . -benchmem ./...

# Backplane traffic per node with tenant sharding vs round robin, 4 nodes
# behind HAProxy (BALANCER=nginx for nginx), every adapter; bounded (a fixed
# message count). Needs nginx/haproxy and redis-server (.ci/run installs them).
.PHONY: bench-lb
BALANCER ?= haproxy
bench-lb: build deps
	node test/lb/bench.mjs --balancer $(BALANCER)
# The Prometheus alert rules: syntax and their unit tests (fire / not fire).
promtest:
	promtool check rules deploy/prometheus/roomcast-rules.yml
	cd deploy/prometheus && promtool test rules roomcast-rules.test.yml

# The socket.io browser client that `go build` embeds (server/bundle.go):
# copied unmodified from the socket.io-client package package-lock.json pins
# (npm ci first when node_modules lacks it). Without it the binary answers
# 404 at /socket.io/socket.io.js.
CLIENT_DIST = node_modules/socket.io-client/dist
bundle:
	@[ -f $(CLIENT_DIST)/socket.io.js ] || ! command -v npm >/dev/null || npm ci --no-audit --no-fund
	@if [ -f $(CLIENT_DIST)/socket.io.js ]; then \
		cp $(CLIENT_DIST)/socket.io*.js $(CLIENT_DIST)/socket.io*.js.map node_modules/socket.io-client/package.json server/clientdist/; \
	else echo "make bundle: no $(CLIENT_DIST) (npm ci needs npm): building without the browser client" >&2; fi

# The charts of BENCHMARKS.md ("## Pictures"), drawn from the committed
# roomcast-bench --json reports in $(BENCH_RESULTS); fast, runs no benchmark.
.PHONY: plots bench-json
BENCH_RESULTS = cmd/roomcast-bench/results
plots:
	go run ./cmd/roomcast-bench/plot --in $(BENCH_RESULTS) --out $(BENCH_RESULTS)/plots

# The benchmarks behind those reports: roomcast against the Node reference,
# 3 runs each, one after the other; about 15 minutes on 2 cores. Then
# `make plots`. BENCH_WRAP prefixes every run (on a machine shared with
# other benchmarks: BENCH_WRAP="flock /tmp/roomcast-bench.lock"). The idle
# 100,000-client and cross-node throughput reports come from their own runs
# (see BENCHMARKS.md).
BENCH_WRAP ?=
FANOUT_CLIENTS ?= 1000:1k 2500:2.5k 5000:5k 10000:10k
bench-json: build deps
	mkdir -p $(BENCH_RESULTS)
	for nt in $(FANOUT_CLIENTS); do \
		$(BENCH_WRAP) bin/roomcast-bench --scenario fanout --clients $${nt%%:*} --interval 1s --compare --runs 3 \
			--json $(BENCH_RESULTS)/fanout-$${nt#*:}.json || exit 1; \
	done
	$(BENCH_WRAP) bin/roomcast-bench --scenario echo --clients 10000 --compare --runs 3 --json $(BENCH_RESULTS)/echo-10k.json
	$(BENCH_WRAP) bin/roomcast-bench --scenario idle --clients 10000 --compare --runs 3 --json $(BENCH_RESULTS)/idle-10k.json
