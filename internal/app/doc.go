// Package app wires a whole cecbridge together: vendor clients and gateway
// sessions, one poller per tenant, the JetStream publisher, the lookup
// service and the metrics and health endpoints, with their start-up and
// shutdown order. cmd/cecbridge and cmd/cecbench both run the bridge through
// it, so what is measured is what runs.
package app
