package namespaces

import (
	"errors"
	"testing"
	"time"
)

func TestAckRegistryTimeoutLateAndClose(t *testing.T) {
	var a ackRegistry
	got := make(chan error, 3)
	start := time.Now()
	a.Add(1, func(_ []any, err error) { got <- err }, 50*time.Millisecond)
	if err := <-got; !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("got %v, want timeout", err)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("timed out after %v, before the 50ms timeout", el)
	}
	if a.Resolve(1, []any{"late"}) {
		t.Fatal("a late ack was delivered")
	}
	if a.Len() != 0 {
		t.Fatalf("%d acks pending after timeout", a.Len())
	}

	a.Add(2, func(args []any, err error) {
		if err != nil || args[0] != "ok" {
			t.Errorf("got %v %v", args, err)
		}
		got <- nil
	}, time.Minute)
	if !a.Resolve(2, []any{"ok"}) {
		t.Fatal("ack not delivered")
	}
	<-got

	a.Add(3, func(_ []any, err error) { got <- err }, 0)
	a.Close()
	if err := <-got; !errors.Is(err, ErrSocketDisconnected) {
		t.Fatalf("got %v, want disconnected", err)
	}
	if a.Add(4, func(_ []any, err error) { got <- err }, 0) {
		t.Fatal("Add after Close succeeded")
	}
	if err := <-got; !errors.Is(err, ErrSocketDisconnected) {
		t.Fatalf("got %v, want disconnected", err)
	}
}
