package plot

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hex is how vgsvg writes a fill or stroke colour.
func hex(c color.RGBA) string { return fmt.Sprintf("#%02X%02X%02X", c.R, c.G, c.B) }

func readSVG(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "<?xml") || !strings.HasSuffix(strings.TrimSpace(s), "</svg>") {
		t.Fatalf("%s is not a whole SVG document", name)
	}
	return s
}

// wantText fails unless every string is the whole text of an SVG <text>.
func wantText(t *testing.T, name, svg string, texts ...string) {
	t.Helper()
	for _, x := range texts {
		if !strings.Contains(svg, ">"+x+"</text>") {
			t.Errorf("%s: no text %q", name, x)
		}
	}
}

// wantCount fails unless the SVG holds style exactly n times.
func wantCount(t *testing.T, name, svg, what, style string, n int) {
	t.Helper()
	if got := strings.Count(svg, `style="`+style+`"`); got != n {
		t.Errorf("%s: %d× %s (%s), want %d", name, got, what, style, n)
	}
}

func TestRunFixture(t *testing.T) {
	out := t.TempDir()
	var log bytes.Buffer
	written, err := Run("testdata", out, &log)
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, log.String())
	}
	want := []string{FileFanout, FileEcho, FileMemory, FileMemoryTotal, FileThroughput}
	if len(written) != len(want) {
		t.Fatalf("wrote %q, want %q", written, want)
	}
	for i, w := range want {
		if filepath.Base(written[i]) != w {
			t.Errorf("wrote %q, want %q", written, want)
		}
	}
	if !strings.Contains(log.String(), "skipping testdata/not-a-report.json") {
		t.Errorf("log does not note the skipped non-report:\n%s", log.String())
	}
	rc, node := hex(colorRoomcast), hex(colorNode)

	// Fan-out: p50 is drawn with filled circles, p99 with stroked
	// triangles (glyph line width 0.5), one of each in the legend too.
	// roomcast measured 1,000 / 2,500 / 5,000 clients; the Node run at
	// 2,500 failed, so Node has two points per line.
	svg := readSVG(t, out, FileFanout)
	wantText(t, FileFanout, svg, "roomcast p50", "roomcast p99", "Node (socket.io) p50", "Node (socket.io) p99",
		"1,000", "2,500", "5,000", "clients in the room")
	if !strings.Contains(svg, "2 vCPU") || !strings.Contains(svg, "20 broadcasts of 100 B, one every 1 s") {
		t.Errorf("%s: title lacks the machine or the broadcast setup", FileFanout)
	}
	wantCount(t, FileFanout, svg, "roomcast p50 points", "fill:"+rc, 3+1)
	wantCount(t, FileFanout, svg, "Node p50 points", "fill:"+node, 2+1)
	wantCount(t, FileFanout, svg, "roomcast p99 points", "fill:none;stroke:"+rc+";stroke-width:0.5", 3+1)
	wantCount(t, FileFanout, svg, "Node p99 points", "fill:none;stroke:"+node+";stroke-width:0.5", 2+1)

	// Echo at 10,000: one bar each (plus the legend's swatch), labelled
	// with the median of the three runs; roomcast's with its ratio to Node.
	svg = readSVG(t, out, FileEcho)
	wantText(t, FileEcho, svg, "roomcast", "Node (socket.io)", "10,000 clients", "53,000 (1.71×)", "31,000")
	wantCount(t, FileEcho, svg, "roomcast bars", "fill:"+rc, 1+1)
	wantCount(t, FileEcho, svg, "Node bars", "fill:"+node, 1+1)

	// Idle at 10,000 (both) and 100,000 (roomcast only).
	svg = readSVG(t, out, FileMemory)
	wantText(t, FileMemory, svg, "roomcast", "Node (socket.io)", "10,000 clients", "100,000 clients", "14.2 (0.89×)", "16.0", "13.1", "not run")
	wantCount(t, FileMemory, svg, "roomcast bars", "fill:"+rc, 2+1)
	wantCount(t, FileMemory, svg, "Node bars", "fill:"+node, 1+1)
	svg = readSVG(t, out, FileMemoryTotal)
	wantText(t, FileMemoryTotal, svg, "1,320", "148 (0.89×)", "166")
	wantCount(t, FileMemoryTotal, svg, "roomcast bars", "fill:"+rc, 2+1)

	// Throughput: redis named in the results, nats only in the file name;
	// the Node nats run without a rate is left out of the median.
	svg = readSVG(t, out, FileThroughput)
	wantText(t, FileThroughput, svg, "nats", "redis", "61,000 (5.08×)", "40,000 (4.44×)", "12,000", "9,000")
	wantCount(t, FileThroughput, svg, "roomcast bars", "fill:"+rc, 2+1)
	wantCount(t, FileThroughput, svg, "Node bars", "fill:"+node, 2+1)
}

