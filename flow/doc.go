// Package flow is Baton's coordinator: it runs processes defined as flows
// over the same services that choreography runs, sending each step's event
// to the service that handles its type and taking the service's outputs as
// the step's result.
//
// A flow is a sequence of steps: sends, HTTP calls, parallel branches with a
// join, conditions, durable sleeps, waits for an external event, and
// notifications; each with a timeout, a retry policy and a compensation.
// Every transition of a run is saved with the messages it sends in one
// atomic write, and saves compare revisions, so several coordinators can
// share a store.
package flow
