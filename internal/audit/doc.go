// Package audit scores what a bridge stored in CEC_EVENTS against the event
// model's rules and against the simulator's world. Tests and cecbench use it
// after runs that kill servers or processes.
//
// # History rules
//
// [CheckHistory] reads one tenant's events in stream order and counts, per
// subject:
//
//   - duplicates: an event stored again with the same id and the same body
//     (a retry that JetStream did not deduplicate);
//   - forks: a second, different event at a seq the subject already holds
//     (two writers, or one writer across two terms);
//   - holes: seqs skipped, and events whose seq goes backwards to one never
//     stored;
//   - broken links: a prev_id that does not name the event before it.
//
// # Final state
//
// [FinalWorld] is the state the history ends in (the last event of every
// entity subject; a delete removes the entity), [SimWorld] the simulator's
// current world, and [Diff] lists where they differ: a change that never
// reached the stream, or one that should not be there.
package audit
