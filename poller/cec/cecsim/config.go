package cecsim

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// ErrConfig is wrapped by every configuration error [New] reports: all
// problems at once.
var ErrConfig = errors.New("cecsim: invalid configuration")

// AuthMode selects the CC-Gateway authentication mode (AUTHMODE).
type AuthMode int

// The gateway authentication modes. Dynamic is the vendor default.
const (
	AuthDynamic AuthMode = iota // GUID rotates every GUIDInterval
	AuthStatic                  // GUID fixed for the whole session
)

// NoCallMode selects what allcallinfoEx answers for an agent without calls,
// a point the vendor documents nowhere.
type NoCallMode int

// The no-call answers.
const (
	NoCallEmpty NoCallMode = iota // retcode "0", result []
	NoCallOmit                    // retcode "0", no result key
	NoCallError                   // retcode NoCallCode, no result key
)

// EmptyPollMode selects the body of a long poll that ended without an event.
type EmptyPollMode int

// The empty-poll bodies.
const (
	EmptyPollAbsent      EmptyPollMode = iota // no "event" key
	EmptyPollNull                             // "event": null
	EmptyPollEmptyObject                      // "event": {}
)

// Config describes the simulated tenant. The zero value of every field means
// its documented default.
type Config struct {
	Seed         int64 // deterministic workload and roster for a given seed (default 1)
	Agents       int   // roster size (default 200)
	FirstWorkNo  int   // first agent ID (default 1001)
	AgentsPerVDN int   // 0 = all agents in VDN 1, else consecutive blocks of this size

	AppKey        string // default "app-key"
	AppSecret     string // default "app-secret"
	AgentPassword string // password every agent signs in with (default "agent-pass")

	AuthMode     AuthMode
	GUIDInterval time.Duration // dynamic rotation period (default 60s)
	GUIDTimeout  time.Duration // validity of a superseded GUID after rotation (default 120s)

	NoPollTimeout time.Duration // session signed out after this long without a request (default 120s)
	LongPollHold  time.Duration // how long an empty event poll is held (default 10s)

	TokenDefaultLifetime time.Duration // when X-Token-Expire is absent (default 600s)
	TokenMaxLifetime     time.Duration // cap for X-Token-Expire (default 3600s)

	NoCallMode    NoCallMode
	NoCallCode    string // retcode for NoCallError (default "900-002")
	EmptyPollMode EmptyPollMode

	ExpiredTokenStatus int    // HTTP status for a bad Bearer token (default 401)
	ExpiredTokenBody   string // body for a bad Bearer token (default {"error":"token expired"})
	ExpiredTokenNoBody bool   // a bad Bearer token gets no body at all (ExpiredTokenBody is ignored)

	LooseTypes  bool // randomly send numbers as strings and vice versa where the vendor is loose
	FlatRegServ bool // queryPhone: regIPAddress/regPort directly under result, as in the seed example
	NoLoginEx   bool // the gateway does not offer loginex (HTTP 404)

	Addr     string // listen address for Start (default "127.0.0.1:0")
	Workload Workload
	CMS      CMS
	Logger   *slog.Logger // nil discards
}

// Workload is the random model that moves the world when Enabled. All rates
// are per hour of wall time; all draws come from the seeded generator.
type Workload struct {
	Enabled bool
	// SignedInShare is the share of agents signed in at start. Default 0.6
	// with the workload on; with it off every agent starts signed in so that
	// scripts can place calls at once.
	SignedInShare           float64
	CallsPerAgentHour       float64       // Poisson arrivals per signed-in agent (default 30)
	MeanCallDuration        time.Duration // exponential (default 60s)
	SignInOutPerHour        float64       // tenant-wide (default 120)
	SoftphoneChangesPerHour float64       // tenant-wide (default 30)
	PhoneFlapsPerHour       float64       // tenant-wide (default 60)
	RosterChangesPerHour    float64       // tenant-wide (default 6)
	MaxCallsPerAgent        int           // default 2

	// Call statuses: every call starts alerting and is answered after an
	// exponential ring time (released unanswered if that outlasts the
	// call); HoldShare of answered calls are held once, for an exponential
	// time. OutboundShare of calls are outbound.
	MeanAlerting  time.Duration // default 4s
	HoldShare     float64       // default 0.2; negative for none
	MeanHold      time.Duration // default 15s
	OutboundShare float64       // default 0.2; negative for none
}

