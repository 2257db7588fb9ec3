// Package rabbitmq holds what the RabbitMQ benchmarks of both bench
// modules (Baton's and the Watermill peer's) share about the broker: where
// it is and how a benchmark's topology is removed afterwards.
package rabbitmq

import (
	"os"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// URL is the broker of the benchmarks: BATON_RABBITMQ_URL, as the
// backends' own tests read it, else the local one.
func URL() string {
	if v := os.Getenv("BATON_RABBITMQ_URL"); v != "" {
		return v
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// Delete deletes queues and then the exchange, once the benchmark has
// closed its connections; a failure is reported on tb.
func Delete(tb testing.TB, exchange string, queues ...string) {
	conn, err := amqp.Dial(URL())
	if err != nil {
		tb.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		tb.Errorf("cleanup: %v", err)
		return
	}
	defer ch.Close()
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			tb.Errorf("cleanup: delete queue %s: %v", q, err)
			return
		}
	}
	if err := ch.ExchangeDelete(exchange, false, false); err != nil {
		tb.Errorf("cleanup: delete exchange %s: %v", exchange, err)
	}
}
