package probe

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec"
)

// Exchange is one request the probe made and the answer it got, scrubbed:
// the unit of a capture.
type Exchange struct {
	Seq      int      `json:"seq"`
	Check    string   `json:"check"`    // the check that made the request
	Endpoint string   `json:"endpoint"` // the client's name for the interface
	Method   string   `json:"method"`
	Path     string   `json:"path"`
	Request  Message  `json:"request"`
	Response *Message `json:"response,omitempty"` // nil when no answer arrived
	Error    string   `json:"error,omitempty"`    // why no (whole) answer arrived
	Elapsed  float64  `json:"elapsed_ms"`
	// Outcome is what the bridge's client made of the answer (its
	// Observer's outcome class: ok, vendor, unauthorized, ...).
	Outcome string `json:"outcome,omitempty"`
}

// Message is one side of an exchange.
type Message struct {
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the JSON body, scrubbed, or a JSON string holding a body
	// that was not JSON.
	Body json.RawMessage `json:"body,omitempty"`
}

// recorder sees every exchange of the probe's client: as its transport
// (request and answer) and as its cec.Observer (what the client made of
// the answer, and how long it took). It keeps only scrubbed copies.
type recorder struct {
	next  http.RoundTripper
	scrub *scrubber

	mu        sync.Mutex
	check     string
	exchanges []Exchange
	stats     map[string]*endpointStats
}

type endpointStats struct {
	durations []time.Duration
	outcomes  map[string]int
}

// maxRecordedBody bounds what the recorder reads of an answer, as the
// client bounds what it accepts.
const maxRecordedBody = 8 << 20

func newRecorder(scrub *scrubber) *recorder {
	return &recorder{scrub: scrub, stats: map[string]*endpointStats{}}
}

func (r *recorder) wrap(next http.RoundTripper) http.RoundTripper {
	r.next = next
	return r
}

func (r *recorder) setCheck(name string) {
	r.mu.Lock()
	r.check = name
	r.mu.Unlock()
}

// keptRequestHeaders and keptResponseHeaders are recorded (scrubbed);
// others are left out.
var (
	keptRequestHeaders  = []string{"Content-Type", "X-Token-Expire", "Authorization", "X-App-Key", "Guid"}
	keptResponseHeaders = []string{"Content-Type", "Set-Guid", "Retry-After"}
)

func (r *recorder) headers(h http.Header, keep []string) map[string]string {
	out := map[string]string{}
	for _, k := range keep {
		v := h.Get(k)
		switch k {
		case "":
		case "Set-Guid", "Guid":
			// The stand-in shows which GUID was in use, not the GUID.
			v = r.scrub.setGUID(v)
		case "Authorization":
			v = r.authorization(v)
		case "X-App-Key":
			if v != "" {
				v = redacted
			}
		default:
			v = r.scrub.clean(v)
		}
		if v == "" {
			continue
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// authorization records an Authorization header by its form: a bearer
// token is cut out; of a C2 signature
// (auth-v2/AK/timestamp/signed-headers/signature) the timestamp and the
// signed headers are kept, since they show which variant was tried.
func (r *recorder) authorization(v string) string {
	if v == "" {
		return ""
	}
	if parts := strings.Split(v, "/"); len(parts) == 5 && parts[0] == "auth-v2" {
		return strings.Join([]string{parts[0], redacted, r.scrub.clean(parts[2]), r.scrub.clean(parts[3]), redacted}, "/")
	}
	if scheme, _, ok := strings.Cut(v, " "); ok {
		return r.scrub.clean(scheme) + " " + redacted
	}
	return redacted
}

// RoundTrip implements http.RoundTripper.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			reqBody, _ = io.ReadAll(io.LimitReader(rc, maxRecordedBody))
			_ = rc.Close()
		}
	}
	ex := Exchange{
		Endpoint: cec.EndpointOf(req.Method, req.URL.Path),
		Method:   req.Method,
		Path:     req.URL.Path,
		Request:  Message{Headers: r.headers(req.Header, keptRequestHeaders), Body: r.scrub.body(reqBody)},
	}
	start := time.Now()
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		ex.Error = "no answer"
		ex.Elapsed = ms(time.Since(start))
		r.add(ex)
		return nil, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxRecordedBody+1))
	_ = resp.Body.Close()
	ex.Elapsed = ms(time.Since(start))
	// Set-GUID first: the scrubber then knows the GUID if the body repeats it.
	hdr := r.headers(resp.Header, keptResponseHeaders)
	ex.Response = &Message{Status: resp.StatusCode, Headers: hdr, Body: r.scrub.body(body)}
	if rerr != nil {
		ex.Error = "answer cut short"
	}
	r.add(ex)
	resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
	return resp, nil
}

