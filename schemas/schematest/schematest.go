package schematest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/cecbridge/cecbridge/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	once     sync.Once
	compiled map[string]*jsonschema.Schema // by file path in schemas.Files
	loadErr  error
)

// load compiles every schema once per test binary. Schemas refer to each
// other by their $id, so all are added as resources before any compiles.
func load() (map[string]*jsonschema.Schema, error) {
	once.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		paths, err := fs.Glob(schemas.Files, "json/*.json")
		if err != nil {
			loadErr = err
			return
		}
		ids := make(map[string]string, len(paths))
		for _, p := range paths {
			b, err := fs.ReadFile(schemas.Files, p)
			if err != nil {
				loadErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				loadErr = fmt.Errorf("%s: %w", p, err)
				return
			}
			id := schemas.SchemaBase + strings.TrimPrefix(p, "json/")
			if m, ok := doc.(map[string]any); ok {
				if s, ok := m["$id"].(string); ok {
					id = s
				}
			}
			if err := c.AddResource(id, doc); err != nil {
				loadErr = fmt.Errorf("%s: %w", p, err)
				return
			}
			ids[p] = id
		}
		compiled = make(map[string]*jsonschema.Schema, len(paths))
		for p, id := range ids {
			s, err := c.Compile(id)
			if err != nil {
				loadErr = fmt.Errorf("%s: %w", p, err)
				return
			}
			compiled[p] = s
		}
	})
	return compiled, loadErr
}

// CheckJSON validates body against the schema file (a path in
// schemas.Files such as "json/agent.calls.v1.json", or just its base name)
// and returns the validation error, if any.
func CheckJSON(schemaFile string, body []byte) error {
	all, err := load()
	if err != nil {
		return fmt.Errorf("schematest: compiling schemas: %w", err)
	}
	if !strings.HasPrefix(schemaFile, "json/") {
		schemaFile = "json/" + schemaFile
	}
	s, ok := all[schemaFile]
	if !ok {
		return fmt.Errorf("schematest: no schema %q", schemaFile)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("schematest: body is not JSON: %w", err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("schematest: %s: %w", schemaFile, err)
	}
	return nil
}

// CheckEvent validates an encoded event against the schema of its "type".
func CheckEvent(body []byte) error {
	var env struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("schematest: event is not a JSON object: %w", err)
	}
	file := schemas.SchemaFile(env.Type)
	if file == "" {
		return fmt.Errorf("schematest: no schema for event type %q", env.Type)
	}
	return CheckJSON(file, body)
}

// ValidateEvent fails the test unless body is a valid event of the type it
// names.
func ValidateEvent(t testing.TB, body []byte) {
	t.Helper()
	if err := CheckEvent(body); err != nil {
		t.Errorf("invalid event: %v\nbody: %s", err, body)
	}
}

// ValidateJSON fails the test unless body is valid against schemaFile.
func ValidateJSON(t testing.TB, schemaFile string, body []byte) {
	t.Helper()
	if err := CheckJSON(schemaFile, body); err != nil {
		t.Errorf("invalid %s: %v\nbody: %s", schemaFile, err, body)
	}
}