func (c Config) withDefaults() Config {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Agents == 0 {
		c.Agents = 200
	}
	if c.FirstWorkNo == 0 {
		c.FirstWorkNo = 1001
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defD := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AppKey, "app-key")
	def(&c.AppSecret, "app-secret")
	def(&c.AgentPassword, "agent-pass")
	def(&c.NoCallCode, "900-002")
	def(&c.ExpiredTokenBody, `{"error":"token expired"}`)
	def(&c.Addr, "127.0.0.1:0")
	defD(&c.GUIDInterval, 60*time.Second)
	defD(&c.GUIDTimeout, 120*time.Second)
	defD(&c.NoPollTimeout, 120*time.Second)
	defD(&c.LongPollHold, 10*time.Second)
	defD(&c.TokenDefaultLifetime, 600*time.Second)
	defD(&c.TokenMaxLifetime, 3600*time.Second)
	if c.ExpiredTokenStatus == 0 {
		c.ExpiredTokenStatus = 401
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	w := &c.Workload
	if w.SignedInShare == 0 {
		if w.Enabled {
			w.SignedInShare = 0.6
		} else {
			w.SignedInShare = 1
		}
	}
	if w.CallsPerAgentHour == 0 {
		w.CallsPerAgentHour = 30
	}
	defD(&w.MeanCallDuration, 60*time.Second)
	if w.SignInOutPerHour == 0 {
		w.SignInOutPerHour = 120
	}
	if w.SoftphoneChangesPerHour == 0 {
		w.SoftphoneChangesPerHour = 30
	}
	if w.PhoneFlapsPerHour == 0 {
		w.PhoneFlapsPerHour = 60
	}
	if w.RosterChangesPerHour == 0 {
		w.RosterChangesPerHour = 6
	}
	if w.MaxCallsPerAgent == 0 {
		w.MaxCallsPerAgent = 2
	}
	defD(&w.MeanAlerting, 4*time.Second)
	defD(&w.MeanHold, 15*time.Second)
	if w.HoldShare == 0 {
		w.HoldShare = 0.2
	}
	if w.OutboundShare == 0 {
		w.OutboundShare = 0.2
	}
	c.CMS = c.CMS.withDefaults()
	return c
}

func (c Config) validate() error {
	var errs []error
	bad := func(field, why string) { errs = append(errs, fmt.Errorf("%s %s", field, why)) }
	if c.Agents < 0 {
		bad("Agents", "must not be negative")
	}
	if c.FirstWorkNo < 101 || c.FirstWorkNo+c.Agents-1 > 999999 {
		bad("FirstWorkNo", "agent IDs must lie in 101..999999")
	}
	if c.AgentsPerVDN < 0 {
		bad("AgentsPerVDN", "must not be negative")
	}
	if c.AuthMode != AuthDynamic && c.AuthMode != AuthStatic {
		bad("AuthMode", "unknown")
	}
	if c.GUIDInterval < 0 || c.GUIDTimeout < 0 || c.NoPollTimeout < 0 || c.LongPollHold < 0 {
		bad("timers", "must not be negative")
	}
	if c.AuthMode == AuthDynamic && c.GUIDInterval >= c.GUIDTimeout {
		bad("GUIDInterval", "must be shorter than GUIDTimeout")
	}
	if c.TokenDefaultLifetime <= 0 || c.TokenMaxLifetime < time.Second {
		bad("TokenMaxLifetime", "must be at least 1s")
	}
	if c.NoCallMode < NoCallEmpty || c.NoCallMode > NoCallError {
		bad("NoCallMode", "unknown")
	}
	if c.EmptyPollMode < EmptyPollAbsent || c.EmptyPollMode > EmptyPollEmptyObject {
		bad("EmptyPollMode", "unknown")
	}
	if c.ExpiredTokenStatus < 100 || c.ExpiredTokenStatus > 599 {
		bad("ExpiredTokenStatus", "is not an HTTP status")
	}
	w := c.Workload
	if w.SignedInShare < 0 || w.SignedInShare > 1 {
		bad("Workload.SignedInShare", "must lie in 0..1")
	}
	if w.CallsPerAgentHour < 0 || w.SignInOutPerHour < 0 || w.SoftphoneChangesPerHour < 0 ||
		w.PhoneFlapsPerHour < 0 || w.RosterChangesPerHour < 0 {
		bad("Workload rates", "must not be negative")
	}
	if w.MeanCallDuration < 0 {
		bad("Workload.MeanCallDuration", "must not be negative")
	}
	if w.MaxCallsPerAgent < 0 {
		bad("Workload.MaxCallsPerAgent", "must not be negative")
	}
	if w.MeanAlerting < 0 || w.MeanHold < 0 {
		bad("Workload.MeanAlerting/MeanHold", "must not be negative")
	}
	if w.HoldShare > 1 || w.OutboundShare > 1 {
		bad("Workload.HoldShare/OutboundShare", "must be at most 1")
	}
	c.CMS.validate(bad)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// CMS configures the simulated CC-CMS monitoring interfaces (see doc.go).
// Lag and the licence can also be changed while running ([Sim.SetCMSLag],
// [Sim.SetCMSLicensed], POST /cecsim/cms).
type CMS struct {
	AK        string        // C2 access key (default "cms-ak")
	SK        string        // C2 secret key (default "cms-sk")
	CCID      int           // the call center ID requests must name (default 1)
	ClockSkew time.Duration // how far a signature's timestamp may be from the simulator's clock (default 5m)
	Lag       time.Duration // how far CMS data trails the gateway's view (default 0)

	NotLicensed       bool // every CMS call answers 0100003
	NoTotalAgentState bool // totalagentstate answers HTTP 404, as on CTI 3.6
	// AnswerUnasked adds to every per-agent answer an entry for an agent
	// that was not asked about, as the vendor's own sample does.
	AnswerUnasked bool

	// SignedHeaders and Timestamp, when set, are the only C2 signing
	// variant CMS accepts (public sources disagree on it): a signature
	// over another set of headers, or dated with the other precision, is
	// refused like a wrong one. SignedHeaders are lower-case names, host
	// among them; Timestamp is "seconds" or "milliseconds". Unset, any
	// variant that signs host is accepted.
	SignedHeaders []string
	Timestamp     string
	// RefuseSignatures refuses every signature, as CMS does for a client
	// whose AK/SK or clock is wrong: a replayed capture of such a tenant
	// refuses whatever keys the simulator was given.
	RefuseSignatures bool
	// RefuseClient answers every CMS call HTTP 403, as CMS does for a
	// client outside the tenant's IP whitelist, before looking at the
	// signature ([Sim.SetCMSClientRefused], POST /cecsim/cms).
	RefuseClient bool
}

// The C2 timestamp precisions of CMS.Timestamp.
const (
	C2Seconds = "seconds"
	C2Millis  = "milliseconds"
)

func (c CMS) withDefaults() CMS {
	if c.AK == "" {
		c.AK = "cms-ak"
	}
	if c.SK == "" {
		c.SK = "cms-sk"
	}
	if c.CCID == 0 {
		c.CCID = 1
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = 5 * time.Minute
	}
	return c
}

func (c CMS) validate(bad func(field, why string)) {
	if c.CCID < 1 || c.CCID > 65535 {
		bad("CMS.CCID", "must lie in 1..65535")
	}
	if c.ClockSkew < 0 || c.Lag < 0 {
		bad("CMS.ClockSkew/Lag", "must not be negative")
	}
	if strings.Contains(c.AK, "/") {
		bad("CMS.AK", "must not contain '/'")
	}
	if c.Timestamp != "" && c.Timestamp != C2Seconds && c.Timestamp != C2Millis {
		bad("CMS.Timestamp", "must be seconds or milliseconds")
	}
	if len(c.SignedHeaders) > 0 && !slices.Contains(c.SignedHeaders, "host") {
		bad("CMS.SignedHeaders", "must include host")
	}
}
