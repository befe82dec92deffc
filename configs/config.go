package configs

import (
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// Bridge is the whole configuration of one cecbridge process.
type Bridge struct {
	// Instance names this bridge process: the lease holder, the heartbeats.
	// Keep it stable across restarts and distinct between instances; empty
	// means the host name.
	Instance  string    `yaml:"instance"`
	NATS      NATS      `yaml:"nats"`
	Streams   Streams   `yaml:"streams"`
	Publisher Publisher `yaml:"publisher"`
	Lookup    Lookup    `yaml:"lookup"`
	Lease     Lease     `yaml:"lease"`
	HTTP      HTTP      `yaml:"http"`
	Log       Log       `yaml:"log"`
	Tenants   []Tenant  `yaml:"tenants"`
}

// NATS says how to reach the NATS servers.
type NATS struct {
	URLs           []string      `yaml:"urls"`
	Name           string        `yaml:"name"`
	CredsFile      string        `yaml:"creds_file"`
	NKeySeedFile   string        `yaml:"nkey_seed_file"`
	User           string        `yaml:"user"`
	Password       Secret        `yaml:"password"`
	PasswordFile   string        `yaml:"password_file"`
	Token          Secret        `yaml:"token"`
	TokenFile      string        `yaml:"token_file"`
	TLS            TLS           `yaml:"tls"`
	ReconnectWait  time.Duration `yaml:"reconnect_wait"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// TLS configures a TLS client.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Streams configures the JetStream streams.
type Streams struct {
	Events   string `yaml:"events"`
	State    string `yaml:"state"`
	Replicas int    `yaml:"replicas"`
	// Placement pins the streams' (and the lease bucket's) replicas to a
	// cluster and to servers carrying every tag; empty lets JetStream
	// choose.
	Placement       Placement     `yaml:"placement"`
	MaxAge          time.Duration `yaml:"max_age"`
	MaxBytes        int64         `yaml:"max_bytes"`
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// UpdateExisting lets the bridge change streams that exist to these
	// settings; off, it reports a difference and leaves them as they are.
	UpdateExisting bool `yaml:"update_existing"`
}

// Placement says where JetStream puts a stream's replicas: in the named
// cluster, on servers that carry all of Tags (server_tags in the NATS
// server's configuration).
type Placement struct {
	Cluster string   `yaml:"cluster"`
	Tags    []string `yaml:"tags"`
}

// Publisher configures event publishing and the outage buffer.
type Publisher struct {
	MaxInFlight   int           `yaml:"max_in_flight"`
	AckTimeout    time.Duration `yaml:"ack_timeout"`
	BufferEvents  int           `yaml:"buffer_events"`
	SpoolDir      string        `yaml:"spool_dir"`
	SpoolMaxBytes int64         `yaml:"spool_max_bytes"`
	FlushTimeout  time.Duration `yaml:"flush_timeout"`
}

// Lookup configures the request/reply lookup service.
type Lookup struct {
	Disabled   bool   `yaml:"disabled"`
	QueueGroup string `yaml:"queue_group"`
}

// Lease configures the election that lets several bridge instances run
// while only one polls each tenant.
type Lease struct {
	Disabled bool          `yaml:"disabled"`
	Bucket   string        `yaml:"bucket"` // JetStream KV bucket
	TTL      time.Duration `yaml:"ttl"`    // a term without renewal lasts this long
	// Replicas of the bucket; 0 takes streams.replicas, so that leases
	// survive whatever the streams survive.
	Replicas int `yaml:"replicas"`
}

// HTTP configures the metrics and health listener.
type HTTP struct {
	Listen string `yaml:"listen"` // "" disables it
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto (tint on a terminal, JSON otherwise), text, json
}

// Tenant is one CEC tenant space: its endpoints, credentials, monitoring
// agents and schedules.
type Tenant struct {
	Name          string        `yaml:"name"`
	FabricURL     string        `yaml:"fabric_url"`
	TokenURL      string        `yaml:"token_url"`
	GatewayURL    string        `yaml:"gateway_url"`
	AppKey        string        `yaml:"app_key"`
	AppSecret     Secret        `yaml:"app_secret"`
	AppSecretFile string        `yaml:"app_secret_file"`
	TokenLifetime time.Duration `yaml:"token_lifetime"`
	Timeout       time.Duration `yaml:"request_timeout"`
	TLS           TLS           `yaml:"tls"`
	// Budget caps upstream query requests per second (0 = unlimited); Burst
	// is how many may go at once.
	Budget      float64  `yaml:"budget"`
	Burst       int      `yaml:"burst"`
	NoCallCodes []string `yaml:"no_call_codes"`
	// Weight is the tenant's share of an instance's polling work when
	// tenants are spread over several instances (default 1; give a
	// 60,000-agent tenant more than a 50-agent one).
	Weight      int       `yaml:"weight"`
	Monitors    []Monitor `yaml:"monitors"`
	Intervals   Intervals `yaml:"intervals"`
	Concurrency int       `yaml:"concurrency"`
	// CMS, when present, gives access to the CC-CMS monitoring interfaces.
	CMS *CMS `yaml:"cms,omitempty"`
}

// Monitor is a monitoring agent the bridge signs in to the CC-Gateway as.
type Monitor struct {
	AgentID      int    `yaml:"agent_id"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	Phone        string `yaml:"phone"`
	// WorkNos limits the agents this monitor asks about ("1001-2000,3000");
	// empty means all. The vendor answers only within the monitor's VDN.
	WorkNos string `yaml:"work_nos"`
}

// Intervals are a tenant's polling schedules.
type Intervals struct {
	Sweep        time.Duration `yaml:"sweep"` // whole-roster CMS sweep, with a cms block
	Calls        time.Duration `yaml:"calls"`
	Idle         time.Duration `yaml:"idle"`
	ActiveWindow time.Duration `yaml:"active_window"`
	Roster       time.Duration `yaml:"roster"`
	Phones       time.Duration `yaml:"phones"`
	Heartbeat    time.Duration `yaml:"heartbeat"`
}

// Default returns a configuration with every default filled in and no
// tenant.
func Default() Bridge {
	var b Bridge
	b.setDefaults()
	return b
}

func (b *Bridge) setDefaults() {
	setIf(&b.NATS.Name, "cecbridge")
	if len(b.NATS.URLs) == 0 {
		b.NATS.URLs = []string{"nats://127.0.0.1:4222"}
	}
	setIf(&b.NATS.ReconnectWait, 2*time.Second)
	setIf(&b.NATS.ConnectTimeout, 5*time.Second)
	setIf(&b.Streams.Events, schemas.EventsStream)
	setIf(&b.Streams.State, schemas.StateStream)
	setIf(&b.Streams.Replicas, 1)
	setIf(&b.Streams.MaxAge, 7*24*time.Hour)
	setIf(&b.Streams.MaxBytes, -1)
	setIf(&b.Streams.DuplicateWindow, 2*time.Minute)
	setIf(&b.Publisher.MaxInFlight, 1024)
	setIf(&b.Publisher.AckTimeout, 5*time.Second)
	setIf(&b.Publisher.BufferEvents, 100000)
	setIf(&b.Publisher.SpoolMaxBytes, 256<<20)
	setIf(&b.Publisher.FlushTimeout, 10*time.Second)
	setIf(&b.Lookup.QueueGroup, "cecbridge")
	setIf(&b.Lease.Bucket, "cecbridge_leases")
	setIf(&b.Lease.TTL, 15*time.Second)
	setIf(&b.Lease.Replicas, b.Streams.Replicas)
	setIf(&b.Log.Level, "info")
	setIf(&b.Log.Format, "auto")
	for i := range b.Tenants {
		t := &b.Tenants[i]
		setIf(&t.TokenLifetime, 10*time.Minute)
		setIf(&t.Timeout, 10*time.Second)
		setIf(&t.Concurrency, 64)
		setIf(&t.Weight, 1)
		setIf(&t.Intervals.Sweep, time.Second)
		setIf(&t.Intervals.Calls, time.Second)
		setIf(&t.Intervals.Idle, 15*time.Second)
		setIf(&t.Intervals.ActiveWindow, 10*time.Minute)
		setIf(&t.Intervals.Roster, 30*time.Second)
		setIf(&t.Intervals.Phones, 30*time.Second)
		setIf(&t.Intervals.Heartbeat, 30*time.Second)
		if t.Burst == 0 && t.Budget > 0 {
			t.Burst = max(1, int(t.Budget/10))
		}
		if t.CMS != nil {
			t.CMS.setDefaults()
		}
	}
}

func setIf[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// WithDefaults returns b with every unset option at its default, for
// configurations built in code rather than loaded from a file.
func WithDefaults(b Bridge) Bridge {
	b.setDefaults()
	return b
}
