package plot

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Size of every chart.
var (
	chartW = vg.Points(600)
	chartH = vg.Points(380)
)

// Series colours: roomcast and the Node reference keep theirs across charts.
var (
	colorRoomcast = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorNode     = color.RGBA{R: 0xe6, G: 0x6b, B: 0x00, A: 0xff}
	colorOthers   = []color.Color{
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
		color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	}
)

func targetColor(t string, i int) color.Color {
	switch t {
	case "roomcast":
		return colorRoomcast
	case "node":
		return colorNode
	}
	return colorOthers[i%len(colorOthers)]
}

// targetName is the legend name of a target.
func targetName(t string) string {
	if t == "node" {
		return "Node (socket.io)"
	}
	return t
}

// machineLine describes where the reports were measured and how busy the
// rest of the machine was (other_cpu_s: CPU time of every other process
// during the measured phase, the load of other work on the shared cores).
func machineLine(reps []*report) string {
	cpus := map[int]bool{}
	var other []float64
	for _, rep := range reps {
		cpus[rep.Machine.CPUs] = true
		for _, r := range rep.Results {
			if r.Error == "" {
				other = append(other, r.OtherCPU)
			}
		}
	}
	var cs []string
	for c := range cpus {
		if c > 0 {
			cs = append(cs, fmt.Sprint(c))
		}
	}
	sort.Strings(cs)
	s := "machine: ? vCPU"
	if len(cs) > 0 {
		s = "machine: " + strings.Join(cs, "/") + " vCPU"
	}
	s += ", shared with other work"
	if len(other) > 0 {
		sort.Float64s(other)
		s += fmt.Sprintf(" (other processes: median %.1f CPU-s per run)", other[len(other)/2])
	}
	return s
}

// newPlot starts a chart; vgrid adds vertical grid lines at the X ticks.
func newPlot(title []string, xlabel, ylabel string, vgrid bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = strings.Join(title, "\n")
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Y.Tick.Marker = commaTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(8)
	p.Legend.YOffs = -vg.Points(4)
	g := plotter.NewGrid()
	if !vgrid {
		g.Vertical.Color = nil
	}
	p.Add(g)
	return p
}

func render(p *plot.Plot) ([]byte, error) {
	c := vgsvg.New(chartW, chartH)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	// The text was laid out with the metrics of Liberation Serif, which the
	// SVG names but does not embed (that would add ~300 KB per chart); Times
	// New Roman has the same metrics, and a viewer without either should
	// still pick a serif face rather than its default.
	return bytes.ReplaceAll(b.Bytes(), []byte("font-family:Liberation Serif;"),
		[]byte("font-family:'Liberation Serif','Times New Roman',Times,serif;")), nil
}

// commaTicks are plot.DefaultTicks with thousands separators.
type commaTicks struct{}

func (commaTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	if math.Max(math.Abs(min), math.Abs(max)) < 1000 {
		return ts
	}
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = commas(ts[i].Value)
		}
	}
	return ts
}

