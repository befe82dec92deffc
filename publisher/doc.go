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
// # Writers and terms
//
// A [Publisher] owns the connection's publishing pipeline, the memory
// buffer and the spool. It publishes for [Writer]s, one per term: a term is
// one uninterrupted tenure of a tenant's lease by one instance. A writer
// accepts records with [Writer.Emit] without blocking; [Publisher.Run]
// publishes them:
//
//   - every message carries Nats-Msg-Id (the event ID qualified by the
//     writer's term), so a retry after an ambiguous outcome is stored once,
//     while another term's event of the same sequence is told apart;
//   - every message carries Nats-Expected-Last-Subject-Sequence, so a second
//     writer on the same subject is refused instead of forking the
//     entity's history (see [WriterConfig.OnConflict]);
//   - at most one message per subject is in flight, which keeps per-subject
//     order; across subjects, publishes are asynchronous within a bounded
//     window, and each acknowledgement is matched to its publish as it
//     arrives;
//   - a writer's records go out only while its [Gate] (the lease term's
//     validity) is open and the connection is up; they wait otherwise;
//   - while NATS is away, records wait in memory and then in an append-only
//     spool on disk; past both bounds, or when the disk is full, Emit refuses
//     with [ErrBufferFull]. A record the spool accepted is read back: a torn
//     write is cut off, a record that fails its checksum is skipped and
//     counted as failed. [Publisher.SpoolWritable] says whether the spool
//     directory takes writes.
//
// # Fencing
//
// [Writer.End] ends a term: whatever the writer has not sent is dropped
// (from memory and from the spool), nothing is retried, and End returns
// once every record already sent has had its answer. After that nothing of
// the term can reach the stream, so the next term, of this instance or
// another, can rebuild its state with [Writer.Load] knowing the stream will
// not change under it by the hand of a term that is over.
//
// [Writer.Load] rebuilds the current state of every subject and primes the
// expected sequences with exactly what it loaded; [Writer.Latest] and
// [Writer.Prime] re-read one subject after a conflict, through the stream
// leader.
package publisher
