package main

import (
	"context"
	"fmt"
	"time"

	"github.com/batonhq/baton/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// startTracing sets up tracing from the OTEL_* variables (see
// telemetry.Start): nil when they leave it off. The function it returns
// sends the spans not yet sent; call it once the parts that make them have
// stopped.
func startTracing(ctx context.Context, e *env) (trace.TracerProvider, func(), error) {
	tp, shutdown, err := telemetry.Start(ctx, e.env)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			fmt.Fprintf(e.stderr, "baton: sending the last spans: %v\n", err)
		}
	}, nil
}
