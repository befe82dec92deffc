// Package publisher writes cecbridge events to JetStream without losing,
// doubling or forking them.
//
// [Provision] lays out two streams: the events stream keeps every event for
// the audit retention, and the state stream, sourced from it, keeps the last
// event of every subject forever, so an entity that has not changed for
// longer than the retention is not announced as new after a restart. It
// creates missing streams and reports how existing ones differ from the
// configuration ([ErrDrift]) rather than overwriting them, unless told to
// update them; [ErrPermanent] marks what no retry can fix.
//
// A [Publisher] accepts records with [Publisher.Emit] without blocking and
// publishes them from [Publisher.Run]:
//
//   - every message carries Nats-Msg-Id (the record's deterministic ID), so
//     a retry after an ambiguous outcome is stored once;
//   - every message carries Nats-Expected-Last-Subject-Sequence, so a second
//     writer on the same subject is refused instead of forking the
//     entity's history (see [Config.OnConflict]);
//   - at most one message per subject is in flight, which keeps per-subject
//     order; across subjects, publishes are asynchronous within a bounded
//     window;
//   - while NATS is away, records wait in memory and then in an append-only
//     spool on disk; past both bounds, or when the disk is full, Emit refuses
//     with [ErrBufferFull]. A record the spool accepted is read back: a torn
//     write is cut off, a record that fails its checksum is skipped and
//     counted as failed. [Publisher.SpoolWritable] says whether the spool
//     directory takes writes.
//
// [Publisher.Load] rebuilds the current state of every subject at start-up
// and primes the expected sequences.
package publisher
