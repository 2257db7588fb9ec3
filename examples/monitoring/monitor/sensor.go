package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// SensorReading is what the sensor API answers.
type SensorReading struct {
	Sensor  string    `json:"sensor"`
	Celsius float64   `json:"celsius"`
	Seq     int       `json:"seq"` // counts the sensor's readings from 1
	At      time.Time `json:"at"`
}

// Sensor is a fake sensor API: GET /readings/NAME answers the sensor's next
// reading as JSON, and any other sensor name is 404. It is safe for
// concurrent use.
type Sensor struct {
	name string
	next func() float64

	mu     sync.Mutex
	served []float64
}

// NewSensor returns a sensor named name whose readings next gives, one
// call per request.
func NewSensor(name string, next func() float64) *Sensor {
	return &Sensor{name: name, next: next}
}

// Name is the sensor's name.
func (s *Sensor) Name() string { return s.name }

// Handler returns the sensor's HTTP API.
func (s *Sensor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readings/{sensor}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("sensor") != s.name {
			http.Error(w, `{"error":"no such sensor"}`, http.StatusNotFound)
			return
		}
		s.mu.Lock()
		v := s.next()
		s.served = append(s.served, v)
		reading := SensorReading{Sensor: s.name, Celsius: v, Seq: len(s.served), At: time.Now().UTC()}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(reading)
	})
	return mux
}

// Served returns the temperatures served so far, in order.
func (s *Sensor) Served() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]float64(nil), s.served...)
}

// Sequence returns the values in order, over and over: a sensor whose
// readings a test knows in advance.
func Sequence(values ...float64) func() float64 {
	i := 0
	return func() float64 {
		v := values[i%len(values)]
		i++
		return v
	}
}

// Drift returns readings that wander around base, pulled back towards it,
// with now and then a spike of 8 to 14 degrees: with base 72 and a threshold
// of 80, about one reading in five goes over. Values have one decimal. Not
// safe for concurrent use (a Sensor calls it under its lock).
func Drift(seed uint64, base float64) func() float64 {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	v := base
	return func() float64 {
		v += rnd.NormFloat64()*1.2 + (base-v)*0.15
		out := v
		if rnd.Float64() < 0.2 {
			out += 8 + rnd.Float64()*6
		}
		return math.Round(out*10) / 10
	}
}

// server is an HTTP server on a free port of the loopback interface.
type server struct {
	URL string // http://127.0.0.1:PORT
	srv *http.Server
	ln  net.Listener
}

func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{URL: "http://" + ln.Addr().String(), ln: ln,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *server) shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
