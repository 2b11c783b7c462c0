// Package bench is the load generator behind cmd/roomcast-bench: scenarios
// (idle, fanout, echo, cross-node, slow), server spawning and /proc
// sampling, worker processes, and the report.
//
// Entry points: Run executes a Config (one target, or roomcast and the Node
// reference alternately with --compare) and returns the Report it printed;
// ServeWorker is the body of a worker process (the program re-executed with
// WorkerArg), which holds a share of the clients when one process cannot
// (20,000 open files per process on the bench machine).
//
// Clients live in pools: one reader goroutine per connection, no goroutine
// per message; receive-side statistics are lock-free histograms merged
// across processes. Every phase is bounded in time (connect, join and drain
// timeouts) and every wait ends with the context.
package bench
