// Package bench holds Baton's benchmarks. They run on the embedded backend
// in a data directory on disk, with every hop fsync-durable:
//
//	go test -run '^$' -bench . -benchtime 20000x ./bench
//
// docs/performance.md records the figures and the machine they came from.
package bench
