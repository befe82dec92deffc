package cecsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint names used by faults and counters.
var endpointNames = []string{
	"token", "queryAgentInfo", "queryPhone", "queryAgentInfoByAccount",
	"login", "loginex", "forcelogin", "logout", "agentevent", "updateGuid",
	"allcallinfoEx", "agentstatus", "callinfobycallid",
	epQueryAgentCalls, epAgentStates, epTotalAgentState,
}

// Sim is one simulated CEC tenant. Its methods are safe for concurrent use.
type Sim struct {
	cfg Config
	log *slog.Logger

	mu         sync.RWMutex // guards the world, the sessions and the workload
	rng        *rand.Rand   // world and workload draws, under mu
	callRng    *rand.Rand   // call status and direction draws, under mu
	agents     map[int32]*agent
	roster     []int32 // every agent, unordered (O(1) random pick)
	signed     []int32 // signed-in agents, unordered
	byAccount  map[string]int32
	nextWorkNo int
	phones     map[string]*phone
	phoneList  []*phone // ordered by id: queryPhone's paging order
	phoneSeq   int64
	calls      map[string]*call
	callSeq    uint64
	truth      []Change
	truthSeq   uint64
	sessions   map[int32]*session
	wl         workloadState

	tokMu  sync.Mutex
	tokens map[string]time.Time // token -> expiry

	faultMu  sync.Mutex
	faults   []*activeFault
	faultSeq int
	faultRng *rand.Rand

	looseMu  sync.Mutex
	looseRng *rand.Rand

	cms           *cmsView
	cmsLag        atomic.Int64 // time.Duration
	cmsUnlicensed atomic.Bool
	cmsNoClient   atomic.Bool // every CMS call answers 403

	counters map[string]*atomic.Int64
	handler  http.Handler

	startOnce sync.Once
	closeOnce sync.Once
	done      chan struct{} // closed by Close
	srv       *http.Server
	url       string
	wg        sync.WaitGroup

	stopWorkload sync.Once
	workloadStop chan struct{} // closed by StopWorkload
	workloadDone chan struct{} // closed when the workload goroutine ends
}

// New validates cfg and builds the initial world. It opens no listener: use
// [Sim.Handler] with a server of your own, or [Sim.Start].
func New(cfg Config) (*Sim, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	seed := uint64(cfg.Seed)
	s := &Sim{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "cecsim"),
		rng:       rand.New(rand.NewPCG(seed, 0x5eed)),
		callRng:   rand.New(rand.NewPCG(seed, 0xca11)),
		agents:    make(map[int32]*agent, cfg.Agents),
		roster:    make([]int32, 0, cfg.Agents),
		byAccount: make(map[string]int32, cfg.Agents),
		phones:    make(map[string]*phone, cfg.Agents),
		phoneList: make([]*phone, 0, cfg.Agents),
		calls:     make(map[string]*call),
		sessions:  make(map[int32]*session),
		tokens:    make(map[string]time.Time),
		faultRng:  rand.New(rand.NewPCG(seed, 0xfa17)),
		looseRng:  rand.New(rand.NewPCG(seed, 0x1005e)),
		counters:  make(map[string]*atomic.Int64, len(endpointNames)),
		done:      make(chan struct{}),

		workloadStop: make(chan struct{}),
		workloadDone: make(chan struct{}),
	}
	for _, n := range endpointNames {
		s.counters[n] = new(atomic.Int64)
	}
	for i := range cfg.Agents {
		wn := cfg.FirstWorkNo + i
		// About one agent in ten has no business account, as in the seed example.
		withAccount := s.rng.IntN(10) != 0
		signedIn := s.rng.Float64() < cfg.Workload.SignedInShare
		s.addAgentLocked(wn, withAccount, signedIn, false)
	}
	s.initWorkloadLocked()
	s.cms = s.newCMSViewLocked()
	s.cmsLag.Store(int64(cfg.CMS.Lag))
	s.cmsUnlicensed.Store(cfg.CMS.NotLicensed)
	s.cmsNoClient.Store(cfg.CMS.RefuseClient)
	s.handler = s.routes()
	return s, nil
}

// Handler returns the one handler serving tokenByAkSk, the API Fabric, the
// CC-Gateway and the /cecsim/ control API.
func (s *Sim) Handler() http.Handler { return s.handler }

// Start listens on Config.Addr and serves in the background; it returns once
// the listener is open. The workload (if enabled) and the session reaper run
// until Close is called or ctx is cancelled. Start may be called once.
func (s *Sim) Start(ctx context.Context) error {
	err := errors.New("cecsim: already started")
	s.startOnce.Do(func() {
		var lc net.ListenConfig
		ln, lerr := lc.Listen(ctx, "tcp", s.cfg.Addr)
		if lerr != nil {
			err = fmt.Errorf("cecsim: listen: %w", lerr)
			return
		}
		err = nil
		s.url = "http://" + ln.Addr().String()
		s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
		s.wg.Add(3)
		go func() {
			defer s.wg.Done()
			if serr := s.srv.Serve(ln); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
				s.log.Error("serve failed", "err", serr)
			}
		}()
		go func() { defer s.wg.Done(); s.runWorkload(ctx) }()
		go func() { defer s.wg.Done(); s.runReaper(ctx) }()
		go func() {
			select {
			case <-ctx.Done():
				_ = s.Close()
			case <-s.done:
			}
		}()
		s.log.Info("simulator listening", "url", s.url)
	})
	return err
}

// URL returns the base URL (http://host:port) once Start succeeded, else "".
func (s *Sim) URL() string { return s.url }

// Close stops the server, the workload and the reaper, and releases held
// long polls. It is idempotent.
func (s *Sim) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if cerr := s.srv.Shutdown(ctx); cerr != nil {
				err = fmt.Errorf("cecsim: shutdown: %w", cerr)
				_ = s.srv.Close()
			}
		}
		s.wg.Wait()
	})
	return err
}

// Counters returns the number of requests served per endpoint name.
func (s *Sim) Counters() map[string]int64 {
	out := make(map[string]int64, len(s.counters))
	for k, v := range s.counters {
		out[k] = v.Load()
	}
	return out
}

// loose returns v as a number, or (LooseTypes, seeded coin) as its decimal string.
func (s *Sim) loose(v int64) any {
	if !s.cfg.LooseTypes {
		return v
	}
	s.looseMu.Lock()
	flip := s.looseRng.IntN(2) == 0
	s.looseMu.Unlock()
	if flip {
		return fmt.Sprint(v)
	}
	return v
}

// looseStr returns a numeric string as is, or (LooseTypes, seeded coin) as a number.
func (s *Sim) looseStr(v string) any {
	if !s.cfg.LooseTypes {
		return v
	}
	var n int64
	if _, err := fmt.Sscan(v, &n); err != nil || fmt.Sprint(n) != v {
		return v
	}
	s.looseMu.Lock()
	flip := s.looseRng.IntN(2) == 0
	s.looseMu.Unlock()
	if flip {
		return n
	}
	return v
}
