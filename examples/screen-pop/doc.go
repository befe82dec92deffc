// Command screen-pop prints a line the first time a call shows up on an
// agent: the moment a CRM would pop the caller's record on the agent's
// screen.
//
//	go run ./examples/screen-pop -server nats://127.0.0.1:4222 -tenant dev
//
// It is a live subscriber: a plain NATS subscription to every agent's
// calls subject of one tenant. Each event carries the agent's whole list
// of call IDs, so the subscriber compares it with the list it last saw
// for that agent and pops the IDs that are new. Comparing with its own
// last list rather than the event's "before" means that an event it
// missed (a reconnect) neither loses a pop nor repeats one, and a call
// that stays up across many events is popped once.
package main
