package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("configs: invalid configuration")

// Problem is one configuration error at a key path such as
// "tenants[0].monitors[1].agent_id".
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) Error() string { return p.Path + ": " + p.Msg }

// Problems is every problem found in one configuration.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return fmt.Sprintf("configs: %d problem(s):\n  %s", len(ps), strings.Join(lines, "\n  "))
}

// Is makes errors.Is(err, ErrConfig) hold.
func (ps Problems) Is(target error) bool { return target == ErrConfig }

// Env reads an environment variable; os.LookupEnv in production, a map in
// tests.
type Env func(key string) (string, bool)

// LoadFile reads, decodes and validates a configuration file, applying
// environment overrides from the process environment.
func LoadFile(path string) (Bridge, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Bridge{}, fmt.Errorf("configs: %w", err)
	}
	return Load(bytes.NewReader(data), os.LookupEnv)
}

// Load decodes and validates a configuration. Environment variables override
// endpoints and secrets: CECBRIDGE_NATS_URLS (comma-separated),
// CECBRIDGE_NATS_USER, CECBRIDGE_NATS_PASSWORD, CECBRIDGE_NATS_TOKEN, and per
// tenant (name upper-cased, '-' as '_') CECBRIDGE_<TENANT>_FABRIC_URL,
// _TOKEN_URL, _GATEWAY_URL, _APP_KEY, _APP_SECRET,
// CECBRIDGE_<TENANT>_MONITOR_<AGENTID>_PASSWORD, and for a tenant with a
// cms block _CMS_URL, _CMS_AK and _CMS_SK. Secrets may also come from
// files: every `password`, `token`, `app_secret`, `ak` and `sk` has a
// `…_file` twin.
func Load(r io.Reader, env Env) (Bridge, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(r)
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return Bridge{}, Problems{{Path: "(file)", Msg: "not valid YAML: " + err.Error()}}
	}
	var b Bridge
	var ps Problems
	if root.Kind != 0 {
		decodeStrict(&root, reflect.ValueOf(&b).Elem(), "", &ps)
	}
	if len(ps) > 0 {
		return Bridge{}, ps
	}
	b.applyEnv(env)
	ps = append(ps, b.readSecretFiles()...)
	b.setDefaults()
	ps = append(ps, b.validate()...)
	if len(ps) > 0 {
		return Bridge{}, ps
	}
	return b, nil
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeStrict walks a YAML node and the Go value together, so that every
// problem names its key path and says what was expected.
func decodeStrict(n *yaml.Node, v reflect.Value, path string, ps *Problems) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			decodeStrict(n.Content[0], v, path, ps)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		decodeStrict(n.Alias, v, path, ps)
		return
	}
	if n.Tag == "!!null" {
		return
	}
	if v.Kind() == reflect.Pointer {
		// An optional block: present in the file means present.
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		decodeStrict(n, v.Elem(), path, ps)
		return
	}
	where := func() string {
		if path == "" {
			return "(root)"
		}
		return path
	}
	switch {
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*ps = append(*ps, Problem{where(), "expected a mapping of keys"})
			return
		}
		fields := map[string]int{}
		var known []string
		for i := range v.NumField() {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if tag != "" && tag != "-" {
				fields[tag] = i
				known = append(known, tag)
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			sub := join(path, key)
			idx, ok := fields[key]
			if !ok {
				*ps = append(*ps, Problem{sub, fmt.Sprintf("unknown key (expected one of: %s)", strings.Join(known, ", "))})
				continue
			}
			if seen[key] {
				*ps = append(*ps, Problem{sub, "key given twice"})
				continue
			}
			seen[key] = true
			decodeStrict(n.Content[i+1], v.Field(idx), sub, ps)
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			*ps = append(*ps, Problem{where(), "expected a list"})
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeStrict(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), ps)
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			*ps = append(*ps, Problem{where(), "expected a single value, " + describe(v.Type())})
			return
		}
		if v.Type() == durationType {
			d, err := time.ParseDuration(n.Value)
			if err != nil {
				*ps = append(*ps, Problem{where(), fmt.Sprintf("expected a duration such as 1s or 5m, got %q", n.Value)})
				return
			}
			v.SetInt(int64(d))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			*ps = append(*ps, Problem{where(), fmt.Sprintf("expected %s, got %q", describe(v.Type()), n.Value)})
		}
	}
}

func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
