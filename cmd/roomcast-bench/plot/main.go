// Command plot draws the charts of BENCHMARKS.md from roomcast-bench --json
// reports:
//
//	go run ./cmd/roomcast-bench/plot --in cmd/roomcast-bench/results --out cmd/roomcast-bench/results/plots
//
// It is a program of its own, not a subcommand of roomcast-bench, so that
// the plotting library (and the fonts it loads at start) stays out of the
// load generator and its worker processes.
package main

import (
	"os"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/plot"
)

func main() {
	os.Exit(plot.Command(os.Args[1:], os.Stdout, os.Stderr))
}
