// Command cecbridge bridges a Huawei Cloud CEC contact center onto NATS.
//
// Subcommands:
//
//	cecbridge dev                      embedded NATS + simulated CEC + bridge, no setup
//	cecbridge run --config FILE        the bridge against a configured CEC and NATS
//	cecbridge check-config FILE        validate a configuration (--print shows it, secrets redacted)
//	cecbridge probe --config FILE      read-only checks against a live tenant; says what to configure
//	cecbridge lookup WHAT [ARGS]       ask the lookup service
//	cecbridge tail [FILTER]            print live or replayed events
//	cecbridge audit verify|export      prove a history is whole; export a time range
//	cecbridge health --url URL        exit 0 if the bridge answers ready (for container health checks)
//	cecbridge version
package main
