package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// The events of the storage service.
const (
	// TypeReadingReceived asks the storage service to store a reading; its
	// data is a SensorReading and its subject names the tick.
	TypeReadingReceived = "readings.received.v1"
	// TypeReadingStored answers it; its data is the stored Reading.
	TypeReadingStored = "readings.stored.v1"
)

// Reading is a reading as stored: converted, checked and numbered.
type Reading struct {
	Number     int       `json:"number"` // counts the stored readings from 1
	Tick       string    `json:"tick"`   // the business key of the run that took it
	Sensor     string    `json:"sensor"`
	Seq        int       `json:"seq"` // the sensor's own count
	Celsius    float64   `json:"celsius"`
	Fahrenheit float64   `json:"fahrenheit"`
	Limit      float64   `json:"limit"`      // the limit it was checked against, in °C
	OverLimit  bool      `json:"over_limit"` // Celsius > Limit
	TakenAt    time.Time `json:"taken_at"`
	StoredAt   time.Time `json:"stored_at"`
}

// Storage is the storage service: it converts each reading to Fahrenheit,
// checks it against a limit, and stores it once per tick, in memory and,
// when given a path, appended to a JSON-lines file. It is safe for
// concurrent use.
type Storage struct {
	limit float64

	mu       sync.Mutex
	readings []Reading
	byTick   map[string]int // tick -> index in readings
	file     *os.File
}

// NewStorage returns a storage service checking readings against limit (in
// °C). With a path, the readings already in that file are loaded, so a
// restarted example goes on numbering and still stores each tick once, and
// new ones are appended to it; with an empty path they stay in memory.
func NewStorage(path string, limit float64) (*Storage, error) {
	s := &Storage{limit: limit, byTick: map[string]int{}}
	if path == "" {
		return s, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var r Reading
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			f.Close()
			return nil, fmt.Errorf("storage: %s line %d: %w", path, line, err)
		}
		s.byTick[r.Tick] = len(s.readings)
		s.readings = append(s.readings, r)
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: read %s: %w", path, err)
	}
	s.file = f
	return s, nil
}

// Service is the storage service as Baton runs it.
func (s *Storage) Service() baton.Service {
	return baton.Service{Name: "storage", Handlers: []baton.Handler{
		{Type: TypeReadingReceived, Func: s.store},
	}}
}

func (s *Storage) store(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var in SensorReading
	if err := e.Decode(&in); err != nil {
		return nil, baton.Permanent(err)
	}
	switch {
	case e.Subject == "":
		return nil, malformed(e, errors.New("no subject: the subject names the tick a reading belongs to"))
	case in.Sensor == "":
		return nil, malformed(e, errors.New("no sensor"))
	case math.IsNaN(in.Celsius) || math.IsInf(in.Celsius, 0) || in.Celsius < -273.15:
		return nil, malformed(e, fmt.Errorf("%v °C is not a temperature", in.Celsius))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.byTick[e.Subject]; ok {
		// The tick's reading is stored already (a redelivery, or a retried
		// step): answer what was stored.
		return stored(s.readings[i])
	}
	r := Reading{
		Number:     len(s.readings) + 1,
		Tick:       e.Subject,
		Sensor:     in.Sensor,
		Seq:        in.Seq,
		Celsius:    in.Celsius,
		Fahrenheit: math.Round((in.Celsius*9/5+32)*10) / 10,
		Limit:      s.limit,
		OverLimit:  in.Celsius > s.limit,
		TakenAt:    in.At,
		StoredAt:   time.Now().UTC(),
	}
	if s.file != nil {
		line, err := json.Marshal(r)
		if err != nil {
			return nil, baton.Permanent(err)
		}
		if _, err := s.file.Write(append(line, '\n')); err != nil {
			return nil, fmt.Errorf("store reading of %s: %w", e.Subject, err) // retried
		}
	}
	s.byTick[r.Tick] = len(s.readings)
	s.readings = append(s.readings, r)
	return stored(r)
}

func stored(r Reading) ([]baton.Event, error) {
	out, err := baton.NewEvent(TypeReadingStored, r.Tick, r)
	if err != nil {
		return nil, err
	}
	return []baton.Event{out}, nil
}

func malformed(e baton.Event, err error) error {
	return baton.Permanent(baton.Errorf(baton.Invalid, "handle "+e.Type, "malformed event %s: %w", e.ID, err))
}

// Readings returns the stored readings, in the order they were stored.
func (s *Storage) Readings() []Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reading(nil), s.readings...)
}

// Len is the number of readings stored.
func (s *Storage) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.readings)
}

// Close closes the file, if any.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}
