.PHONY: run test gotest nodetest deps fuzz fuzz-short bench build bundle

# FUZZTIME is how long `make fuzz` runs each fuzz target (go test -fuzztime);
# FUZZTIME_SHORT the same for `make fuzz-short`, which `make test` runs.
FUZZTIME ?= 30s
FUZZTIME_SHORT ?= 3s

build: bundle
	go build -o bin/roomcast ./cmd/roomcast
	go build -o bin/roomcast-bench ./cmd/roomcast-bench

run:
	go run ./cmd/roomcast serve

test: gotest fuzz-short nodetest

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
