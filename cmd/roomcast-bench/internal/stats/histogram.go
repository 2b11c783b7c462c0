package stats

import (
	"math"
	"math/bits"
	"sort"
	"sync/atomic"
)

// subBits sets the precision: each power of two is split into 2^subBits
// linear buckets, so a bucket is at most 1/64 (1.6 %) of its values wide.
const (
	subBits  = 6
	subCount = 1 << subBits
	// nBuckets covers every non-negative int64: values below subCount are
	// exact, then (63-subBits) powers of two of subCount buckets each.
	nBuckets = subCount + (63-subBits)*subCount
)

// Histogram counts int64 values in log-linear buckets. The zero value is
// ready to use; negative values are recorded as 0.
type Histogram struct {
	counts [nBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64
	min    atomic.Int64 // valid when n > 0; stored as value+1 so 0 means unset
	max    atomic.Int64
}

func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits - 1 // v>>e is in [subCount, 2*subCount)
	return subCount + e*subCount + int(v>>e) - subCount
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < subCount {
		return int64(i), 1
	}
	e := (i - subCount) / subCount
	m := int64((i-subCount)%subCount + subCount)
	return m << e, int64(1) << e
}

// Record adds one value.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		cur := h.min.Load()
		if cur != 0 && cur-1 <= v {
			break
		}
		if h.min.CompareAndSwap(cur, v+1) {
			break
		}
	}
	for {
		cur := h.max.Load()
		if cur >= v || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Snapshot returns the histogram's current content in a mergeable form.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{N: h.n.Load(), Sum: h.sum.Load(), Max: h.max.Load()}
	if m := h.min.Load(); m > 0 {
		s.Min = m - 1
	}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return s
}

// Snapshot is a histogram's content: sparse (bucket index, count) pairs in
// increasing bucket order plus exact count, sum, min and max.
type Snapshot struct {
	N       uint64      `json:"n"`
	Sum     int64       `json:"sum"`
	Min     int64       `json:"min"`
	Max     int64       `json:"max"`
	Buckets [][2]uint64 `json:"buckets,omitempty"`
}

// Merge adds o into s.
func (s *Snapshot) Merge(o Snapshot) {
	if o.N == 0 {
		return
	}
	if s.N == 0 || o.Min < s.Min {
		s.Min = o.Min
	}
	if o.Max > s.Max {
		s.Max = o.Max
	}
	s.N += o.N
	s.Sum += o.Sum
	counts := make(map[uint64]uint64, len(s.Buckets)+len(o.Buckets))
	for _, b := range s.Buckets {
		counts[b[0]] += b[1]
	}
	for _, b := range o.Buckets {
		counts[b[0]] += b[1]
	}
	s.Buckets = s.Buckets[:0]
	for i, c := range counts {
		s.Buckets = append(s.Buckets, [2]uint64{i, c})
	}
	sort.Slice(s.Buckets, func(a, b int) bool { return s.Buckets[a][0] < s.Buckets[b][0] })
}

// Quantile returns the value at quantile q in [0, 1]: the middle of the
// bucket holding the ceil(q*N)-th smallest value, clamped to [Min, Max].
// Quantile(0) is Min and Quantile(1) is Max, exactly. It returns 0 when the
// snapshot is empty.
func (s Snapshot) Quantile(q float64) int64 {
	if s.N == 0 {
		return 0
	}
	if q <= 0 {
		return s.Min
	}
	if q >= 1 {
		return s.Max
	}
	rank := uint64(math.Ceil(q * float64(s.N)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			lo, w := bucketRange(int(b[0]))
			v := lo + (w-1)/2
			return min(max(v, s.Min), s.Max)
		}
	}
	return s.Max
}

// Mean returns the arithmetic mean, 0 when empty.
func (s Snapshot) Mean() float64 {
	if s.N == 0 {
		return 0
	}
	return float64(s.Sum) / float64(s.N)
}

// Summary is the usual digest of a latency distribution, in milliseconds.
type Summary struct {
	N    uint64  `json:"n"`
	Mean float64 `json:"mean_ms"`
	Min  float64 `json:"min_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// Summarize digests a snapshot of nanosecond values into milliseconds.
func (s Snapshot) Summarize() Summary {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Summary{
		N:    s.N,
		Mean: s.Mean() / 1e6,
		Min:  ms(s.Min),
		P50:  ms(s.Quantile(0.50)),
		P90:  ms(s.Quantile(0.90)),
		P99:  ms(s.Quantile(0.99)),
		P999: ms(s.Quantile(0.999)),
		Max:  ms(s.Max),
	}
}

// Median returns the median of xs (the mean of the two middle values for an
// even count), NaN for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
