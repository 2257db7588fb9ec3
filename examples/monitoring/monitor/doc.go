// Package monitor is the monitoring example: a scheduled flow polls a
// sensor's HTTP API, a storage service transforms, checks and stores each
// reading, and readings over a threshold raise an alert through the
// notifier — the seeds' "scheduling CRON jobs, retrieving data,
// transforming and checking data, storing data".
//
// The parts:
//
//   - Sensor is a fake sensor API (GET /readings/NAME answers
//     {"sensor": "boiler-1", "celsius": 71.5, "seq": 3, "at": ...}), served
//     on loopback by the example itself. Its values drift and now and then
//     jump over the threshold; tests give it a fixed sequence instead.
//   - Storage is a plain baton.Service: it takes readings.received.v1,
//     converts to Fahrenheit, flags readings over its limit, appends the
//     reading to a JSON-lines file (or keeps it in memory), and answers
//     readings.stored.v1 with what it stored. It stores one reading per
//     tick: the event's subject is the run's business key, which names the
//     tick, and a second delivery for a tick answers what was stored the
//     first time.
//   - Flow is the "monitor" flow: an HTTP step fetches the reading and maps
//     its temperature into the run's variables, a Send step hands the
//     reading to the storage service, and a Choice raises an alert (a
//     Notify step) when the temperature is over the threshold.
//   - Schedule starts the flow every interval (or on a cron expression:
//     "*/5 * * * *" polls every five minutes; an interval of one second
//     suits a demo better than cron's one minute).
//   - Monitor wires them on the embedded backend: a bus runtime for the
//     storage service, a coordinator for the flow, a scheduler for the
//     schedule, and a notify.Hub as the alert channel, whose subscription
//     Monitor turns into Events: each stored reading, each alert.
package monitor
