package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The shipped monitoring files, tested against real Prometheus tools.
const (
	rulesFile     = "../deploy/prometheus/roomcast-rules.yml"
	dashboardFile = "../deploy/grafana/roomcast-dashboard.json"
)

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required for the monitoring tests: install it (Debian: apt-get install prometheus)", name)
	}
	return p
}

// dashboardQueries returns every PromQL query of the Grafana dashboard,
// with Grafana's variables replaced by what they stand for ($job: every
// job, $__rate_interval: 1m).
func dashboardQueries(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	r := strings.NewReplacer(`$job`, `.+`, `$__rate_interval`, `1m`)
	var qs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			qs = append(qs, r.Replace(tg.Expr))
		}
	}
	if strings.Contains(strings.Join(qs, "\n"), "$") {
		t.Fatalf("a dashboard variable is left unreplaced: %q", qs)
	}
	return qs
}

// exportedMetrics scrapes a live server and returns the names it exports
// (a histogram's _bucket, _sum and _count included).
func exportedMetrics(t testing.TB, addr string) map[string]bool {
	t.Helper()
	_, body := get(t, "http://"+addr+"/metrics")
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
			if f[3] == "histogram" || f[3] == "summary" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[f[2]+s] = true
				}
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\b(?:roomcast|go|process)_[a-z0-9_]+\b`)

func TestDashboardQueries(t *testing.T) {
	promtool := needTool(t, "promtool")
	qs := dashboardQueries(t)
	// Every query parses: promtool checks them as recording rules.
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range qs {
		fmt.Fprintf(&rules, "      - record: dashboard:q%d\n        expr: %q\n", i, q)
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	os.WriteFile(f, []byte(rules.String()), 0o600)
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("a dashboard query does not parse:\n%s", out)
	}
	// Every metric they name is one a live server exports.
	// A socket that came and went makes the per-reason series exist.
	srv, addr := startServer(t, Config{})
	c := dialRaw(t, addr, 0)
	c.connect("/")
	c.ws.Close()
	waitFor(t, func() bool { return srv.engine.Len() == 0 })
	exported := exportedMetrics(t, addr)
	for _, q := range qs {
		names := metricName.FindAllString(q, -1)
		if len(names) == 0 {
			t.Errorf("query names no metric: %s", q)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("query %s names %s, which the server does not export", q, n)
			}
		}
	}
}

// The alert rules name only exported metrics too.
func TestRulesNameExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, Config{})
	exported := exportedMetrics(t, addr)
	for _, n := range metricName.FindAllString(string(b), -1) {
		if !exported[n] {
			t.Errorf("the rules name %s, which the server does not export", n)
		}
	}
}

// renderChurnRule returns the shipped rules with the churn alert's
// threshold and for: changed (the rest unchanged).
func renderChurnRule(t testing.TB, threshold, forDur string) string {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "alert: RoomcastConnectionChurnHigh")
	j := strings.Index(s[i:], "- alert:")
	if i < 0 || j < 0 {
		t.Fatal("no churn rule in the rules file")
	}
	block := s[i : i+j]
	nb := strings.Replace(strings.Replace(block, "> 500", "> "+threshold, 1), "for: 2m", "for: "+forDur, 1)
	if nb == block || strings.Count(nb, threshold) == 0 || !strings.Contains(nb, "for: "+forDur) {
		t.Fatalf("the churn rule changed shape; update this test:\n%s", block)
	}
	return s[:i] + nb + s[i+j:]
}

// promServer is a prometheus process of a test.
type promServer struct {
	t    testing.TB
	base string
}

func startPrometheus(t *testing.T, rules, target string) *promServer {
	t.Helper()
	bin := needTool(t, "prometheus")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rules), 0o600)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: roomcast
    static_configs:
      - targets: [%q]
`, target)
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	log, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", b)
		}
	})
	p := &promServer{t: t, base: "http://" + addr}
	waitFor(t, func() bool {
		res, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return p
}

// query runs an instant query and returns its result, failing on an error.
func (p *promServer) query(q string) []struct {
	Metric map[string]string
	Value  [2]any
} {
	p.t.Helper()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	p.getJSON("/api/v1/query?query="+url.QueryEscape(q), &r)
	if r.Status != "success" {
		p.t.Fatalf("query %s: %s", q, r.Error)
	}
	return r.Data.Result
}

func (p *promServer) getJSON(path string, v any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.base+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, v); err != nil {
		p.t.Fatalf("%s: %v: %s", path, err, b)
	}
}

// alertState is the state of an alert ("" when inactive).
func (p *promServer) alertState(name string) string {
	p.t.Helper()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string
				State  string
			}
		}
	}
	p.getJSON("/api/v1/alerts", &r)
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == name {
			return a.State
		}
	}
	return ""
}

// churn opens and closes n polling sessions over one keep-alive client.
func churn(t *testing.T, c *http.Client, addr string, n int) {
	t.Helper()
	base := "http://" + addr + "/socket.io/?EIO=4&transport=polling"
	for range n {
		res, err := c.Get(base)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var hs struct{ Sid string }
		if len(b) < 2 || json.Unmarshal(b[1:], &hs) != nil || hs.Sid == "" {
			t.Fatalf("handshake answered %d %q", res.StatusCode, b)
		}
		res, err = c.Post(base+"&sid="+hs.Sid, "text/plain", strings.NewReader("1"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// End to end: a real Prometheus with the shipped rules scrapes a running
// server; at rest the churn alert stays inactive, and a bounded storm of
// connections makes it pending, then firing. The rendered copy of the
// rules lowers the churn threshold from 500/s to 20/s and its for: from
// 2m to 3s, so a loaded 2-core machine reaches it within a bounded
// number of connections; every other rule is as shipped.
func TestPrometheusChurnAlert(t *testing.T) {
	needTool(t, "promtool")
	srv, addr := startServer(t, Config{})
	p := startPrometheus(t, renderChurnRule(t, "20", "3s"), addr)
	const alert = "RoomcastConnectionChurnHigh"

	// At rest: once several scrapes and evaluations have passed, the alert
	// is not pending or firing.
	waitFor(t, func() bool {
		r := p.query(`count_over_time(up{job="roomcast"}[1m])`)
		return len(r) == 1 && r[0].Value[1] != "1" && r[0].Value[1] != "2" && r[0].Value[1] != "3" && r[0].Value[1] != "4"
	})
	if up := p.query(`up{job="roomcast"}`); len(up) != 1 || up[0].Value[1] != "1" {
		t.Fatalf("target not up: %v", up)
	}
	if s := p.alertState(alert); s != "" {
		t.Fatalf("%s is %s at rest", alert, s)
	}
	// Every dashboard query evaluates against the live data.
	for _, q := range dashboardQueries(t) {
		p.query(q)
	}

	// The storm: bounded in count; stops once the alert fires.
	const maxConnects, batch = 30000, 100
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	seen := map[string]bool{}
	total := 0
	start := time.Now()
	for ; total < maxConnects && !seen["firing"]; total += batch {
		churn(t, client, addr, batch)
		seen[p.alertState(alert)] = true
	}
	if !seen["firing"] {
		t.Fatalf("%s did not fire after %d connections (states seen %v)", alert, total, seen)
	}
	if !seen["pending"] {
		t.Logf("the alert went firing between two looks (pending not seen)")
	}
	t.Logf("%s fired after %d connections (%.0f connects/s with the alert checks between batches)", alert, total, float64(total)/time.Since(start).Seconds())
	// The storm left no sessions behind.
	waitFor(t, func() bool { return srv.engine.Len() == 0 })
}
