// Package configs loads and validates the bridge's YAML configuration.
//
// Decoding is strict: an unknown key, a value of the wrong type or an invalid
// value is an error that names the key path, and every problem in a file is
// reported at once. Secrets are of type [Secret], which prints and marshals as
// a placeholder; each may instead come from a file (the key with a `_file`
// suffix) or from the environment (CECBRIDGE_… variables, see [Load]).
//
// The example files next to this package (dev.yaml, production.yaml,
// compose.yaml) are loaded by the tests, so they cannot drift from the code.
package configs
