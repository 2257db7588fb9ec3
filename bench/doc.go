// Package bench holds Baton's benchmarks. Most run on the embedded backend
// in a data directory on disk, with every hop fsync-durable; each stops its
// clock when the last event is settled (committed), not when its handler
// returns. PebbleQueue is SingleHop's peer, a plain queue on pebble:
//
//	go test -run '^$' -bench 'SingleHop|PebbleQueue|OrderFlow|OrderBacklog|OrderLatency|APIStart' -benchtime 30000x ./bench
//	go test -run '^$' -bench '^BenchmarkBacklog$' -benchtime 1x ./bench   # BATON_BENCH_BACKLOG events, default 1,000,000
//	go test -run '^$' -bench Dashboard -benchtime 20x -timeout 2h ./bench  # every dashboard page over 10^6 runs, 10^7 entries
//
// The RabbitMQ ones compare Baton with hand-written amqp091 code on the
// broker at BATON_RABBITMQ_URL (skipped when it is not reachable), and
// report, beside the rates, the CPU seconds per 1,000 orders (or events) of
// this process, RabbitMQ (beam.smp) and Redis (cpu-go-s/1k,
// cpu-rabbit-s/1k, cpu-redis-s/1k); the backlog ignores -benchtime and
// takes its size from BATON_BENCH_BACKLOG:
//
//	go test -run '^$' -bench RabbitMQPipeline -benchtime 30000x -count 3 ./bench
//	go test -run '^$' -bench RabbitMQBacklog -benchtime 1x ./bench
//	go test -run '^$' -bench 'BrokerOrderFlow/^(rabbitmq.redis|handwritten-amqp|handwritten-amqp-ce-inbox)$/^choreography$' -benchtime 6000x ./bench
//	go test -run '^$' -bench BrokerOrderOpenLoop -benchtime 6000x ./bench   # 500 orders/s, open-loop
//
// The Watermill peer of the order flow is a module of its own, so that
// Baton's go.mod stays free of Watermill; it is not part of ./... from the
// repository's root. Build, vet and run it from its directory:
//
//	cd bench/watermill && go vet ./... && go test -run xxx ./...
//	cd bench/watermill && go test -run '^$' -bench 'WatermillOrderFlow|WatermillOrderLatency' -benchtime 6000x .
//
// To compare them in one run on a shared machine, build the test binaries
// once and alternate them, round by round (docs/performance.md, "Against
// Watermill, one run", has the loop):
//
//	go test -c -o /tmp/bin/bench.test ./bench
//	(cd bench/watermill && go test -c -o /tmp/bin/watermill.test .)
//
// docs/performance.md records the figures and the machine they came from.
package bench
