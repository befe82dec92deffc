// Package cec is a typed client for the Huawei Cloud Customer Engagement
// Center APIs the bridge depends on: the API Fabric configuration queries
// (Bearer token from tokenByAkSk), the CC-Gateway agent interfaces (GUID
// sessions kept alive by long-polling the agent event queue) and the CC-CMS
// monitoring interfaces (C2 AK/SK signed, thousands of agents per request).
//
// The vendor is loose and under-documented, so the client is deliberately
// tolerant on input (numbers as strings and strings as numbers, optional
// fields missing, several shapes for "nothing") and strict on meaning: a
// query that could not be answered is always an error, never an empty result.
// Every failure is an [*Error] whose class is one of the package sentinels,
// matched with [errors.Is].
//
// Credentials, tokens, GUIDs, C2 signatures and softphone passwords are held
// as [Secret] or kept private, and are scrubbed from every error string and
// log record.
//
// An [Observer] that is also a [FactObserver] hears the facts the bridge's
// configuration rests on (tokens granted, return codes the client has no
// meaning for); one that is a [RefusalObserver] hears each time CC-CMS
// refuses the client (its signature, or the client itself). Tools that must see the vendor's answers unsmoothed
// (cecbridge probe) use the one-shot operations: [Client.FetchToken],
// [Client.TryToken], [Session.SignInOnce], [Session.PollOnce] and
// [Session.SignOut].
//
// # CMS sweeps
//
// [Client.NewCMS] returns a [CMS] sharing the client's transport, request
// budget and observer. [CMS.Plan] splits any set of agents into [Chunk]s of
// one VDN within an interface's limit ([MaxCallsAgents], [MaxStatesAgents]);
// [Sweep] runs a query over the chunks in parallel and returns one
// [ChunkResult] per chunk, so a failed chunk affects only its agents. An
// answer is keyed by the agentId it carries, never by position: every agent
// of a chunk is either in the answer's Agents or in its NotObserved, and an
// agent not observed must never be read as "no call".
//
// # Error classes
//
//	ErrUnauthorized      token or credentials refused; CMS 403 (IP whitelist), 0101003
//	ErrSignatureRefused  CMS HTTP 401: check AK/SK and the clock (also ErrUnauthorized)
//	ErrSessionLost       the gateway dropped the session (ErrSessionNotReady: not signed in yet)
//	ErrSignedInElsewhere the monitoring agent is signed in by another, not forced (MayForce)
//	ErrRateLimited       HTTP 429, gateway 000-007
//	ErrBadResponse       garbled, truncated, oversized or misshapen body
//	ErrUpstream          5xx, network failure, timeout; CMS 0100001
//	ErrNotFound          the vendor says the entity does not exist
//	ErrPageDrift         a paginated walk saw the data change under it
//	ErrNotSupported      CMS 0100003 (needs CTI V3R8, not licensed) or 404
//	ErrInvalidRequest    CMS 0100002, or a chunk over the limit (not sent)
//	ErrVendor            any other vendor code (see Retryable)
//	ErrConfig            what New, NewCMS and NewC2Signer refuse, every problem at once
//
// [Reason] names an error for an event or a log field from a short fixed
// vocabulary ("timeout", "session_lost", "rate_limited", "vendor_code:<code>"…),
// never from its text.
package cec
