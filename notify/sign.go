package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// The ways Verify refuses a request; its errors wrap one of them and are
// baton.Invalid errors.
var (
	ErrMalformedSignature = errors.New("malformed signature header")
	ErrBadSignature       = errors.New("signature does not match")
	ErrStaleSignature     = errors.New("signature timestamp outside the tolerance")
)

// Sign returns the Baton-Signature header of body sent at timestamp:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>">". The
// timestamp is signed with the body so that a receiver can refuse a request
// replayed later (Verify's tolerance).
func Sign(secret, body []byte, timestamp time.Time) string {
	t := timestamp.Unix()
	return "t=" + strconv.FormatInt(t, 10) + ",v1=" + hex.EncodeToString(mac(secret, t, body))
}

func mac(secret []byte, t int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(strconv.AppendInt(nil, t, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a Baton-Signature header against body, for receivers of
// webhooks. It accepts the header when one of its v1 signatures is the
// HMAC-SHA256 of its timestamp and body under secret (several v1 let a
// sender rotate secrets) and the timestamp is within tolerance of now, in
// either direction. A tolerance of zero or less skips the age check, which
// leaves replays undetected. Unknown keys in the header are ignored.
func Verify(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	const op = "verify webhook signature"
	if len(secret) == 0 {
		return baton.Errorf(baton.Invalid, op, "empty secret")
	}
	if strings.TrimSpace(header) == "" {
		return baton.Errorf(baton.Invalid, op, "%w: empty", ErrMalformedSignature)
	}
	var (
		ts    int64
		haveT bool
		sigs  [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return baton.Errorf(baton.Invalid, op, "%w: %q is not key=value", ErrMalformedSignature, part)
		}
		switch k {
		case "t":
			if haveT {
				return baton.Errorf(baton.Invalid, op, "%w: two timestamps", ErrMalformedSignature)
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return baton.Errorf(baton.Invalid, op, "%w: timestamp %q is not unix seconds", ErrMalformedSignature, v)
			}
			ts, haveT = n, true
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return baton.Errorf(baton.Invalid, op, "%w: v1 is not a hex HMAC-SHA256", ErrMalformedSignature)
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveT {
		return baton.Errorf(baton.Invalid, op, "%w: no timestamp (t=)", ErrMalformedSignature)
	}
	if len(sigs) == 0 {
		return baton.Errorf(baton.Invalid, op, "%w: no v1 signature", ErrMalformedSignature)
	}
	want := mac(secret, ts, body)
	match := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			match = true
		}
	}
	if !match {
		return baton.Errorf(baton.Invalid, op, "%w", ErrBadSignature)
	}
	if tolerance > 0 {
		age := now.Sub(time.Unix(ts, 0))
		if age > tolerance {
			return baton.Errorf(baton.Invalid, op, "%w: signed %s ago, tolerance %s", ErrStaleSignature, age.Round(time.Second), tolerance)
		}
		if age < -tolerance {
			return baton.Errorf(baton.Invalid, op, "%w: signed %s in the future, tolerance %s", ErrStaleSignature, (-age).Round(time.Second), tolerance)
		}
	}
	return nil
}
