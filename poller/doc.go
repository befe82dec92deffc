// Package poller turns what the vendor reports into change events.
//
// A [Tenant] polls one CEC tenant for one term (one tenure of the tenant's
// lease). It keeps the last published state of every entity (an agent's
// call IDs, an agent's softphone binding, a softphone number's registration
// state), polls the vendor on its own schedule and hands every difference to
// a [Sink] as an encoded CloudEvent ([schemas.Record]).
//
// # Schedules
//
// The roster (queryAgentInfo), the phones (queryPhone, every page) and the
// bridge heartbeat each run in the same loop shape (see every): a ticker with
// jitter, a per-iteration timeout, exponential backoff after failures. Call IDs
// are polled per agent by a pool of workers fed by a scheduler with two queues,
// earliest-due first: active agents (in a call, or seen in one within
// ActiveWindow) every CallsInterval, the rest every IdleInterval. When the
// request budget cannot keep up, active agents go first and idle agents get a
// small fixed share, so detection latency for active agents stays close to
// what a round robin over just them would give. An agent is asked about
// through the first monitoring session that covers it ([MonitorFor]); a
// live lookup takes the same route.
//
// # No false deletions
//
// A state is only replaced by a complete, successful observation. A failed
// request, a timeout (a walk that outlasts its own deadline included), a
// lost gateway session, a pager walk whose total moved or a garbled body
// leaves the last state standing and marks the entities concerned not
// visible; a bridge visibility event says which and since when, and a later
// one says when they are visible again.
//
// Offset paging is no snapshot: an entry can slide past a page boundary
// while a walk is under way and be missed by a walk that looks complete.
// So an agent or a phone is deleted only when two complete walks in a row
// miss it; one empty (but well-formed) roster deletes nobody.
//
// # Sequences
//
// Every entity subject has its own sequence, starting at 1, with no holes. The
// event ID is derived from subject and sequence ([schemas.EventID]), so the
// previous event's ID is known without storing it, and a retried publish is a
// duplicate JetStream recognises.
//
// # History
//
// The poller owns its history and reads it through the [History] its term's
// writer provides: [Tenant.Run] first rebuilds the state from the stream
// (the last event of every subject), so that a new term emits only real
// changes. When the writer finds another writer's event last on a subject,
// it reports it with [Tenant.Conflicted]; the poller stops emitting on that
// subject, re-reads it (subjects are gathered and re-read together, without
// holding the poller's lock during the reads), primes the writer with what
// it read and continues from there.
package poller
