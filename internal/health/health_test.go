package health

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRunNamesFailingComponents(t *testing.T) {
	r := NewRegistry()
	r.Add("db", func(context.Context) error { return nil })
	r.Add("mqtt", func(context.Context) error { return errors.New("connection refused") })
	r.Add("hung", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	st, ok := r.Run(ctx)
	if ok {
		t.Fatal("all up reported with two down")
	}
	want := []Status{{Name: "db", OK: true}, {Name: "hung", Error: "context deadline exceeded"}, {Name: "mqtt", Error: "connection refused"}}
	for i := range want {
		if st[i] != want[i] {
			t.Fatalf("status %d = %+v, want %+v", i, st[i], want[i])
		}
	}
	r.Remove("mqtt")
	r.Remove("hung")
	if _, ok := r.Run(context.Background()); !ok {
		t.Fatal("all up reported down")
	}
}
