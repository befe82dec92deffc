// Command audit-consumer keeps an append-only audit log of cecbridge
// events: one JSON line per event, each exactly once, in stream order.
//
//	go run ./examples/audit-consumer -server nats://127.0.0.1:4222 -log audit.ndjson
//
// It reads CEC_EVENTS through a durable consumer, so it resumes where it
// stopped, and it is at-least-once: an event is acknowledged only once its
// line is on disk. An event may therefore come again after a crash; the
// consumer recognises it by its id and skips it. Ids are derived from the
// subject and the per-subject seq, so "already in the log" is "seq at or
// below the subject's last", which needs one number per subject, not a set
// of every id ever seen. At start it reads that state back from the log.
//
// As it goes it checks each subject's history: seq follows the last one
// by one, and prev_id names the last event. A break is logged (a hole the
// stream has, or a subject whose first events aged out before the
// consumer first ran) and the event is still written.
package main
