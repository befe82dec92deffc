// Package lease elects at most one holder per key through a JetStream
// key-value bucket, so that several bridge instances can run for
// availability while only one polls a tenant.
//
// A candidate creates the key (create-if-absent); the winner renews it by
// compare-and-set on the revision it last wrote, well within the bucket's
// TTL, and treats any failed renewal as the end of its term. A holder that
// dies stops renewing, the key expires with the bucket TTL, and a standby's
// next create succeeds. A holder paused past the TTL may still believe it
// leads for a moment; JetStream's expected-sequence check on every publish
// fences its writes, so the overlap cannot fork a history.
package lease
