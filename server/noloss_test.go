package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// checkNoLoss connects 100 clients spread over the nodes at addrs, all in
// room "all", and broadcasts 2,000 messages from the first node in steps of
// 100: every client must get every one, once, in order. It is the no-loss
// test of every cluster backplane.
func checkNoLoss(t *testing.T, srvs []*Server, addrs []string) {
	t.Helper()
	ctx := context.Background()
	const clients, total, step = 100, 2000, 100
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	got := make([]int, clients)
	var failed string
	var wg sync.WaitGroup
	var cl []*rawClient
	for i := 0; i < clients; i++ {
		c := dialRaw(t, addrs[i%len(addrs)], 0)
		cl = append(cl, c)
		c.connect("/")
		c.join("all")
		wg.Add(1)
		go func(i int, c *rawClient) {
			defer wg.Done()
			for n := 0; n < total; n++ {
				c.ws.SetReadDeadline(time.Now().Add(safetyNet))
				_, b, err := c.ws.ReadMessage()
				m := string(b)
				if err == nil && (m == "2" || m == "3") {
					c.ws.WriteMessage(1, []byte("3"))
					n--
					continue
				}
				mu.Lock()
				if err != nil || m != fmt.Sprintf(`42["m",%d]`, n) {
					if failed == "" {
						failed = fmt.Sprintf("client %d: message %d is %q (%v)", i, n, m, err)
					}
					mu.Unlock()
					cond.Broadcast()
					return
				}
				got[i] = n + 1
				mu.Unlock()
				cond.Broadcast()
			}
		}(i, c)
	}
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == len(srvs) })
	waitFor(t, func() bool {
		s, _ := srvs[0].Of("/").To("all").FetchSockets(ctx)
		return len(s) == clients
	})
	for sent := 0; sent < total; {
		for end := sent + step; sent < end; sent++ {
			if err := srvs[0].To("all").Emit(ctx, "m", sent); err != nil {
				t.Fatalf("emit %d: %v", sent, err)
			}
		}
		// Wait for every client to have them all before the next step.
		mu.Lock()
		for failed == "" && slicesMin(got) < sent {
			cond.Wait()
		}
		f := failed
		mu.Unlock()
		if f != "" {
			t.Fatal(f)
		}
	}
	wg.Wait()
	// Exactly once: nothing follows the last one but a fence.
	srvs[0].To("all").Emit(ctx, "fence")
	for _, c := range cl {
		c.next(`^42\["fence"\]$`)
	}
}

func slicesMin(s []int) int {
	m := s[0]
	for _, v := range s[1:] {
		m = min(m, v)
	}
	return m
}
