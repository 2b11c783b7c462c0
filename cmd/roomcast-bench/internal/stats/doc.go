// Package stats holds the latency statistics of roomcast-bench: a
// log-linear Histogram of non-negative int64 values (nanoseconds) with about
// 1.6 % relative precision, its JSON-friendly Snapshot for merging results of
// several processes, and Median for summarising repeated runs.
//
// Histogram.Record is lock-free and safe for concurrent use; reading
// (Snapshot) while recording gives a consistent-enough view for progress but
// final numbers should be read after recording stops.
package stats
