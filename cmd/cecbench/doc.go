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
//     against a bare micro echo endpoint under the same load, and two
//     lookup instances against one (with two echo instances against one as
//     the machine's bound), in alternating rounds;
//   - cost: CPU seconds per 1,000 upstream requests (process-wide, so also
//     for the bare poller), heap and RSS per tracked agent, upstream
//     requests per detected change.
//
// A table goes to stdout, progress to stderr, and --json FILE writes every
// figure with the flags and the machine. Presets: --scenario default (2,000
// agents, 40 s), 10k, 60k (budget 2,000 req/s) and faults; flags override.
//
// --scenario 10k-sweep and 60k-sweep (sweep.go, and sweep-short, the form
// TestSweepScenarioShort runs) compare per-agent polling with the CC-CMS
// sweep. In one invocation they run the same seeded workload once per
// mode, each on a fresh simulator, NATS server and bridge: per-agent
// polling (no cms block, the baseline), the sweep, a CMS whose data trails
// the gateway by --cms-lag (the bridge not told, told with cms.lag, or
// confirming with cms.confirm), and the sweep with CMS taken away twice
// mid-run through the simulator's control API (licence withdrawn, then
// HTTP 503) and given back. Each run is scored per group (calls on active
// and idle agents, all calls, agent states) with a recall of changes
// lasting two seconds whatever the polling interval, and costed: upstream
// requests per change, and the sweep's CMS requests as a share of the
// budget. The outage run times the takeover by per-agent polling from the
// simulator's request records (a front that logs every allcallinfoEx and
// queryagentcalls) and the sweep's return from the bridge's metrics.
// --sweep-modes picks the runs.
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
// --scenario cluster (cluster.go) runs the bridge twice under the same
// workload: on one server with R1 streams, then on a three-node cluster
// with R3 streams whose events-stream leader and then the bridge's own
// server are killed with SIGKILL (no Raft leadership handed over) and
// started again on their stores; every server is a nats-server process
// (cluster_nats.go). It stops the workload at the end and
// reports, side by side, what was lost (final state against the
// simulator's world), duplicated, forked, skipped or unlinked, the
// detection figures, and how long stores paused after each kill.
//
//	go run ./cmd/cecbench
//	go run ./cmd/cecbench --scenario 10k --json 10k.json
//	go run ./cmd/cecbench --scenario chaos --json chaos.json
//	go run ./cmd/cecbench --scenario 60k-sweep --json 60k-sweep.json
package main
