// Package watermill is a peer of Baton's RabbitMQ benchmarks: the order
// flow's four services (payment, inventory, notification, order) written on
// github.com/ThreeDotsLabs/watermill and watermill-amqp, tuned the way a
// careful team would run them, so that bench's BrokerOrderFlow can be
// measured beside it in the same run. It is a module of its own so that
// Baton's go.mod stays free of Watermill; it shares the work each handler
// does with bench's hand-written flows (bench/internal/orderwork) and the
// CPU accounting (bench/internal/cpuacct).
//
//	cd bench/watermill && go test -run '^$' -bench WatermillOrderFlow -benchtime 6000x .
//	cd bench/watermill && go test -run '^$' -bench WatermillOrderLatency -benchtime 6000x .
//
// Both skip themselves when RabbitMQ is not reachable at BATON_RABBITMQ_URL
// (default amqp://guest:guest@127.0.0.1:5672/), and delete their exchange
// and queues afterwards.
package watermill
