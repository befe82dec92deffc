package schemas_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

const (
	officialSchema       = "testdata/asyncapi/3.0.0.json"
	officialSchemaID     = "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
	officialSchemaSHA256 = "d4571a420e6ffb7fcc7066c95a6db1202f299a3c51daa103d0706bf30f95e626"
)

// loadAsyncAPI reads asyncapi.yaml as the generic JSON document a JSON
// Schema validator takes.
func loadAsyncAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(y)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return doc.(map[string]any)
}

// The document is a valid AsyncAPI 3.0.0 document by the official schema,
// kept unmodified in testdata (no network in tests).
func TestAsyncAPIIsValid(t *testing.T) {
	raw, err := os.ReadFile(officialSchema)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != officialSchemaSHA256 {
		t.Fatalf("%s was modified; restore it from @asyncapi/specs (see its README)", officialSchema)
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(officialSchemaID, schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(officialSchemaID)
	if err != nil {
		t.Fatal(err)
	}
	doc := loadAsyncAPI(t)
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("asyncapi.yaml is not a valid AsyncAPI 3.0.0 document: %v", err)
	}
	// The validator is not vacuous: a broken document fails.
	doc["channels"].(map[string]any)["agentCalls"].(map[string]any)["address"] = 42
	if sch.Validate(doc) == nil {
		t.Fatal("a channel address that is a number passed validation")
	}
}

// get follows a path of keys through the generic document.
func get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

// deref resolves a local reference ("#/components/messages/x").
func deref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	ref := str(v, "$ref")
	if ref == "" {
		m, _ := v.(map[string]any)
		return m
	}
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		t.Fatalf("not a local reference: %s", ref)
	}
	m, ok := get(doc, strings.Split(p, "/")...).(map[string]any)
	if !ok {
		t.Fatalf("dangling reference %s", ref)
	}
	return deref(t, doc, m)
}

// walkRefs calls fn with every $ref in the document.
func walkRefs(v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		if r, ok := x["$ref"].(string); ok {
			fn(r)
		}
		for _, y := range x {
			walkRefs(y, fn)
		}
	case []any:
		for _, y := range x {
			walkRefs(y, fn)
		}
	}
}

// addressRE turns a channel address into a pattern its subjects match.
func addressRE(addr string) *regexp.Regexp {
	parts := strings.Split(regexp.QuoteMeta(addr), `\{`)
	for i := 1; i < len(parts); i++ {
		_, rest, _ := strings.Cut(parts[i], `\}`)
		parts[i] = `[^.]+` + rest
	}
	return regexp.MustCompile("^" + strings.Join(parts, "") + "$")
}

// The document and the package describe the same contract: every event
// type with its schema file and subject, every lookup with its request,
// answer and error codes, every schema file, and nothing else.
func TestAsyncAPIMatchesTheSchemas(t *testing.T) {
	doc := loadAsyncAPI(t)
	// Every reference resolves; the files referenced are exactly json/.
	var files []string
	walkRefs(doc, func(ref string) {
		if strings.HasPrefix(ref, "#/") {
			deref(t, doc, map[string]any{"$ref": ref})
			return
		}
		files = append(files, ref)
	})
	want, err := fs.Glob(schemas.Files, "json/*.json")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if files = slices.Compact(files); !slices.Equal(files, want) {
		t.Fatalf("schema files referenced:\n%v\nin json/:\n%v", files, want)
	}

	channels := get(doc, "channels").(map[string]any)
	operations := get(doc, "operations").(map[string]any)
	// operation finds the one operation on a channel.
	operation := func(channel string) map[string]any {
		var found []map[string]any
		for _, op := range operations {
			if str(op, "channel", "$ref") == "#/channels/"+channel {
				found = append(found, op.(map[string]any))
			}
		}
		if len(found) != 1 {
			t.Fatalf("channel %s has %d operations", channel, len(found))
		}
		return found[0]
	}
	payloadFile := func(msg map[string]any) string { return str(msg, "payload", "schema", "$ref") }

	// Events: one channel per type, whose address its subjects match.
	examples := schematest.Examples()
	var eventChannels []string
	for _, typ := range schemas.EventTypes {
		var name string
		for cname, ch := range channels {
			for _, m := range get(ch, "messages").(map[string]any) {
				if str(deref(t, doc, m), "name") == typ {
					name = cname
				}
			}
		}
		if name == "" {
			t.Errorf("no channel carries %s", typ)
			continue
		}
		eventChannels = append(eventChannels, name)
		ch := channels[name].(map[string]any)
		var ev schemas.Event
		if err := json.Unmarshal(examples[typ], &ev); err != nil {
			t.Fatal(err)
		}
		if !addressRE(str(ch, "address")).MatchString(ev.Subject) {
			t.Errorf("%s: subject %s does not match address %s", typ, ev.Subject, str(ch, "address"))
		}
		op := operation(name)
		msg := deref(t, doc, get(op, "messages").([]any)[0])
		if str(op, "action") != "send" || payloadFile(msg) != schemas.SchemaFile(typ) ||
			str(msg, "contentType") != schemas.EnvelopeContentType {
			t.Errorf("%s: operation %v, message %v", typ, op, msg)
		}
	}

	// Lookups: a request channel each, answered with the response or a
	// coded error on the reply subject.
	var lookupChannels []string
	for _, ep := range schemas.LookupEndpoints {
		var name string
		for cname, ch := range channels {
			if str(ch, "address") == schemas.LookupPrefix+".{tenant}."+ep {
				name = cname
			}
		}
		if name == "" {
			t.Errorf("no channel for lookup %s", ep)
			continue
		}
		lookupChannels = append(lookupChannels, name)
		op := operation(name)
		req := deref(t, doc, get(op, "messages").([]any)[0])
		if str(op, "action") != "receive" || payloadFile(req) != "json/"+schemas.LookupSchemaFile(ep, "request") {
			t.Errorf("%s: operation %v, request %v", ep, op, req)
		}
		var response, codes []string
		for _, m := range get(op, "reply", "messages").([]any) {
			msg := deref(t, doc, m)
			if f := payloadFile(msg); f != "" {
				response = append(response, f)
			}
			if enum, ok := get(msg, "headers", "properties", "Nats-Service-Error-Code", "enum").([]any); ok {
				for _, c := range enum {
					codes = append(codes, c.(string))
				}
			}
		}
		var wantCodes []string
		for _, c := range schemas.LookupErrorCodes[ep] {
			wantCodes = append(wantCodes, strconv.Itoa(c))
		}
		if !slices.Equal(response, []string{"json/" + schemas.LookupSchemaFile(ep, "response")}) || !slices.Equal(codes, wantCodes) {
			t.Errorf("%s: reply payloads %v, error codes %v, want codes %v", ep, response, codes, wantCodes)
		}
	}

	// Nothing stale: every other channel is the reply subject.
	for name := range channels {
		if !slices.Contains(eventChannels, name) && !slices.Contains(lookupChannels, name) && name != "lookupReply" {
			t.Errorf("channel %s describes nothing the package has", name)
		}
	}
	if len(operations) != len(eventChannels)+len(lookupChannels) {
		t.Errorf("%d operations for %d channels", len(operations), len(eventChannels)+len(lookupChannels))
	}
}
