// Package lease elects at most one holder per key through a JetStream
// key-value bucket, so that several bridge instances can run for
// availability while only one polls a tenant.
//
// A candidate creates the key (create-if-absent); the winner renews it by
// compare-and-set on the revision it last wrote, well within the bucket's
// TTL. Each tenure is a [Term] with two clocks:
//
//   - its context ends when the holder must stop: another holder took the
//     key, the holder released it, or the elector stops;
//   - its validity (last confirmed renewal + TTL - a margin, on the
//     monotonic clock) says until when the holder may act. Nothing may be
//     published outside it.
//
// A renewal that fails because NATS cannot be reached does not end the
// term: the holder keeps polling and buffering while its validity lapses.
// When NATS is back it renews; if the key expired meanwhile and nobody took
// it, it creates it again and asks the term's reacquire check
// ([Term.OnReacquire]) whether anyone acted in its place (the writer looks
// at the stream); only then does the term go on. A renewal refused because
// the key changed ends the term at once.
//
// Holders are named (Config.Holder) and the name should be stable across
// restarts: an instance that finds its own name on a key at its first look
// resumes the lease at once, with a new term, instead of waiting a TTL for
// the lease of its dead predecessor to expire. A standby says in the log
// which instance it stands by for.
//
// The connection must not buffer while disconnected
// (nats.ReconnectBufSize(-1)): a renewal or campaign replayed from a client
// buffer after an outage would act on a stale view.
package lease