func TestMedians(t *testing.T) {
	var log bytes.Buffer
	reps, err := load("testdata", &log)
	if err != nil {
		t.Fatal(err)
	}
	fan := byClients(ofScenario(reps, scenFanout), &log)
	if len(fan) != 3 || fan[0].Config.Clients != 1000 || fan[1].Config.Clients != 2500 || fan[2].Config.Clients != 5000 {
		t.Fatalf("fanout reports by clients: %+v", fan)
	}
	p50 := func(r *result) (float64, bool) {
		if r.Fanout == nil {
			return 0, false
		}
		return r.Fanout.Completion.P50, true
	}
	for _, c := range []struct {
		rep    *report
		target string
		want   spread
	}{
		{fan[0], "roomcast", spread{Median: 12, Min: 11, Max: 13, N: 3}},
		{fan[0], "node", spread{Median: 22, Min: 21, Max: 23, N: 3}},
		// The failed Node run at 5,000 does not count: median of two.
		{fan[2], "node", spread{Median: 82, Min: 81, Max: 83, N: 2}},
	} {
		got, ok := collect(c.rep, c.target, p50, &log)
		if !ok || got != c.want {
			t.Errorf("%s %s: %+v %v, want %+v", c.rep.Path, c.target, got, ok, c.want)
		}
	}
	if _, ok := collect(fan[1], "node", p50, &log); ok {
		t.Error("2,500 clients: the only Node run failed, yet a value was collected")
	}
}

func TestChartsSkippedWithoutData(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	b, err := os.ReadFile("testdata/echo-10k.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "echo-10k.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	written, err := Run(in, out, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 1 || filepath.Base(written[0]) != FileEcho {
		t.Fatalf("wrote %q, want only %s", written, FileEcho)
	}
	for _, f := range []string{FileFanout, FileMemory, FileMemoryTotal, FileThroughput} {
		if !strings.Contains(log.String(), "no "+f+": ") {
			t.Errorf("no note about the missing %s:\n%s", f, log.String())
		}
		if _, err := os.Stat(filepath.Join(out, f)); !os.IsNotExist(err) {
			t.Errorf("%s written without data", f)
		}
	}
}

func TestNoReportIsAnError(t *testing.T) {
	in := t.TempDir()
	if err := os.WriteFile(filepath.Join(in, "x.json"), []byte(`{"results": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := Run(in, t.TempDir(), &log); err == nil {
		t.Fatal("Run drew charts from no report")
	}
}

func TestCommand(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := Command([]string{"--in", "testdata", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), ".svg\n"); n != 5 {
		t.Errorf("printed %d SVG paths, want 5:\n%s", n, stdout.String())
	}
	if code := Command([]string{"--in", "testdata", "extra"}, &stdout, &stderr); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
	if code := Command([]string{"--nope"}, &stdout, &stderr); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		``, `   `, `null`, `"x"`, `{}`, `[]`, `{"results": []}`,
		`[{"scenario": "fanout"}]`, // no target
		`[{"scenario": "fanout", "target": "a"}, {"scenario": "echo", "target": "a"}]`,
		`[{"target": "a"}]`, // no scenario anywhere
		`{"results": [{"target": "a", "scenario": "echo"}]`,
	} {
		if _, err := parse("x.json", []byte(in)); err == nil {
			t.Errorf("parse(%q) accepted it", in)
		}
	}
}

func TestCommas(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 55830.4: "55,830", 1234567: "1,234,567", -2500: "-2,500"} {
		if got := commas(v); got != want {
			t.Errorf("commas(%v) = %q, want %q", v, got, want)
		}
	}
}

// FuzzParse: whatever the bytes, parse returns a usable report or an
// error, and drawing every chart from an accepted report neither panics nor
// fails.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.json")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"scenario":"echo","target":"roomcast","echo":{"per_second":-1}}]`))
	f.Add([]byte(`[{"scenario":"idle","target":"node","clients":-5,"server":{"per_conn_kib":1e308}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := parse("throughput-x.json", b)
		if err != nil {
			return
		}
		if len(rep.Results) == 0 || rep.Config.Scenario == "" {
			t.Fatalf("accepted a report without results or scenario: %+v", rep)
		}
		var log bytes.Buffer
		for _, draw := range []chartFunc{fanoutChart, echoChart, memoryChart, memoryTotalChart, throughputChart} {
			if _, _, err := draw([]*report{rep}, &log); err != nil {
				t.Fatalf("drawing from an accepted report: %v", err)
			}
		}
	})
}
