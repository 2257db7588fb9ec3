package bus

import (
	"maps"
	"sync"
	"sync/atomic"
)

// DeadReason classifies why an event was dead-lettered.
type DeadReason string

const (
	ReasonMalformed   DeadReason = "malformed"   // the body is not JSON
	ReasonInvalid     DeadReason = "invalid"     // a required attribute is missing or wrong
	ReasonTooLarge    DeadReason = "too-large"   // over the size limit
	ReasonUnsupported DeadReason = "unsupported" // no handler takes its type or version, or its data fails the schema
	ReasonStorm       DeadReason = "storm"       // over the hop limit
	ReasonPanic       DeadReason = "panic"       // the handler panicked
	ReasonPermanent   DeadReason = "permanent"   // the handler said retrying cannot help
	ReasonExhausted   DeadReason = "exhausted"   // retries spent
)

// Stats counts what a Runtime did. Safe for concurrent use.
type Stats struct {
	published, handled, retried, duplicates, refused atomic.Int64

	mu     sync.Mutex
	deadBy map[DeadReason]int64
}

func newStats() Stats { return Stats{deadBy: map[DeadReason]int64{}} }

// count adds a settled delivery's verdict; published is how many events its
// commit published.
func (s *Stats) count(v verdict, published int) {
	switch {
	case v.duplicate:
		s.duplicates.Add(1)
	case v.dead != "":
		s.mu.Lock()
		s.deadBy[v.dead]++
		s.mu.Unlock()
	case v.retried:
		s.retried.Add(1)
	default:
		s.handled.Add(1)
		s.published.Add(int64(published))
	}
}

// Published counts events published, by Publish and by handlers.
func (s *Stats) Published() int64 { return s.published.Load() }

// Handled counts events whose handler succeeded.
func (s *Stats) Handled() int64 { return s.handled.Load() }

// Retried counts failed attempts that were scheduled for a retry.
func (s *Stats) Retried() int64 { return s.retried.Load() }

// Duplicates counts redeliveries skipped by the inbox.
func (s *Stats) Duplicates() int64 { return s.duplicates.Load() }

// Refused counts events Publish refused (invalid, too large).
func (s *Stats) Refused() int64 { return s.refused.Load() }

// DeadLettered counts dead-lettered events by reason.
func (s *Stats) DeadLettered() map[DeadReason]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.deadBy)
}
