package probe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// Check is one question put to the tenant. Run reads what earlier checks
// learned from the Probe, records what it learns for later ones, and
// returns its report rows (usually one). A check with nothing to ask (not
// configured, or an earlier check failed) returns a skip row saying why.
// Adding a check is writing one such function and listing it in checks.
type Check struct {
	Name string
	Run  func(ctx context.Context, p *Probe) []Row
}

// checks run in this order; later ones use what earlier ones learned.
var checks = []Check{
	{"token", checkToken},
	{"bad token", checkBadToken},
	{"roster", checkRoster},
	{"phones", checkPhones},
	{"account", checkAccount},
	{"cms", checkCMS},
	{"sign-in", checkSignIn},
	{"event poll", checkEventPoll},
	{"calls: idle agent", checkIdleAgent},
	{"calls: scan", checkScan},
	{"calls: in a call", checkInCall},
	{"cms: agrees with gateway", checkCMSAgrees},
	{"calls: other VDN", checkOtherVDN},
	{"calls: unknown agent", checkUnknownAgent},
	{"GUID", checkGUID},
	{"sign-out", checkSignOut},
	{"expired token", checkExpiredToken},
	{"throttling", checkThrottling},
}

// Options tune a probe run. Zero values take the defaults.
type Options struct {
	// Scan is how many agents the allcallinfoEx scan asks about
	// (default 20), looking for one in a call.
	Scan int
	// GUIDWatch is how long after sign-in the probe keeps polling to see
	// a dynamic GUID rotate (default 0: only while the other checks run;
	// Slow makes it 70s, past the vendor's default 60s rotation).
	GUIDWatch time.Duration
	// Slow also waits out a short token to see how an expired one is
	// answered.
	Slow bool
	// SlowToken is the lifetime asked for in slow mode (default 60s).
	SlowToken time.Duration
	// Progress receives one line per check as it runs; nil discards.
	Progress io.Writer
	// Logger receives the client's debug log; nil discards.
	Logger *slog.Logger
}

// Probe is one read-only run against a tenant.
type Probe struct {
	tc   configs.Tenant
	opts Options
	// monitors route an agent to the monitor that may ask about it, as
	// the bridge does (sessions are not part of it: only the first
	// monitor signs in).
	monitors []poller.Monitor
	client   *cec.Client
	rec      *recorder
	scrub    *scrubber
	replay   cecsim.Replay
	report   Report

	// What the checks learned, for later checks.
	noToken       bool  // the token check got none: API Fabric queries are not asked
	roster        []int // sorted work numbers
	knownAccount  string
	accountAgent  int
	session       *cec.Session // signed in between sign-in and sign-out
	signedInAt    time.Time
	rotatedAfter  time.Duration // when a new GUID first arrived; 0 if none
	plainPollAt   time.Duration // the last poll answer before that without one
	idleKind      string        // "empty", "omit" or "code"
	idleCode      string
	inCallAgent   int
	inCallIDs     []string
	scannedAgents []int
	cmsCalls      map[int][]string // agents in a call, as CMS named them (nil: CMS did not answer)
}

// New prepares a probe of tenant tc. Nothing goes on the wire until Run.
func New(tc configs.Tenant, opts Options) (*Probe, error) {
	if len(tc.Monitors) == 0 {
		return nil, fmt.Errorf("probe: tenant %s has no monitoring agent", tc.Name)
	}
	if opts.Scan <= 0 {
		opts.Scan = 20
	}
	if opts.Slow && opts.GUIDWatch == 0 {
		opts.GUIDWatch = 70 * time.Second
	}
	if opts.SlowToken <= 0 {
		opts.SlowToken = time.Minute
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Probe{tc: tc, opts: opts, scrub: newScrubber()}
	for _, m := range tc.Monitors {
		covers, err := m.Covers()
		if err != nil {
			return nil, fmt.Errorf("probe: monitor %d: %w", m.AgentID, err)
		}
		p.monitors = append(p.monitors, poller.Monitor{Covers: covers})
	}
	p.rec = newRecorder(p.scrub)
	p.scrub.addSecret(tc.AppSecret.Reveal())
	p.scrub.addSecret(tc.AppKey)
	for _, m := range tc.Monitors {
		p.scrub.addSecret(m.Password.Reveal())
	}
	if tc.CMS != nil {
		p.scrub.addSecret(tc.CMS.AK.Reveal())
		p.scrub.addSecret(tc.CMS.SK.Reveal())
	}
	ccfg := app.ClientConfig(tc)
	ccfg.WrapTransport, ccfg.Observer, ccfg.Logger = p.rec.wrap, p.rec, opts.Logger
	client, err := cec.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	p.client = client
	p.replay.Source = "cecbridge probe of tenant " + tc.Name
	return p, nil
}

// Run asks every check in turn and returns the report. It signs out
// whatever it signed in, even when ctx ends early.
func (p *Probe) Run(ctx context.Context) *Report {
	start := time.Now()
	p.report = Report{Tenant: p.tc.Name, Started: start.UTC()}
	defer p.signOutLeftover()
	for _, c := range checks {
		if ctx.Err() != nil {
			p.report.Checks = append(p.report.Checks, Row{Check: c.Name, Status: StatusSkip, Answered: "not asked: the probe was interrupted"})
			continue
		}
		fmt.Fprintf(p.opts.Progress, "probe %s: %s ...", p.tc.Name, c.Name)
		p.rec.setCheck(c.Name)
		t0 := time.Now()
		rows := c.Run(ctx, p)
		for i := range rows {
			if rows[i].Check == "" {
				rows[i].Check = c.Name
			}
		}
		p.report.Checks = append(p.report.Checks, rows...)
		var sts []string
		for _, r := range rows {
			sts = append(sts, string(r.Status))
		}
		fmt.Fprintf(p.opts.Progress, " %v (%s)\n", sts, time.Since(t0).Round(time.Millisecond))
	}
	p.rec.setCheck("")
	p.report.Latency = p.rec.latency()
	p.report.Duration = time.Since(start).Seconds()
	p.report.finish()
	return &p.report
}

func (p *Probe) signOutLeftover() {
	if p.session == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.session.SignOut(ctx)
	p.session = nil
}

// Replay is what the simulator needs to serve this tenant's behaviour
// (cecsim --replay); complete once Run returned.
func (p *Probe) Replay() cecsim.Replay { return p.replay }

// WriteCapture writes every exchange of the run, scrubbed, with the report
// and the replay, to dir.
func (p *Probe) WriteCapture(dir string) error {
	return p.rec.writeCapture(dir, map[string]any{
		"report.json":     &p.report,
		cecsim.ReplayFile: p.replay,
	})
}

// Exchanges returns the scrubbed exchanges recorded so far.
func (p *Probe) Exchanges() []Exchange {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	return slices.Clone(p.rec.exchanges)
}
