// Package bench holds Baton's benchmarks. Most run on the embedded backend
// in a data directory on disk, with every hop fsync-durable:
//
//	go test -run '^$' -bench 'SingleHop|OrderFlow|OrderBacklog|OrderLatency|APIStart' -benchtime 30000x ./bench
//
// The RabbitMQ ones compare Baton with hand-written amqp091 code on the
// broker at BATON_RABBITMQ_URL (skipped when it is not reachable); the
// backlog ignores -benchtime and takes its size from BATON_BENCH_BACKLOG:
//
//	go test -run '^$' -bench RabbitMQPipeline -benchtime 30000x -count 3 ./bench
//	go test -run '^$' -bench RabbitMQBacklog -benchtime 1x ./bench
//
// docs/performance.md records the figures and the machine they came from.
package bench
