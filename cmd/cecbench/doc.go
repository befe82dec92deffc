// Command cecbench measures the bridge against its limits on one machine, in
// one run, against baselines measured in the same run.
//
// It starts the CEC simulator with a seeded workload, an embedded JetStream
// server (or uses --nats URL) and the bridge wired as "cecbridge run" wires
// it (internal/app), then reports:
//
//   - detection quality against the simulator's ground truth: changes seen,
//     missed (shorter than the poll interval, other), false and duplicate
//     events, detection latency (by_poll minus the true instant, and to the
//     stream timestamp), for active and idle agents, softphones and phones;
//   - throughput ratios: bridge allcallinfoEx polls/s against a bare HTTP
//     client on the same simulator, the publisher's max event rate against
//     bare JetStream async publish of same-size bodies, lookups/s and p99
//     against a bare micro echo endpoint under the same load;
//   - cost: CPU seconds per 1,000 upstream requests (process-wide, so also
//     for the bare poller), heap and RSS per tracked agent, upstream
//     requests per detected change.
//
// A table goes to stdout, progress to stderr, and --json FILE writes every
// figure with the flags and the machine. Presets: --scenario default (2,000
// agents, 40 s), 10k, 60k (budget 2,000 req/s) and faults; flags override.
//
// --scenario chaos (and chaos-short) is the chaos drill instead: two real
// cecbridge processes with leases, a nats-server process (this binary
// re-executed, CECBENCH_CHILD=nats) with a file store, and the simulator
// behind one recording front per instance. It SIGKILLs the lease holder,
// stops NATS and fills the holder's spool disk during the outage, and
// SIGSTOPs the holder past its lease; then it scores the stream per entity
// subject (duplicates, holes, repeats, forks, broken links, stale terms,
// false events, final state, recall with the outage counted) and the blind
// time per restart. Every child process ends with the run.
//
//	go run ./cmd/cecbench
//	go run ./cmd/cecbench --scenario 10k --json 10k.json
//	go run ./cmd/cecbench --scenario chaos --json chaos.json
package main
