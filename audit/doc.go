// Package audit proves that a cecbridge event history is whole, and exports
// a time range of it for an auditor. It is what `cecbridge audit` runs, and
// it is public so that a consumer's own audit job can use the same rules.
//
// # What a whole history is
//
// Every entity subject (and each bridge subject) carries its own sequence:
// data.seq counts from 1 with no holes, data.prev_id names the event before,
// and the event id is derived from the subject and seq ([schemas.EventID]).
// A [Checker] is fed the messages of a stream in stream order and reports,
// per subject:
//
//	hole          seqs missing between two stored events, or at the start of
//	              a subject when the stream has lost nothing to retention
//	duplicate     the same event (same id, same body) stored again
//	fork          two different messages with one seq
//	repeat        a seq at or below the subject's last one whose earlier copy
//	              is too far back to compare
//	broken_link   prev_id does not name the event before
//	bad_id        the id is not the one derived from subject and seq, or the
//	              envelope names another subject; this is also how an id used
//	              on two subjects shows, since derived ids cannot collide
//	backwards     a detected window that goes backwards: after_poll past
//	              by_poll, or a window starting before the previous event's
//	              by_poll
//	undecodable   a message that is not an event of the contract
//
// and, not a defect, retention_cut: a subject whose first stored event has a
// seq past 1 while the stream's first sequence is past 1 as well, so its
// earlier events are older than the stream's first message. A checker that
// does not start at the stream's first message reports nothing about a
// subject's first event but its prev_id.
//
// Memory is bounded per subject: the checker keeps the last few (seq,
// digest) pairs of each subject to tell a duplicate from a fork, not every
// event id.
//
// [Verify] walks a stream with an ordered consumer and runs a Checker over
// it; [Export] writes a time range as NDJSON or CSV with a [Manifest].
package audit