// commas formats v rounded to an integer with thousands separators.
func commas(v float64) string {
	s := fmt.Sprintf("%.0f", math.Abs(v))
	var b strings.Builder
	if v < 0 && s != "0" {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// runsNote says over how many runs the medians are.
func runsNote(reps []*report) string {
	lo, hi := math.MaxInt, 0
	for _, rep := range reps {
		n := map[string]int{}
		for _, r := range rep.Results {
			if r.Error == "" {
				n[r.Target]++
			}
		}
		for _, c := range n {
			lo, hi = min(lo, c), max(hi, c)
		}
	}
	switch {
	case hi == 0:
		return ""
	case hi == 1:
		return "one run per target"
	case lo == hi:
		return fmt.Sprintf("median of %d runs, whiskers: lowest and highest run", hi)
	}
	return fmt.Sprintf("median of %d–%d runs, whiskers: lowest and highest run", lo, hi)
}

// errBars is the spread of the runs as plotter error bars.
type errBars struct {
	xy   plotter.XYs
	low  []float64
	high []float64
}

func (e errBars) Len() int                    { return len(e.xy) }
func (e errBars) XY(i int) (float64, float64) { return e.xy[i].X, e.xy[i].Y }
func (e errBars) YError(i int) (float64, float64) {
	return e.low[i], e.high[i]
}

func (e *errBars) add(x float64, s spread) {
	e.xy = append(e.xy, plotter.XY{X: x, Y: s.Median})
	e.low = append(e.low, s.Median-s.Min)
	e.high = append(e.high, s.Max-s.Median)
}

// --- fan-out: broadcast-to-last time against the number of clients ---

func fanoutChart(reps []*report, log io.Writer) ([]byte, string, error) {
	reps = byClients(ofScenario(reps, scenFanout), log)
	if len(reps) == 0 {
		return nil, "no fanout report", nil
	}
	p := newPlot([]string{
		"Room fan-out: one broadcast to every client of a room, time until the last receives it",
		fanoutSetup(reps, log) + "; " + runsNote(reps),
		machineLine(reps),
	}, "clients in the room", "publish → last receiver, ms (lower is better)", true)
	var ticks []plot.Tick
	for _, rep := range reps {
		ticks = append(ticks, plot.Tick{Value: float64(rep.Config.Clients), Label: commas(float64(rep.Config.Clients))})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min = 0
	p.X.Max = float64(reps[len(reps)-1].Config.Clients) * 1.05
	drawn := 0
	ts := targets(reps)
	nt := len(ts)
	for i, t := range ts {
		col := targetColor(t, i)
		for _, q := range []struct {
			name  string
			get   func(*result) (float64, bool)
			dash  []vg.Length
			glyph draw.GlyphDrawer
		}{
			{"p50", func(r *result) (float64, bool) {
				if r.Fanout == nil {
					return 0, false
				}
				return r.Fanout.Completion.P50, true
			}, nil, draw.CircleGlyph{}},
			{"p99", func(r *result) (float64, bool) {
				if r.Fanout == nil {
					return 0, false
				}
				return r.Fanout.Completion.P99, true
			}, []vg.Length{vg.Points(5), vg.Points(3)}, draw.TriangleGlyph{}},
		} {
			var eb errBars
			for _, rep := range reps {
				if s, ok := collect(rep, t, q.get, log); ok {
					eb.add(float64(rep.Config.Clients), s)
				} else if q.name == "p50" {
					fmt.Fprintf(log, "plot: %s: no successful %s run: no %s point at %d clients\n", rep.Path, t, t, rep.Config.Clients)
				}
			}
			if len(eb.xy) == 0 {
				continue
			}
			line, pts, err := plotter.NewLinePoints(eb.xy)
			if err != nil {
				return nil, "", err
			}
			line.Color, line.Width, line.Dashes = col, vg.Points(1.5), q.dash
			pts.Color, pts.Shape, pts.Radius = col, q.glyph, vg.Points(3)
			bars, err := plotter.NewYErrorBars(eb)
			if err != nil {
				return nil, "", err
			}
			bars.Color, bars.CapWidth = col, vg.Points(6)
			// Each target's points and whiskers sit a little to the side
			// of the tick so that the whiskers of the others stay visible.
			dodge := vg.Points(4) * vg.Length(float64(i)-float64(nt-1)/2)
			p.Add(offsetPlotter{line, dodge}, offsetPlotter{pts, dodge}, offsetPlotter{bars, dodge})
			p.Legend.Add(targetName(t)+" "+q.name, line, pts)
			drawn++
		}
	}
	if drawn == 0 {
		return nil, "no successful fanout run", nil
	}
	svg, err := render(p)
	return svg, "", err
}

// fanoutSetup describes the broadcasts of the fan-out reports, which should
// all be alike.
func fanoutSetup(reps []*report, log io.Writer) string {
	desc := func(c config) string {
		return fmt.Sprintf("%d broadcasts of %d B, one every %s", c.Messages, c.Payload, duration(time.Duration(c.Interval)))
	}
	s, from := "", ""
	for _, rep := range reps {
		if rep.Config.Messages == 0 {
			continue // a bare list of results: no config
		}
		d := desc(rep.Config)
		if s == "" {
			s, from = d, rep.Path
			continue
		}
		if d != s {
			fmt.Fprintf(log, "plot: fanout reports differ: %s has %s, %s has %s\n", from, s, rep.Path, d)
			return "broadcasts differ between client counts"
		}
	}
	if s == "" {
		return "broadcasts not recorded"
	}
	return s
}

// --- bar charts ---

// barSet is a grouped bar chart: one group per category, one bar per
// target in each.
type barSet struct {
	cats    []string
	targets []string
	// vals[t][c] is target t in category c, nil when not measured.
	vals [][]*spread
}

func (b *barSet) any() bool {
	for _, vs := range b.vals {
		for _, v := range vs {
			if v != nil {
				return true
			}
		}
	}
	return false
}

// ratio is " (R×)" after roomcast's value in a category where Node was
// measured too: roomcast's median over Node's.
func (b *barSet) ratio(t, c int) string {
	if b.targets[t] != "roomcast" {
		return ""
	}
	for j, u := range b.targets {
		if u == "node" {
			if n := b.vals[j][c]; n != nil && n.Median > 0 {
				return fmt.Sprintf(" (%.2f×)", b.vals[t][c].Median/n.Median)
			}
		}
	}
	return ""
}

// drawBars adds the bars, whiskers and value labels of b to p: one bar per
// measured value (none where a target was not measured, which is labelled
// "not run").
func drawBars(p *plot.Plot, b *barSet, label func(float64) string) error {
	n := len(b.targets)
	// A group takes 70% of its category's share of the ~520 pt wide data
	// area; the axis spans half a category beyond the first and last.
	w := vg.Points(min(70, 0.7*520/float64(max(1, n*len(b.cats)))))
	for i, t := range b.targets {
		col := targetColor(t, i)
		offset := w * vg.Length(float64(i)-float64(n-1)/2)
		var eb errBars
		var lab, missing plotter.XYLabels
		var first *plotter.BarChart
		for c, s := range b.vals[i] {
			if s == nil {
				missing.XYs = append(missing.XYs, plotter.XY{X: float64(c)})
				missing.Labels = append(missing.Labels, "not run")
				continue
			}
			bc, err := plotter.NewBarChart(plotter.Values{s.Median}, w)
			if err != nil {
				return err
			}
			bc.Color, bc.LineStyle.Width, bc.Offset, bc.XMin = col, 0, offset, float64(c)
			p.Add(bc)
			if first == nil {
				first = bc
			}
			eb.add(float64(c), *s)
			lab.XYs = append(lab.XYs, plotter.XY{X: float64(c), Y: s.Max})
			lab.Labels = append(lab.Labels, label(s.Median)+b.ratio(i, c))
		}
		if first == nil {
			continue // never measured: no legend entry either
		}
		p.Legend.Add(targetName(t), first)
		bars, err := plotter.NewYErrorBars(eb)
		if err != nil {
			return err
		}
		bars.Color, bars.CapWidth = color.Black, w/3
		p.Add(offsetPlotter{bars, offset})
		for _, l := range []plotter.XYLabels{lab, missing} {
			if len(l.XYs) == 0 {
				continue
			}
			ls, err := plotter.NewLabels(l)
			if err != nil {
				return err
			}
			for j := range ls.TextStyle {
				ls.TextStyle[j].XAlign = draw.XCenter
				ls.TextStyle[j].Font.Size = vg.Points(9)
			}
			ls.Offset = vg.Point{X: offset, Y: vg.Points(3)}
			p.Add(ls)
		}
	}
	p.NominalX(b.cats...)
	p.X.Min, p.X.Max = -0.5, float64(len(b.cats))-0.5
	// Head room for the labels above the highest bar and the legend.
	p.Y.Max *= 1.25
	return nil
}

// offsetPlotter draws a plotter shifted by dx on the canvas (the error bars
// of a bar that is offset within its group).
type offsetPlotter struct {
	plot.Plotter
	dx vg.Length
}

func (o offsetPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	c.Push()
	defer c.Pop()
	c.Translate(vg.Point{X: o.dx})
	o.Plotter.Plot(c, p)
}

func (o offsetPlotter) DataRange() (xmin, xmax, ymin, ymax float64) {
	if r, ok := o.Plotter.(plot.DataRanger); ok {
		return r.DataRange()
	}
	return math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
}

// barsByClients is a bar set with one category per client count.
func barsByClients(reps []*report, get func(*result) (float64, bool), log io.Writer) *barSet {
	b := &barSet{targets: targets(reps)}
	for _, rep := range reps {
		b.cats = append(b.cats, commas(float64(rep.Config.Clients))+" clients")
	}
	for _, t := range b.targets {
		row := make([]*spread, len(reps))
		for c, rep := range reps {
			if s, ok := collect(rep, t, get, log); ok {
				row[c] = &s
			}
		}
		b.vals = append(b.vals, row)
	}
	return b
}

func barChart(title []string, xlabel, ylabel string, b *barSet, label func(float64) string) ([]byte, error) {
	p := newPlot(title, xlabel, ylabel, false)
	p.Legend.Left, p.Legend.XOffs = false, -vg.Points(8)
	if err := drawBars(p, b, label); err != nil {
		return nil, err
	}
	return render(p)
}

func echoChart(reps []*report, log io.Writer) ([]byte, string, error) {
	reps = byClients(ofScenario(reps, scenEcho), log)
	if len(reps) == 0 {
		return nil, "no echo report", nil
	}
	b := barsByClients(reps, func(r *result) (float64, bool) {
		if r.Echo == nil {
			return 0, false
		}
		return r.Echo.PerSecond, true
	}, log)
	if !b.any() {
		return nil, "no successful echo run", nil
	}
	svg, err := barChart([]string{
		"Echo: every client keeps one acknowledged message in flight, acks per second",
		fmt.Sprintf("%d B payload; %s", reps[0].Config.Payload, runsNote(reps)),
		machineLine(reps),
	}, "", "echo rate, msg/s (higher is better)", b, commas)
	return svg, "", err
}

func memoryChart(reps []*report, log io.Writer) ([]byte, string, error) {
	reps = byClients(ofScenario(reps, scenIdle), log)
	if len(reps) == 0 {
		return nil, "no idle report", nil
	}
	b := barsByClients(reps, func(r *result) (float64, bool) {
		if r.Server == nil {
			return 0, false
		}
		return r.Server.PerConn, true
	}, log)
	if !b.any() {
		return nil, "no successful idle run with server memory", nil
	}
	svg, err := barChart([]string{
		"Idle memory per connection: server RSS growth over connected idle clients",
		runsNote(reps),
		machineLine(reps),
	}, "", "KiB per connection (lower is better)", b, func(v float64) string { return fmt.Sprintf("%.1f", v) })
	return svg, "", err
}

func memoryTotalChart(reps []*report, log io.Writer) ([]byte, string, error) {
	reps = byClients(ofScenario(reps, scenIdle), log)
	if len(reps) < 2 {
		return nil, "idle reports at fewer than two client counts (the per-connection chart says it all)", nil
	}
	b := barsByClients(reps, func(r *result) (float64, bool) {
		if r.Server == nil || r.Server.RSSLoaded == 0 {
			return 0, false
		}
		return float64(r.Server.RSSLoaded) / 1024, true
	}, log)
	if !b.any() {
		return nil, "no successful idle run with server memory", nil
	}
	svg, err := barChart([]string{
		"Idle memory in total: server RSS with every client connected",
		runsNote(reps),
		machineLine(reps),
	}, "", "server RSS, MiB (lower is better)", b, commas)
	return svg, "", err
}

func throughputChart(reps []*report, log io.Writer) ([]byte, string, error) {
	reps = ofScenario(reps, scenThroughput)
	if len(reps) == 0 {
		return nil, "no throughput report (throughput-<adapter>.json)", nil
	}
	// One category per adapter; a target's runs of one adapter may come
	// from several files.
	perAdapter := map[string]*report{}
	for _, rep := range reps {
		for _, r := range rep.Results {
			a := adapterOf(rep, &r)
			agg := perAdapter[a]
			if agg == nil {
				agg = &report{Path: rep.Path, Machine: rep.Machine, Config: rep.Config}
				perAdapter[a] = agg
			}
			agg.Results = append(agg.Results, r)
		}
	}
	adapters := make([]string, 0, len(perAdapter))
	for a := range perAdapter {
		adapters = append(adapters, a)
	}
	sort.Strings(adapters)
	grouped := make([]*report, len(adapters))
	for i, a := range adapters {
		grouped[i] = perAdapter[a]
	}
	b := &barSet{cats: adapters, targets: targets(grouped)}
	for _, t := range b.targets {
		row := make([]*spread, len(grouped))
		for c, rep := range grouped {
			s, ok := collect(rep, t, func(r *result) (float64, bool) {
				if r.Throughput == nil || r.Throughput.MaxSustained == nil {
					return 0, false
				}
				return *r.Throughput.MaxSustained, true
			}, log)
			if ok {
				row[c] = &s
			}
		}
		b.vals = append(b.vals, row)
	}
	if !b.any() {
		return nil, "no throughput run with throughput.sustained_rate", nil
	}
	svg, err := barChart([]string{
		"Cross-node room throughput: highest publish rate the other node delivers in full",
		runsNote(grouped),
		machineLine(reps),
	}, "adapter", "max sustained, msg/s (higher is better)", b, commas)
	return svg, "", err
}

// duration writes whole seconds as "1 s", anything else as milliseconds.
func duration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return fmt.Sprintf("%g ms", float64(d)/float64(time.Millisecond))
}
