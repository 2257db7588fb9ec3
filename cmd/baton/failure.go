package main

import (
	"fmt"

	"github.com/batonhq/baton/store"
)

// stopper is a store that can stop by itself: the embedded backend after a
// failed write or fsync of its data directory.
type stopper interface {
	Stopped() <-chan struct{}
	Err() error
}

// storeFailed is closed when s stops by itself, and never for a store that
// cannot; failure says why, as the error a command exits with.
func storeFailed(s store.Store) (failed <-chan struct{}, failure func() error) {
	st, ok := s.(stopper)
	if !ok {
		return nil, nil
	}
	return st.Stopped(), func() error {
		return fmt.Errorf("stopping, since the store failed and may not hold what was acknowledged (as PostgreSQL does after a failed fsync): %w", st.Err())
	}
}
