package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
)

// exactQuantile is the reference: the ceil(q*n)-th smallest value.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func TestBucketsCoverAndOrder(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<40 + 12345, math.MaxInt64} {
		i := bucketOf(v)
		if i < prev || i >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d (prev %d, n %d)", v, i, prev, nBuckets)
		}
		prev = i
		lo, w := bucketRange(i)
		if v < lo || v-lo >= w {
			t.Fatalf("value %d outside its bucket %d [%d, %d+%d)", v, i, lo, lo, w)
		}
		if v >= subCount && float64(w)/float64(lo) > 1.0/subCount+1e-12 {
			t.Fatalf("bucket %d too wide: %d at %d", i, w, lo)
		}
	}
}

func TestQuantilesKnownData(t *testing.T) {
	var h Histogram
	for v := int64(1); v <= 10000; v++ {
		h.Record(v)
	}
	s := h.Snapshot()
	if s.N != 10000 || s.Min != 1 || s.Max != 10000 || s.Sum != 10000*10001/2 {
		t.Fatalf("snapshot n=%d min=%d max=%d sum=%d", s.N, s.Min, s.Max, s.Sum)
	}
	tests := []struct {
		q    float64
		want int64
	}{{0, 1}, {0.001, 10}, {0.5, 5000}, {0.9, 9000}, {0.99, 9900}, {0.999, 9990}, {1, 10000}}
	for _, tc := range tests {
		got := s.Quantile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 1.0/subCount {
			t.Errorf("Quantile(%v) = %d, want %d ±1.6%%", tc.q, got, tc.want)
		}
	}
	if m := s.Mean(); m != 5000.5 {
		t.Errorf("Mean = %v", m)
	}
	sum := s.Summarize()
	if sum.N != 10000 || sum.Max != 0.01 || sum.Min != 0.000001 {
		t.Errorf("Summarize = %+v", sum)
	}
}

func TestSmallExactValues(t *testing.T) {
	var h Histogram
	for _, v := range []int64{5, 1, 3, 2, 4} {
		h.Record(v)
	}
	s := h.Snapshot()
	for q, want := range map[float64]int64{0: 1, 0.2: 1, 0.4: 2, 0.5: 3, 0.6: 3, 0.8: 4, 0.99: 5, 1: 5} {
		if got := s.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %d, want %d", q, got, want)
		}
	}
}

func TestEmptyAndNegative(t *testing.T) {
	var h Histogram
	s := h.Snapshot()
	if s.Quantile(0.5) != 0 || s.Mean() != 0 || s.N != 0 {
		t.Fatalf("empty snapshot: %+v", s)
	}
	h.Record(-7)
	s = h.Snapshot()
	if s.N != 1 || s.Min != 0 || s.Max != 0 || s.Quantile(0.99) != 0 {
		t.Fatalf("negative recorded as %+v", s)
	}
}

func TestRandomAgainstSortedSamples(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 50000)
	for i := range vals {
		// log-normal-ish latencies from ~10µs to ~1s, in ns
		vals[i] = int64(math.Exp(r.NormFloat64()*1.5 + 13))
		h.Record(vals[i])
	}
	sort.Slice(vals, func(a, b int) bool { return vals[a] < vals[b] })
	s := h.Snapshot()
	for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 0.999} {
		want := exactQuantile(vals, q)
		got := s.Quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 1.0/subCount {
			t.Errorf("Quantile(%v) = %d, exact %d (rel err %.4f)", q, got, want, rel)
		}
	}
}

func TestMergeEqualsCombined(t *testing.T) {
	var a, b, all Histogram
	for v := int64(0); v < 3000; v++ {
		x := v * v
		all.Record(x)
		if v%3 == 0 {
			a.Record(x)
		} else {
			b.Record(x)
		}
	}
	m := a.Snapshot()
	// Through JSON, as between worker processes.
	raw, err := json.Marshal(b.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var bs Snapshot
	if err := json.Unmarshal(raw, &bs); err != nil {
		t.Fatal(err)
	}
	m.Merge(bs)
	m.Merge(Snapshot{})
	want := all.Snapshot()
	if m.N != want.N || m.Sum != want.Sum || m.Min != want.Min || m.Max != want.Max || len(m.Buckets) != len(want.Buckets) {
		t.Fatalf("merged %+v\nwant %+v", m, want)
	}
	for i := range m.Buckets {
		if m.Buckets[i] != want.Buckets[i] {
			t.Fatalf("bucket %d: %v != %v", i, m.Buckets[i], want.Buckets[i])
		}
	}
	var empty Snapshot
	empty.Merge(want)
	if empty.Min != want.Min || empty.N != want.N {
		t.Fatalf("merge into empty: %+v", empty)
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := int64(1); v <= 1000; v++ {
				h.Record(v)
			}
		}()
	}
	wg.Wait()
	s := h.Snapshot()
	if s.N != 8000 || s.Min != 1 || s.Max != 1000 || s.Sum != 8*1000*1001/2 {
		t.Fatalf("concurrent: %+v", s)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tc := range tests {
		in := append([]float64(nil), tc.in...)
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("Median modified its input")
			}
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}
