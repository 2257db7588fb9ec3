package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// StartRun starts a run of req.Flow for the business key req.Key, which is
// required. created is false when the flow already had a run with the key:
// that run is returned, as the coordinator does.
func (c *Client) StartRun(ctx context.Context, req flow.StartRequest) (run store.Run, created bool, err error) {
	var s api.Started
	status, err := c.do(ctx, http.MethodPost, "/v1/runs", req, &s)
	return s.Run, status == http.StatusAccepted, err
}

// Run returns one run; an error that is baton.ErrNotFound when there is
// none with id.
func (c *Client) Run(ctx context.Context, id string) (store.Run, error) {
	var r store.Run
	_, err := c.do(ctx, http.MethodGet, api.RunPath(id), nil, &r)
	return r, err
}

// Runs lists the runs q selects, newest first; to page, pass the id of the
// last run as q.After.
func (c *Client) Runs(ctx context.Context, q store.RunQuery) ([]store.Run, error) {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("flow", q.Flow)
	set("status", string(q.Status))
	set("key", q.Key)
	set("after", q.After)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/runs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p api.RunPage
	_, err := c.do(ctx, http.MethodGet, path, nil, &p)
	return p.Runs, err
}

// CancelRun cancels a run: its completed steps are compensated and it ends
// cancelled. A run that already ended is a baton.Conflict error.
func (c *Client) CancelRun(ctx context.Context, id, reason string) (store.Run, error) {
	var r store.Run
	_, err := c.do(ctx, http.MethodPost, api.RunPath(id)+"/cancel", api.CancelRequest{Reason: reason}, &r)
	return r, err
}

// SignalRun delivers an external event to a run waiting for its type (a
// flow's Wait step). A run not waiting for it is a baton.Conflict error.
func (c *Client) SignalRun(ctx context.Context, id string, e baton.Event) (store.Run, error) {
	var r store.Run
	_, err := c.do(ctx, http.MethodPost, api.RunPath(id)+"/events", e, &r)
	return r, err
}

// Flows lists the flow definitions the coordinator runs, every version.
func (c *Client) Flows(ctx context.Context) ([]flow.Flow, error) {
	var p api.FlowPage
	_, err := c.do(ctx, http.MethodGet, "/v1/flows", nil, &p)
	return p.Flows, err
}

// Publish publishes one event for choreography and returns its id (the
// server chooses one when e.ID is empty). The event is durable when
// Publish returns.
func (c *Client) Publish(ctx context.Context, e baton.Event) (id string, err error) {
	var p api.Published
	_, err = c.do(ctx, http.MethodPost, "/v1/events", e, &p)
	return p.ID, err
}

// Schedules lists the schedules, by name.
func (c *Client) Schedules(ctx context.Context) ([]store.Schedule, error) {
	var p api.SchedulePage
	if _, err := c.do(ctx, http.MethodGet, "/v1/schedules", nil, &p); err != nil {
		return nil, err
	}
	out := make([]store.Schedule, len(p.Schedules))
	for i, s := range p.Schedules {
		var err error
		if out[i], err = s.Store(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Schedule returns one schedule; an error that is baton.ErrNotFound when
// there is none with name.
func (c *Client) Schedule(ctx context.Context, name string) (store.Schedule, error) {
	return c.schedule(ctx, http.MethodGet, "/v1/schedules/"+url.PathEscape(name), nil)
}

// PutSchedule creates the schedule s.Name or replaces it; the progress
// fields of s (LastTick, LastRun, Buffered, Rev) are ignored.
func (c *Client) PutSchedule(ctx context.Context, s store.Schedule) (store.Schedule, error) {
	req := api.ScheduleRequest{Name: s.Name, Flow: s.Flow, Cron: s.Cron, Input: s.Input, Overlap: s.Overlap,
		CatchUp: s.CatchUp, Paused: s.Paused}
	if s.Every != 0 {
		req.Every = s.Every.String()
	}
	return c.schedule(ctx, http.MethodPost, "/v1/schedules", req)
}

// PauseSchedule stops a schedule from firing.
func (c *Client) PauseSchedule(ctx context.Context, name string) (store.Schedule, error) {
	return c.schedule(ctx, http.MethodPost, "/v1/schedules/"+url.PathEscape(name)+"/pause", nil)
}

// ResumeSchedule lets a paused schedule fire again.
func (c *Client) ResumeSchedule(ctx context.Context, name string) (store.Schedule, error) {
	return c.schedule(ctx, http.MethodPost, "/v1/schedules/"+url.PathEscape(name)+"/resume", nil)
}

// DeleteSchedule removes a schedule; its runs go on.
func (c *Client) DeleteSchedule(ctx context.Context, name string) error {
	return second(c.do(ctx, http.MethodDelete, "/v1/schedules/"+url.PathEscape(name), nil, nil))
}

func (c *Client) schedule(ctx context.Context, method, path string, in any) (store.Schedule, error) {
	var s api.Schedule
	if _, err := c.do(ctx, method, path, in, &s); err != nil {
		return store.Schedule{}, err
	}
	return s.Store()
}

// Healthy asks /healthz whether the server is up.
func (c *Client) Healthy(ctx context.Context) error {
	return second(c.do(ctx, http.MethodGet, "/healthz", nil, nil))
}

// Ready asks /readyz whether the server is ready: nil, or a
// baton.Unavailable error saying why not.
func (c *Client) Ready(ctx context.Context) error {
	return second(c.do(ctx, http.MethodGet, "/readyz", nil, nil))
}

func second[T any](_ T, err error) error { return err }
