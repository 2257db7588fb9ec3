package event

import (
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/swar"
)

// maxDepth is the nesting encoding/json accepts.
const maxDepth = 10000

// decoder scans JSON in place. It accepts exactly what encoding/json accepts
// (RFC 8259, with invalid UTF-8 in strings let through) and never allocates
// on the way.
type decoder struct {
	b []byte
	i int
}

var errNotString = errors.New("not a string")

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) syntax(msg string) error {
	return baton.Errorf(baton.Invalid, "unmarshal event", "malformed JSON: %s", msg)
}

// unexpected reports the byte at d.i, or the end of input.
func (d *decoder) unexpected(where string) error {
	if d.i >= len(d.b) {
		return d.syntax("unexpected end of JSON input")
	}
	c := d.b[d.i]
	return d.syntax("invalid character " + quoteByte(c) + " " + where + " at offset " + strconv.Itoa(d.i))
}

func quoteByte(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	return strconv.QuoteRune(rune(c))
}

// null consumes a null literal if one is at d.i.
func (d *decoder) null() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// key reads an object key and the colon after it. The key aliases the input
// unless it had to be unescaped.
func (d *decoder) key() ([]byte, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, d.unexpected("looking for the beginning of an object key")
	}
	raw, plain, err := d.str()
	if err != nil {
		return nil, err
	}
	key := d.b[raw : d.i-1]
	if !plain {
		key = []byte(unquote(d.b[raw-1 : d.i]))
	}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != ':' {
		return nil, d.unexpected("after an object key")
	}
	d.i++
	d.ws()
	return key, nil
}

// stringValue reads the string value of attribute name; a value of another
// kind is an error that says what was wanted.
func (d *decoder) stringValue(name, want string) (raw int, plain bool, err error) {
	raw, plain, err = d.str()
	if err != errNotString {
		return raw, plain, err
	}
	start := d.i
	if err := d.value(1); err != nil {
		return 0, false, err
	}
	kind := "a number"
	switch d.b[start] {
	case '{':
		kind = "an object"
	case '[':
		kind = "an array"
	case 't', 'f':
		kind = "a boolean"
	}
	return 0, false, attrError(name, "want %s, got %s", want, kind)
}

// str scans the string at d.i and leaves d.i after its closing quote. raw is
// the index of its first byte; plain says it has no escapes and is valid
// UTF-8, so the bytes are the value.
func (d *decoder) str() (raw int, plain bool, err error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return 0, false, errNotString
	}
	d.i++
	raw = d.i
	plain = true
	ascii := true
	b := d.b
	for i := d.i; i < len(b); i++ {
		for i+8 <= len(b) {
			x := swar.Load64(b, i)
			if swar.HasLess(x, 0x20)|swar.HasByte(x, '"')|swar.HasByte(x, '\\') != 0 {
				break
			}
			if x&swar.Highs != 0 {
				ascii = false
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			if !ascii && plain {
				plain = utf8.Valid(b[raw:i])
			}
			d.i = i + 1
			return raw, plain, nil
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				d.i = i
				return 0, false, d.unexpected("in a string escape")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for k := 0; k < 4; k++ {
					i++
					if i >= len(b) || !isHex(b[i]) {
						d.i = i
						return 0, false, d.unexpected("in a \\u escape")
					}
				}
			default:
				d.i = i
				return 0, false, d.unexpected("in a string escape")
			}
		case c < 0x20:
			d.i = i
			return 0, false, d.unexpected("in a string")
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	d.i = len(b)
	return 0, false, d.syntax("unexpected end of JSON input")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// value scans one JSON value at d.i, nested in depth containers, and leaves
// d.i after it. It loops over a stack of open containers rather than
// recursing, so deep input costs heap, not goroutine stack.
func (d *decoder) value(depth int) error {
	var stack [64]byte
	open := stack[:0] // '{' or '[' per open container
	for {
		// A value is expected at d.i.
		d.ws()
		if d.i >= len(d.b) {
			return d.syntax("unexpected end of JSON input")
		}
		switch c := d.b[d.i]; {
		case c == '{' || c == '[':
			if depth+len(open)+1 > maxDepth {
				return d.syntax("exceeded max depth at offset " + strconv.Itoa(d.i))
			}
			d.i++
			d.ws()
			if d.i < len(d.b) && d.b[d.i] == c+2 { // '}' and ']' follow '{' and '[' by 2
				d.i++
				break
			}
			open = append(open, c)
			if c == '{' {
				if _, err := d.key(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if _, _, err := d.str(); err != nil {
				return err
			}
		case c == '-' || '0' <= c && c <= '9':
			if err := d.number(); err != nil {
				return err
			}
		case c == 't':
			if err := d.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := d.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := d.literal("null"); err != nil {
				return err
			}
		default:
			return d.unexpected("looking for the beginning of a value")
		}
		// A value ended: close containers until one continues.
		for {
			if len(open) == 0 {
				return nil
			}
			d.ws()
			if d.i >= len(d.b) {
				return d.syntax("unexpected end of JSON input")
			}
			c, top := d.b[d.i], open[len(open)-1]
			if c == ',' {
				d.i++
				if top == '{' {
					d.ws()
					if _, err := d.key(); err != nil {
						return err
					}
				}
				break
			}
			if c != top+2 {
				if top == '{' {
					return d.unexpected("after an object member")
				}
				return d.unexpected("after an array element")
			}
			d.i++
			open = open[:len(open)-1]
		}
	}
}

func (d *decoder) literal(lit string) error {
	for k := 0; k < len(lit); k++ {
		if d.i >= len(d.b) {
			return d.syntax("unexpected end of JSON input")
		}
		if d.b[d.i] != lit[k] {
			return d.unexpected("in literal " + lit)
		}
		d.i++
	}
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at d.i.
func (d *decoder) number() error {
	b := d.b
	if b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i >= len(b):
		return d.syntax("unexpected end of JSON input")
	case b[d.i] == '0':
		d.i++
	case '1' <= b[d.i] && b[d.i] <= '9':
		d.digits()
	default:
		return d.unexpected("in numeric literal")
	}
	if d.i < len(b) && b[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return d.unexpected("after decimal point in numeric literal")
		}
	}
	if d.i < len(b) && (b[d.i] == 'e' || b[d.i] == 'E') {
		d.i++
		if d.i < len(b) && (b[d.i] == '+' || b[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return d.unexpected("in exponent of numeric literal")
		}
	}
	return nil
}

func (d *decoder) digits() int {
	start := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i - start
}

// validJSON reports whether b is one JSON value, optionally surrounded by
// whitespace.
func validJSON(b []byte) bool {
	d := decoder{b: b}
	if err := d.value(0); err != nil {
		return false
	}
	d.ws()
	return d.i == len(b)
}
