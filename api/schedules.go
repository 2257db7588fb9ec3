package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
)

// ScheduleRequest is the body of POST /v1/schedules: it creates the
// schedule Name, or replaces it (keeping the ticks it already handled).
// Exactly one of Cron and Every is set.
type ScheduleRequest struct {
	Name string `json:"name"`
	Flow string `json:"flow"`
	// Cron is five fields (minute hour day-of-month month day-of-week) or
	// a descriptor (@hourly, @daily, "@every 90s"), in UTC unless it
	// begins with CRON_TZ=Zone.
	Cron string `json:"cron,omitempty"`
	// Every is a fixed interval, as a Go duration: "90s", "5m", "1h".
	Every   string          `json:"every,omitempty"`
	Input   json.RawMessage `json:"input,omitempty"`
	Overlap store.Overlap   `json:"overlap,omitempty"`  // skip (default), buffer_one, allow
	CatchUp int             `json:"catch_up,omitempty"` // missed ticks started after downtime, at most
	Paused  bool            `json:"paused,omitempty"`
}

// Schedule is a schedule as the API shows it: store.Schedule with Every
// as a duration string.
type Schedule struct {
	Name     string          `json:"name"`
	Flow     string          `json:"flow"`
	Cron     string          `json:"cron,omitempty"`
	Every    string          `json:"every,omitempty"`
	Input    json.RawMessage `json:"input,omitempty"`
	Overlap  store.Overlap   `json:"overlap,omitempty"`
	CatchUp  int             `json:"catch_up,omitempty"`
	Paused   bool            `json:"paused"`
	LastTick time.Time       `json:"last_tick,omitzero"` // the last tick handled
	LastRun  string          `json:"last_run,omitempty"` // the id of the last run started
	Buffered bool            `json:"buffered,omitempty"` // a tick waits for the current run
	Rev      int64           `json:"rev"`
}

// SchedulePage is the body of GET /v1/schedules.
type SchedulePage struct {
	Schedules []Schedule `json:"schedules"`
}

// ScheduleOf shows a store.Schedule.
func ScheduleOf(s store.Schedule) Schedule {
	out := Schedule{Name: s.Name, Flow: s.Flow, Cron: s.Cron, Input: s.Input, Overlap: s.Overlap, CatchUp: s.CatchUp,
		Paused: s.Paused, LastTick: s.LastTick, LastRun: s.LastRun, Buffered: s.Buffered, Rev: s.Rev}
	if s.Every > 0 {
		out.Every = s.Every.String()
	}
	return out
}

// Store turns a shown schedule back into a store.Schedule; an Every that
// is not a duration is an Invalid error.
func (s Schedule) Store() (store.Schedule, error) {
	out := store.Schedule{Name: s.Name, Flow: s.Flow, Cron: s.Cron, Input: s.Input, Overlap: s.Overlap, CatchUp: s.CatchUp,
		Paused: s.Paused, LastTick: s.LastTick, LastRun: s.LastRun, Buffered: s.Buffered, Rev: s.Rev}
	if s.Every != "" {
		d, err := time.ParseDuration(s.Every)
		if err != nil {
			return out, baton.Errorf(baton.Invalid, "schedule "+s.Name, "every %q is not a duration such as 90s, 5m or 1h", s.Every)
		}
		out.Every = d
	}
	return out, nil
}

func (h *handler) listSchedules(w http.ResponseWriter, r *http.Request) {
	list, err := h.sched.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page := SchedulePage{Schedules: make([]Schedule, len(list))}
	for i, s := range list {
		page.Schedules[i] = ScheduleOf(s)
	}
	writeJSON(w, http.StatusOK, page)
}

func (h *handler) getSchedule(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	list, err := h.sched.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, s := range list {
		if s.Name == name {
			writeJSON(w, http.StatusOK, ScheduleOf(s))
			return
		}
	}
	writeError(w, &baton.Error{Code: baton.NotFound, Op: "schedule " + name, Err: errors.New("no such schedule")})
}

// putSchedule creates a schedule (201) or replaces one (200).
func (h *handler) putSchedule(w http.ResponseWriter, r *http.Request) {
	var req ScheduleRequest
	if err := h.decode(w, r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	sc, err := Schedule{Name: req.Name, Flow: req.Flow, Cron: req.Cron, Every: req.Every, Input: req.Input,
		Overlap: req.Overlap, CatchUp: req.CatchUp, Paused: req.Paused}.Store()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.flowExists(sc.Flow); err != nil {
		h.fail(w, r, err)
		return
	}
	saved, err := h.sched.Put(r.Context(), sc)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if saved.Rev == 1 {
		status = http.StatusCreated
	}
	w.Header().Set("Location", "/v1/schedules/"+url.PathEscape(saved.Name))
	writeJSON(w, status, ScheduleOf(saved))
}

func (h *handler) pauseSchedule(w http.ResponseWriter, r *http.Request) {
	h.respondSchedule(w, r)(h.sched.Pause(r.Context(), r.PathValue("name")))
}

func (h *handler) resumeSchedule(w http.ResponseWriter, r *http.Request) {
	h.respondSchedule(w, r)(h.sched.Resume(r.Context(), r.PathValue("name")))
}

func (h *handler) respondSchedule(w http.ResponseWriter, r *http.Request) func(store.Schedule, error) {
	return func(s store.Schedule, err error) {
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, ScheduleOf(s))
	}
}

func (h *handler) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	if err := h.sched.Delete(r.Context(), r.PathValue("name")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// flowExists checks a schedule's flow when this process has a coordinator
// to ask: a schedule of an unknown flow would fail at every tick.
func (h *handler) flowExists(name string) error {
	if h.coord == nil || name == "" {
		return nil
	}
	for _, f := range h.coord.Flows() {
		if f.Name == name {
			return nil
		}
	}
	return &baton.Error{Code: baton.NotFound, Op: "put schedule: flow " + name, Err: errors.New("no such flow (GET /v1/flows lists them)")}
}
