package schemas

import (
	"embed"
	"io/fs"
	"strings"
)

// Files holds the JSON Schema (draft 2020-12) of every message: one file per
// event type (json/<name>.json, named after the type without the
// "io.cecbridge." prefix) and the lookup requests and responses.
//
//go:embed json/*.json
var Files embed.FS

// SchemaBase is the URI prefix of every schema's $id.
const SchemaBase = "https://cecbridge.dev/schemas/"

const typePrefix = "io.cecbridge."

// SchemaFile returns the path in Files of the schema of an event type, or
// "" if there is none.
func SchemaFile(eventType string) string {
	name, ok := strings.CutPrefix(eventType, typePrefix)
	if !ok || name == "" {
		return ""
	}
	path := "json/" + name + ".json"
	if _, err := fs.Stat(Files, path); err != nil {
		return ""
	}
	return path
}

// DataSchema returns the dataschema URI of an event type
// ("io.cecbridge.agent.calls.v1" gives
// "https://cecbridge.dev/schemas/agent.calls.v1.json"), or "" for a type
// without a schema.
func DataSchema(eventType string) string {
	path := SchemaFile(eventType)
	if path == "" {
		return ""
	}
	return SchemaBase + strings.TrimPrefix(path, "json/")
}
