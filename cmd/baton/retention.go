package main

import (
	"cmp"
	"strconv"
	"time"

	"github.com/batonhq/baton/store"
)

// The environment variables that set the retention when the flags do not.
const (
	envRetention     = "BATON_RETENTION"
	envDeadLetterCap = "BATON_DEAD_LETTER_CAP"
)

// minRetention is the shortest --retention: a shorter one would sweep the
// journal of transactions still under way.
const minRetention = time.Hour

// retentionFlags are --retention and --dead-letter-cap, as given.
type retentionFlags struct{ age, cap string }

// retentionFlags adds --retention and --dead-letter-cap to a command that
// runs the parts (server, worker): every process that opens a store sweeps
// it.
func (f *flags) retentionFlags() *retentionFlags {
	var r retentionFlags
	f.StringVar(&r.age, "retention", "", "keep journal entries, ended runs and dead letters for `D`, such as 2160h (90 days), then sweep them; 0 keeps them forever (default: "+envRetention+", else 720h: 30 days)")
	f.StringVar(&r.cap, "dead-letter-cap", "", "keep at most `N` dead letters, dropping the oldest first; 0: no cap (default: "+envDeadLetterCap+", else 100000)")
	return &r
}

// fromEnv is the store.Retention the flags, else the environment, say.
func (r *retentionFlags) fromEnv(e *env, cmd string) (store.Retention, error) {
	var ret store.Retention
	if age := cmp.Or(r.age, e.env(envRetention)); age != "" {
		d, err := time.ParseDuration(age)
		switch {
		case err != nil || d < 0:
			return ret, usagef("%s: --retention (or %s) %q: give a duration such as 720h (30 days), or 0 to keep everything", cmd, envRetention, age)
		case d == 0:
			ret.Age = -1
		case d < minRetention:
			return ret, usagef("%s: --retention (or %s) %s: give at least %v; a shorter one would sweep the journal of transactions still under way", cmd, envRetention, age, minRetention)
		default:
			ret.Age = d
		}
	}
	if limit := cmp.Or(r.cap, e.env(envDeadLetterCap)); limit != "" {
		n, err := strconv.Atoi(limit)
		switch {
		case err != nil || n < 0:
			return ret, usagef("%s: --dead-letter-cap (or %s) %q: give a number of dead letters, or 0 for no cap", cmd, envDeadLetterCap, limit)
		case n == 0:
			ret.DeadCap = -1
		default:
			ret.DeadCap = n
		}
	}
	return ret, nil
}
