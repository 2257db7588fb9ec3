package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// Webhook requests are signed with the Standard Webhooks scheme
// (https://www.standardwebhooks.com/), so that a receiver can verify them
// with that project's libraries as well as with Verify.
const (
	// HeaderID is the delivery's id: the same across the retries of one
	// notification to one webhook, and across a restart of the server; a
	// receiver dedupes by it.
	HeaderID = "webhook-id"
	// HeaderTimestamp is the attempt's time, in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature is "v1,<base64 HMAC-SHA256 of id.timestamp.body>";
	// a receiver may get several, space-separated, while secrets rotate.
	HeaderSignature = "webhook-signature"
	// HeaderEvent is the notification's kind, also in the body, for
	// receivers that route before they parse.
	HeaderEvent = "Baton-Event"
)

// SecretPrefix starts a secret in the Standard Webhooks form: the base64 of
// the key follows it. A secret without it is used as the key, byte for byte.
const SecretPrefix = "whsec_"

// The ways Verify refuses a request; its errors wrap one of them and are
// baton.Invalid errors.
var (
	ErrMalformedSignature = errors.New("malformed signature headers")
	ErrBadSignature       = errors.New("signature does not match")
	ErrStaleSignature     = errors.New("signature timestamp outside the tolerance")
)

// key returns the HMAC key a secret stands for.
func key(secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("empty secret")
	}
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return []byte(secret), nil
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) == 0 {
		return nil, errors.New("a secret that starts with " + SecretPrefix + " must go on with the base64 of a key (openssl rand -base64 32)")
	}
	return k, nil
}

// Sign returns the webhook-signature header of a request with delivery id
// and body, sent at timestamp, under secret (see SecretPrefix).
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", baton.Errorf(baton.Invalid, "sign webhook", "%w", err)
	}
	return sign(k, id, timestamp.Unix(), body), nil
}

func sign(key []byte, id string, ts int64, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts, body))
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks the Standard Webhooks headers of a request against its body,
// for receivers of webhooks. It accepts the request when one of the v1
// signatures in webhook-signature is the HMAC-SHA256 of
// "webhook-id.webhook-timestamp.body" under secret (see SecretPrefix) and
// the timestamp is within tolerance of now, in either direction. A tolerance
// of zero or less skips the age check, which leaves replays undetected.
// Signatures of other versions are ignored.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	const op = "verify webhook signature"
	k, err := key(secret)
	if err != nil {
		return baton.Errorf(baton.Invalid, op, "%w", err)
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	switch {
	case id == "":
		return baton.Errorf(baton.Invalid, op, "%w: no %s", ErrMalformedSignature, HeaderID)
	case ts == "":
		return baton.Errorf(baton.Invalid, op, "%w: no %s", ErrMalformedSignature, HeaderTimestamp)
	case strings.TrimSpace(sigs) == "":
		return baton.Errorf(baton.Invalid, op, "%w: no %s", ErrMalformedSignature, HeaderSignature)
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return baton.Errorf(baton.Invalid, op, "%w: %s %q is not unix seconds", ErrMalformedSignature, HeaderTimestamp, ts)
	}
	want := mac(k, id, t, body)
	v1 := 0
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok {
			return baton.Errorf(baton.Invalid, op, "%w: %q is not version,signature", ErrMalformedSignature, sig)
		}
		if version != "v1" {
			continue
		}
		v1++
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			return fresh(op, now, time.Unix(t, 0), tolerance)
		}
	}
	if v1 == 0 {
		return baton.Errorf(baton.Invalid, op, "%w: no v1 signature", ErrMalformedSignature)
	}
	return baton.Errorf(baton.Invalid, op, "%w", ErrBadSignature)
}

// fresh checks that a request signed at signed is within tolerance of now.
func fresh(op string, now, signed time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		return nil
	}
	age := now.Sub(signed)
	if age > tolerance {
		return baton.Errorf(baton.Invalid, op, "%w: signed %s ago, tolerance %s", ErrStaleSignature, age.Round(time.Second), tolerance)
	}
	if age < -tolerance {
		return baton.Errorf(baton.Invalid, op, "%w: signed %s in the future, tolerance %s", ErrStaleSignature, (-age).Round(time.Second), tolerance)
	}
	return nil
}