// errReader ends a replayed body with the error the original ended with.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *recorder) add(ex Exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ex.Seq = len(r.exchanges) + 1
	ex.Check = r.check
	r.exchanges = append(r.exchanges, ex)
}

// ObserveRequest implements cec.Observer: the outcome goes on the latest
// exchange with that endpoint (the probe makes one request at a time),
// the duration into the endpoint's figures.
func (r *recorder) ObserveRequest(endpoint, outcome string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.exchanges) - 1; i >= 0; i-- {
		if r.exchanges[i].Endpoint == endpoint {
			if r.exchanges[i].Outcome == "" {
				r.exchanges[i].Outcome = outcome
			}
			break
		}
	}
	st := r.stats[endpoint]
	if st == nil {
		st = &endpointStats{outcomes: map[string]int{}}
		r.stats[endpoint] = st
	}
	st.outcomes[outcome]++
	if d > 0 {
		st.durations = append(st.durations, d)
	}
}

// last returns the latest exchange with endpoint made by check.
func (r *recorder) last(check, endpoint string) (Exchange, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.exchanges) - 1; i >= 0; i-- {
		if ex := r.exchanges[i]; ex.Endpoint == endpoint && ex.Check == check {
			return ex, true
		}
	}
	return Exchange{}, false
}

// latency summarises what each endpoint took and how it answered.
func (r *recorder) latency() []Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Latency
	for ep, st := range r.stats {
		l := Latency{Endpoint: ep, Outcomes: map[string]int{}}
		for o, n := range st.outcomes {
			l.Requests += n
			l.Outcomes[o] = n
		}
		l.Throttled = st.outcomes["rate_limited"]
		if len(st.durations) > 0 {
			ds := slices.Clone(st.durations)
			slices.Sort(ds)
			l.P50 = ms(ds[len(ds)/2])
			l.Max = ms(ds[len(ds)-1])
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Latency) int {
		if a.Endpoint < b.Endpoint {
			return -1
		}
		if a.Endpoint > b.Endpoint {
			return 1
		}
		return 0
	})
	return out
}

// writeCapture writes the capture directory: every exchange, the report
// and what the simulator needs to replay the tenant.
func (r *recorder) writeCapture(dir string, files map[string]any) error {
	exDir := filepath.Join(dir, "exchanges")
	if err := os.MkdirAll(exDir, 0o750); err != nil {
		return fmt.Errorf("probe: capture: %w", err)
	}
	r.mu.Lock()
	exchanges := slices.Clone(r.exchanges)
	r.mu.Unlock()
	write := func(path string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("probe: capture: %w", err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o640); err != nil {
			return fmt.Errorf("probe: capture: %w", err)
		}
		return nil
	}
	for _, ex := range exchanges {
		name := fmt.Sprintf("%04d-%s.json", ex.Seq, cmp.Or(ex.Endpoint, "unknown"))
		if err := write(filepath.Join(exDir, name), ex); err != nil {
			return err
		}
	}
	for name, v := range files {
		if err := write(filepath.Join(dir, name), v); err != nil {
			return err
		}
	}
	return nil
}
