// Package poller turns what the vendor reports into change events.
//
// A [Tenant] keeps the last published state of every entity of one CEC tenant
// (an agent's call IDs, an agent's softphone binding, a softphone number's
// registration state), polls the vendor on its own schedule and hands every
// difference to a [Sink] as an encoded CloudEvent ([schemas.Record]).
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
// what a round robin over just them would give.
//
// # No false deletions
//
// A state is only replaced by a complete, successful observation. A failed
// request, a timeout, a lost gateway session, a pager walk whose total moved
// or a garbled body leaves the last state standing and marks the entities
// concerned not visible; a bridge visibility event says which and since when,
// and a later one says when they are visible again.
//
// # Sequences
//
// Every entity subject has its own sequence, starting at 1, with no holes. The
// event ID is derived from subject and sequence ([schemas.EventID]), so the
// previous event's ID is known without storing it, and a retried publish is a
// duplicate JetStream recognises. After a restart the state is rebuilt from
// the stream ([Tenant.Restore]); after another writer won a subject the
// publisher reports what the stream holds and [Tenant.Adopt] takes it over.
package poller
