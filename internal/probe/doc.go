// Package probe is cecbridge probe: a read-only run against a live tenant
// that asks what the vendor's documents leave open and reports, per
// question, what the vendor answered, what the bridge will do with that
// answer, and the configuration to set.
//
// # Read-only
//
// The probe signs in only the tenant's first monitoring agent (loginex
// where the tenant offers it, login otherwise), never takes over a session
// that is signed in already (100-002 is reported, not forced), asks only
// queries, and signs out at the end, even when interrupted.
//
// # Checks
//
// A [Check] is one function over the shared [Probe] state, run in the
// order of the checks list; each returns report rows and records what it
// learned for later checks (the roster, the idle answer, the session). A
// check with nothing to ask returns a skip row saying why. Row statuses:
// ok; skip; warn (works, but look); fix (works once the row's [Suggestion]
// is applied); fail (cannot work, or could not be found out). The verdict
// and exit status follow the worst row: 0 works, 2 works with the
// suggested changes, 1 cannot work. Without a token the API Fabric queries
// are not asked (the client would retry each for half a minute). [Apply]
// sets every key the probe suggests: no_call_codes, token_lifetime,
// cms.signed_headers, cms.timestamp and cms.confirm. [Report.WriteTable]
// prints them as the nested YAML of the tenant's entry, to be pasted into
// the configuration.
//
// # Capture
//
// Every exchange goes through a recording transport and is kept scrubbed:
// credentials (the CMS AK and SK among them) become [redacted] and are then
// cut out wherever else they appear; a request keeps the headers it had,
// a C2 Authorization only its timestamp and signed headers; a GUID becomes
// the same stand-in of its form in headers, bodies and text; and personal
// data (caller and called numbers, business accounts, names, free text)
// becomes pseudonyms that are stable within the run and keep their shape.
// The client's Observer marks each exchange, CMS ones included, with what
// the client made of it.
// [Probe.WriteCapture] writes the exchanges, the report and a
// [cecsim.Replay] that lets the simulator serve the tenant's behaviour,
// CC-CMS included (the signing variant it accepted, or that it refused
// every one, or refused this host with HTTP 403, or is not licensed).
package probe
