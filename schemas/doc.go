// Package schemas holds the wire contract of cecbridge: the CloudEvents
// envelope and the change payloads the bridge publishes, the NATS subject
// scheme, the lookup request and response types, and the JSON Schema files
// that describe every message (embedded, see [Files]).
//
// Nothing here talks to NATS or to the vendor: poller, publisher and
// subscriber all depend on this package and on nothing of each other.
package schemas
