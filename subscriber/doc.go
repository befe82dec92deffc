// Package subscriber answers lookups about the contact center's current
// state over NATS request/reply.
//
// # State view
//
// A [View] holds the current state of every agent (call IDs, softphone
// binding, CTI state, visibility) and every softphone number (registration
// state). It starts from the CEC_STATE stream, which keeps the last event
// of every subject, noting the highest CEC_EVENTS sequence found there,
// then follows CEC_EVENTS live from the next sequence. Events are applied only when their
// per-entity seq is newer than the view's, so overlaps are harmless. The view
// tracks the CEC_EVENTS sequence it has applied; callers may wait for a
// sequence ([View.WaitApplied]), woken by a broadcast on every apply. A
// sequence on a subject the view does not follow is reached once the stream
// leader shows no message of the view's own subjects left to apply up to it.
//
// # Lookup service
//
// A [Service] is a NATS micro service (name "cecbridge", queue group
// "cecbridge" by default) with one group per tenant, "cec.lookup.<tenant>",
// and the endpoints agent.calls, agent.softphone, agent.state,
// agent.by_account, phone.state, agents.list and phones.list. Request and
// response types and the error codes live in package schemas (lookup.go)
// with one JSON Schema per message; each endpoint's metadata names its
// schema files.
//
// agent.state answers from agent.state events, which only a tenant with a
// CMS sweep has; the view keeps that record only for agents that have one.
// agent.calls.v2 events answer no lookup, and the view skips them without
// decoding (agent.calls answers the v1 call IDs).
//
// # Past instants
//
// A request with as_of is answered from the events stream, not from the
// view: the entities concerned are rebuilt as they stood at that instant
// with JetStream direct gets (the server's time index and a multi-last get
// up to a sequence; see history.go) into a throw-away view that the usual
// read methods answer from. The answer says which event it came from. An
// instant before the stream's first message is answered 409.
//
// Errors are micro coded errors with an empty body:
//
//	400 bad request: malformed JSON, unknown field, trailing data, key missing
//	    or out of range, token with a dot/wildcard, payload over 64 KiB
//	404 not found: the view (or the vendor, for by_account) has no such entity
//	409 not visible: the entity is known but not observable now
//	    (only with require_visible), or as_of before the retention
//	500 internal: a bug, including a recovered panic (counted in Stats)
//	503 unavailable: the vendor could not be asked, the view is not ready,
//	    the service is saturated or stopping
//	504 timeout: min_seq not reached within wait, or the vendor too slow
//
// Each endpoint's callback runs on one goroutine. Requests the view can answer
// at once are answered there; those that may block (a min_seq not yet
// applied, a live fetch) go to a bounded worker pool, and a full pool answers
// 503 rather than queueing without bound. Live fetches (max_age, by_account)
// go through a [LiveFetcher] and are single-flight per key.
//
// # Layout
//
//	view.go       the View: bootstrap from CEC_STATE, follow CEC_EVENTS, WaitApplied
//	state.go      the state records and how each event folds into them
//	read.go       what each answer reads, under the read lock
//	reach.go      whether a sequence of another tenant's event is reached
//	service.go    the micro service, its endpoints and worker pool
//	endpoints.go  request decoding and checks; one parser for view-backed requests
//	queries.go    the seven requests
//	answer.go     one answer per request, the documented codes, the Observer
//	live.go       vendor lookups, single-flight, the by_account cache
//	asof.go       answers as of a past instant, from history.go's direct gets
package subscriber
