// Package plot draws the headline comparisons of BENCHMARKS.md as SVG from
// the JSON reports of roomcast-bench (--json): room fan-out time against the
// number of clients, echo rate, idle memory per connection and cross-node
// throughput, roomcast against the Node reference. Values are the medians
// over the successful runs of each target, whiskers the lowest and highest
// run.
//
//	roomcast-bench plot --in cmd/roomcast-bench/results --out cmd/roomcast-bench/results/plots
package plot

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Chart file names, in the order they are drawn.
const (
	FileFanout      = "fanout.svg"
	FileEcho        = "echo.svg"
	FileMemory      = "memory.svg"
	FileMemoryTotal = "memory-total.svg"
	FileThroughput  = "throughput.svg"
)

// Command is `roomcast-bench plot [--in DIR] [--out DIR]`; it returns the
// exit status.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "cmd/roomcast-bench/results", "directory of roomcast-bench --json files")
	out := fs.String("out", "cmd/roomcast-bench/results/plots", "directory the SVG files are written to")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./cmd/roomcast-bench/plot [--in DIR] [--out DIR]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "roomcast-bench plot: unexpected arguments %q\n", fs.Args())
		return 2
	}
	written, err := Run(*in, *out, stderr)
	for _, w := range written {
		fmt.Fprintln(stdout, w)
	}
	if err != nil {
		fmt.Fprintln(stderr, "roomcast-bench plot:", err)
		return 1
	}
	return 0
}

// chartFunc draws one chart from the reports, or returns nil and why not.
type chartFunc func(reps []*report, log io.Writer) (svg []byte, why string, err error)

// Run reads every *.json report of in and writes the charts they allow to
// out, returning the paths written. A chart without data is skipped with a
// note on log; it is an error when no chart at all could be drawn.
func Run(in, out string, log io.Writer) ([]string, error) {
	reps, err := load(in, log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	charts := []struct {
		file string
		draw chartFunc
	}{
		{FileFanout, fanoutChart},
		{FileEcho, echoChart},
		{FileMemory, memoryChart},
		{FileMemoryTotal, memoryTotalChart},
		{FileThroughput, throughputChart},
	}
	var written []string
	for _, c := range charts {
		svg, why, err := c.draw(reps, log)
		if err != nil {
			return written, fmt.Errorf("%s: %w", c.file, err)
		}
		if svg == nil {
			fmt.Fprintf(log, "plot: no %s: %s\n", c.file, why)
			continue
		}
		p := filepath.Join(out, c.file)
		if err := os.WriteFile(p, svg, 0o644); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	if len(written) == 0 {
		return nil, fmt.Errorf("no chart: no usable roomcast-bench report in %s", in)
	}
	return written, nil
}
