.PHONY: run test gotest nodetest bench build soak

build:
	go build -o bin/roomcast ./cmd/roomcast
	go build -o bin/roomcast-bench ./cmd/roomcast-bench

run:
	go run ./cmd/roomcast serve

test: gotest nodetest

gotest:
	gofmt -l . | grep -v node_modules | (! grep .)
	go vet ./...
	go test -race -count=1 ./...

nodetest: build
	npm test
	npm run test:harness

bench:
	go test -run '^$$' -bench . -benchmem ./...
