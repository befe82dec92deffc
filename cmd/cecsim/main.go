package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run parses args, starts the simulator and serves until ctx ends. ready, if
// non-nil, receives the simulator once it listens (tests use it).
func run(ctx context.Context, args []string, stdout io.Writer) error {
	return runWith(ctx, args, stdout, nil)
}

func runWith(ctx context.Context, args []string, stdout io.Writer, ready func(*cecsim.Sim)) error {
	fs := flag.NewFlagSet("cecsim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	agents := fs.Int("agents", 200, "roster size")
	seed := fs.Int64("seed", 1, "workload seed")
	auth := fs.String("auth", "dynamic", "gateway auth mode: static or dynamic")
	perVDN := fs.Int("agents-per-vdn", 0, "agents per VDN (0 = one VDN)")
	hold := fs.Duration("long-poll-hold", 10*time.Second, "hold of an empty event poll")
	noPoll := fs.Duration("no-poll-timeout", 120*time.Second, "session reaped after this long without a request")
	guidInterval := fs.Duration("guid-interval", 60*time.Second, "dynamic GUID rotation period")
	guidTimeout := fs.Duration("guid-timeout", 120*time.Second, "validity of a superseded GUID")
	calls := fs.Float64("calls-per-agent-hour", 30, "call arrivals per signed-in agent per hour")
	noWorkload := fs.Bool("static-world", false, "disable the workload (world changes only by scripts)")
	loose := fs.Bool("loose-types", false, "randomly swap numbers and strings where the vendor is loose")
	replay := fs.String("replay", "", "capture directory (cecbridge probe --capture): take gap switches, example bodies and the world's shape from it; implies -static-world")
	cmsAK := fs.String("cms-ak", "cms-ak", "CMS C2 access key")
	cmsSK := fs.String("cms-sk", "cms-sk", "CMS C2 secret key")
	cmsCC := fs.Int("cms-cc-id", 1, "CMS call center ID requests must name")
	cmsLag := fs.Duration("cms-lag", 0, "how far CMS data trails the gateway view")
	cmsSkew := fs.Duration("cms-clock-skew", 5*time.Minute, "accepted C2 timestamp skew either way")
	cmsOff := fs.Bool("cms-unlicensed", false, "every CMS call answers 0100003 (switch at runtime: POST /cecsim/cms)")
	cmsNoClient := fs.Bool("cms-refuse-client", false, "every CMS call answers HTTP 403, as for a host outside the IP whitelist (switch at runtime: POST /cecsim/cms)")
	cmsNoTotal := fs.Bool("cms-no-totalagentstate", false, "totalagentstate answers 404, as on CTI 3.6")
	cmsHeaders := fs.String("cms-signed-headers", "", `the only C2 signed-header set accepted, e.g. "content-length;content-type;host" (default: any that signs host)`)
	cmsStamp := fs.String("cms-timestamp", "", "the only C2 timestamp precision accepted: seconds or milliseconds (default: either)")
	debug := fs.Bool("debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level}))

	cfg := cecsim.Config{
		Seed: *seed, Agents: *agents, AgentsPerVDN: *perVDN, Addr: *addr,
		LongPollHold: *hold, NoPollTimeout: *noPoll,
		GUIDInterval: *guidInterval, GUIDTimeout: *guidTimeout,
		LooseTypes: *loose, Logger: log,
		CMS: cecsim.CMS{
			AK: *cmsAK, SK: *cmsSK, CCID: *cmsCC, Lag: *cmsLag, ClockSkew: *cmsSkew,
			NotLicensed: *cmsOff, RefuseClient: *cmsNoClient, NoTotalAgentState: *cmsNoTotal, Timestamp: *cmsStamp,
		},
		Workload: cecsim.Workload{
			Enabled:                 !*noWorkload,
			CallsPerAgentHour:       *calls,
			SignInOutPerHour:        float64(*agents) * 2,
			SoftphoneChangesPerHour: float64(*agents) / 2,
			PhoneFlapsPerHour:       float64(*agents) / 2,
			RosterChangesPerHour:    60,
		},
	}
	if *cmsHeaders != "" {
		cfg.CMS.SignedHeaders = strings.Split(*cmsHeaders, ";")
	}
	switch *auth {
	case "dynamic":
		cfg.AuthMode = cecsim.AuthDynamic
	case "static":
		cfg.AuthMode = cecsim.AuthStatic
	default:
		return fmt.Errorf("cecsim: -auth must be static or dynamic, not %q", *auth)
	}
	var rp cecsim.Replay
	if *replay != "" {
		var err error
		if rp, err = cecsim.ReadReplay(*replay); err != nil {
			return err
		}
		if cfg, err = rp.Apply(cfg); err != nil {
			return err
		}
		cfg.Workload.Enabled = false // the captured world, as it was
		*agents = cfg.Agents
		if rp.AuthMode != "" {
			*auth = rp.AuthMode
		}
	}
	sim, err := cecsim.New(cfg)
	if err != nil {
		return err
	}
	if err := sim.PlaceCalls(rp.Calls); err != nil {
		return err
	}
	if err := sim.Start(ctx); err != nil {
		return err
	}
	if *replay != "" {
		log.Info("replaying a capture", "dir", *replay, "source", rp.Source)
	}
	first := cfg.FirstWorkNo
	if first == 0 {
		first = 1001
	}
	log.Info("cecsim ready",
		"url", sim.URL(),
		"app_key", "app-key", "app_secret", "app-secret", // test values, printed on purpose
		"agent_password", "agent-pass",
		"cms_ak", *cmsAK, "cms_sk", *cmsSK, "cms_cc_id", *cmsCC, "cms_lag", *cmsLag,
		"agents", fmt.Sprintf("%d..%d", first, first+*agents-1),
		"auth", *auth)
	log.Info("paths",
		"token", "POST /apigovernance/api/oauth/tokenByAkSk",
		"fabric", "/apiaccess/CC-Management/v1/queryAgentInfo, /apiaccess/CC-Management/v2/mobileAgent/queryPhone, /apiaccess/rest/CC-Management/v1/queryAgentInfoByAccount",
		"gateway", "/agentgateway/resource/{onlineagent,agentevent,calldata}/...",
		"cms", "POST /rest/cmsapp/v1/openapi/{agentgroup/queryagentcalls,agentgroup/agentstatusinfobyagentids,vdn/totalagentstate} (C2 signed)",
		"control", "/cecsim/{truth,faults,script,revoke-tokens,kick/{id},invalidate-guid/{id},counters,agents/{workNo},phones,cms}")
	if ready != nil {
		ready(sim)
	}
	<-ctx.Done()
	log.Info("shutting down")
	return sim.Close()
}
