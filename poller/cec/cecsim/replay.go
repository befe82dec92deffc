package cecsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// ReplayFile is the file of a capture directory that holds a [Replay].
const ReplayFile = "simulator.json"

// Replay is what a capture of a real tenant (cecbridge probe --capture)
// tells the simulator: the answers to the documentation's gaps, example
// bodies, and the shape of the world, so that the tenant's behaviour can be
// served, and tested against, without the tenant. Empty fields keep the
// simulator's defaults.
type Replay struct {
	Source      string         `json:"source,omitempty"`        // what captured it
	Agents      int            `json:"agents,omitempty"`        // roster size
	FirstWorkNo int            `json:"first_work_no,omitempty"` // lowest work number
	Calls       map[string]int `json:"calls,omitempty"`         // work number -> calls held when captured

	AuthMode     string `json:"auth_mode,omitempty"`     // "static" or "dynamic"
	GUIDInterval string `json:"guid_interval,omitempty"` // observed rotation period (dynamic)
	LongPollHold string `json:"long_poll_hold,omitempty"`
	TokenMax     string `json:"token_max_lifetime,omitempty"` // longest lifetime granted
	LoginEx      *bool  `json:"loginex,omitempty"`            // whether loginex is offered

	NoCall     string `json:"no_call,omitempty"`      // "empty", "omit" or "code"
	NoCallCode string `json:"no_call_code,omitempty"` // with NoCall "code"
	EmptyPoll  string `json:"empty_poll,omitempty"`   // "absent", "null" or "{}"

	ExpiredTokenStatus int    `json:"expired_token_status,omitempty"`
	ExpiredTokenBody   string `json:"expired_token_body,omitempty"` // example body, verbatim; none with the status alone
	FlatRegServ        bool   `json:"flat_reg_serv,omitempty"`

	CMS *ReplayCMS `json:"cms,omitempty"` // nil when the capture did not ask CMS
}

// ReplayCMS is how the tenant's CC-CMS answered.
type ReplayCMS struct {
	// Refused: CMS refused every signature the client tried (wrong AK/SK
	// or clock). Otherwise SignedHeaders and Timestamp are the variant it
	// accepted, and the only one the replay accepts.
	Refused bool `json:"refused,omitempty"`
	// RefusedClient: CMS refused the client itself (HTTP 403: this
	// host is not on the tenant's IP whitelist), whatever it signed.
	RefusedClient bool     `json:"refused_client,omitempty"`
	SignedHeaders []string `json:"signed_headers,omitempty"`
	Timestamp     string   `json:"timestamp,omitempty"`
	NotLicensed   bool     `json:"not_licensed,omitempty"`   // every call answered 0100003
	AnswerUnasked bool     `json:"answer_unasked,omitempty"` // answers named agents nobody asked about
}

// ErrBadReplay wraps every problem with a Replay.
var ErrBadReplay = errors.New("cecsim: invalid replay")

// ReadReplay reads the Replay of capture directory dir.
func ReadReplay(dir string) (Replay, error) {
	data, err := os.ReadFile(filepath.Join(dir, ReplayFile))
	if err != nil {
		return Replay{}, fmt.Errorf("%w: %w", ErrBadReplay, err)
	}
	var r Replay
	if err := json.Unmarshal(data, &r); err != nil {
		return Replay{}, fmt.Errorf("%w: %s: %w", ErrBadReplay, ReplayFile, err)
	}
	return r, nil
}

// Apply returns cfg with what the replay knows set over it.
func (r Replay) Apply(cfg Config) (Config, error) {
	bad := func(field, v string) error { return fmt.Errorf("%w: %s %q", ErrBadReplay, field, v) }
	dur := func(field, v string, dst *time.Duration) error {
		if v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return bad(field, v)
		}
		*dst = d
		return nil
	}
	if r.Agents > 0 {
		cfg.Agents = r.Agents
	}
	if r.FirstWorkNo > 0 {
		cfg.FirstWorkNo = r.FirstWorkNo
	}
	switch r.AuthMode {
	case "":
	case "dynamic":
		cfg.AuthMode = AuthDynamic
	case "static":
		cfg.AuthMode = AuthStatic
	default:
		return cfg, bad("auth_mode", r.AuthMode)
	}
	if err := errors.Join(dur("guid_interval", r.GUIDInterval, &cfg.GUIDInterval),
		dur("long_poll_hold", r.LongPollHold, &cfg.LongPollHold),
		dur("token_max_lifetime", r.TokenMax, &cfg.TokenMaxLifetime)); err != nil {
		return cfg, err
	}
	if cfg.AuthMode == AuthDynamic && cfg.GUIDInterval > 0 && cfg.GUIDTimeout <= cfg.GUIDInterval {
		cfg.GUIDTimeout = 2 * cfg.GUIDInterval
	}
	if cfg.TokenMaxLifetime > 0 && cfg.TokenDefaultLifetime > cfg.TokenMaxLifetime {
		cfg.TokenDefaultLifetime = cfg.TokenMaxLifetime
	}
	if r.LoginEx != nil {
		cfg.NoLoginEx = !*r.LoginEx
	}
	switch r.NoCall {
	case "":
	case "empty":
		cfg.NoCallMode = NoCallEmpty
	case "omit":
		cfg.NoCallMode = NoCallOmit
	case "code":
		if r.NoCallCode == "" {
			return cfg, bad("no_call_code", "")
		}
		cfg.NoCallMode, cfg.NoCallCode = NoCallError, r.NoCallCode
	default:
		return cfg, bad("no_call", r.NoCall)
	}
	switch r.EmptyPoll {
	case "":
	case "absent":
		cfg.EmptyPollMode = EmptyPollAbsent
	case "null":
		cfg.EmptyPollMode = EmptyPollNull
	case "{}":
		cfg.EmptyPollMode = EmptyPollEmptyObject
	default:
		return cfg, bad("empty_poll", r.EmptyPoll)
	}
	if r.ExpiredTokenStatus != 0 {
		cfg.ExpiredTokenStatus = r.ExpiredTokenStatus
		cfg.ExpiredTokenBody = r.ExpiredTokenBody
		cfg.ExpiredTokenNoBody = r.ExpiredTokenBody == ""
	}
	cfg.FlatRegServ = r.FlatRegServ
	if c := r.CMS; c != nil {
		switch c.Timestamp {
		case "", C2Seconds, C2Millis:
		default:
			return cfg, bad("cms.timestamp", c.Timestamp)
		}
		cfg.CMS.RefuseSignatures, cfg.CMS.RefuseClient = c.Refused, c.RefusedClient
		cfg.CMS.SignedHeaders, cfg.CMS.Timestamp = c.SignedHeaders, c.Timestamp
		cfg.CMS.NotLicensed, cfg.CMS.AnswerUnasked = c.NotLicensed, c.AnswerUnasked
	}
	return cfg, nil
}

// PlaceCalls starts, on each agent of calls, as many calls as it held when
// captured.
func (s *Sim) PlaceCalls(calls map[string]int) error {
	keys := make([]string, 0, len(calls))
	for k := range calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		wn, err := strconv.Atoi(k)
		if err != nil {
			return fmt.Errorf("%w: calls key %q", ErrBadReplay, k)
		}
		for range calls[k] {
			if _, err := s.StartCall(wn); err != nil {
				return fmt.Errorf("%w: calls of %d: %w", ErrBadReplay, wn, err)
			}
		}
	}
	return nil
}
