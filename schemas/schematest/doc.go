// Package schematest validates cecbridge messages against the JSON Schemas
// embedded in package schemas, for tests: every test that emits an event
// passes its encoded body to ValidateEvent.
package schematest
