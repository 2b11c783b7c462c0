package server

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Every backplane counts what it publishes and receives and times its
// publishes.
func TestBackplaneMessageMetrics(t *testing.T) {
	for _, bp := range append(append([]string{}, backplanes...), append(natsBackplanes, "kafka")...) {
		t.Run(bp, func(t *testing.T) {
			var url string
			if strings.HasPrefix(bp, "nats") {
				url = startNATS(t).url()
			} else if bp == "kafka" {
				url = startKafka(t).addr()
			} else {
				url = startRedis(t).url()
			}
			srvs, addrs := clusterAt(t, url, 2, Config{Backplane: bp, BackplaneCapacity: 5000})
			pub, sub := srvs[0], srvs[1]
			if v := testutil.ToFloat64(pub.metrics.backplaneCap); v != 5000 {
				t.Fatalf("capacity gauge %v", v)
			}
			a := dialRaw(t, addrs[0], 0)
			a.connect("/")
			b := dialRaw(t, addrs[1], 0)
			b.connect("/")
			b.join("news")
			// Publish until the other node received something (a sharded
			// subscription may be a moment behind the join).
			waitFor(t, func() bool {
				a.write(`421["publish",{"room":"news","event":"headline","data":1}]`)
				a.expect(`^431\[`)
				return testutil.ToFloat64(sub.metrics.backplaneMsgs.WithLabelValues("in")) >= 1
			})
			// The publisher counts "out" once its publish returned, which
			// may be after the other node got the message.
			waitFor(t, func() bool { return testutil.ToFloat64(pub.metrics.backplaneMsgs.WithLabelValues("out")) >= 1 })
			b.expect(`^42\["headline",1`)
			out := testutil.ToFloat64(pub.metrics.backplaneMsgs.WithLabelValues("out"))
			in := testutil.ToFloat64(sub.metrics.backplaneMsgs.WithLabelValues("in"))
			if out < 1 || in < 1 {
				t.Fatalf("messages out on the publisher %v, in on the receiver %v", out, in)
			}
			if n := testutil.CollectAndCount(pub.metrics.backplanePublish); n != 1 {
				t.Fatalf("publish latency histogram: %d series", n)
			}
			_, body := get(t, "http://"+addrs[0]+"/metrics")
			if !containsLine(body, "roomcast_backplane_capacity_messages_per_second 5000") {
				t.Fatal("capacity gauge not exported")
			}
			if containsLine(body, "roomcast_backplane_publish_seconds_count 0") {
				t.Fatal("no publish was timed")
			}
		})
	}
}
