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
