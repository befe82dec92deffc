package cecsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// FaultKind is the kind of misbehaviour a [Fault] injects.
type FaultKind int

// The fault kinds.
const (
	FaultLatency    FaultKind = iota + 1 // sleep Latency before answering
	FaultHTTPStatus                      // answer Status (default 502) with an HTML body
	FaultGarbled                         // answer normally but with invalid JSON
	FaultTruncated                       // cut the body mid-way and drop the connection
	FaultThrottle                        // Fabric, CMS: 429 + Retry-After: 1; Gateway: retcode 000-007
	FaultVendorCode                      // Gateway retcode / Fabric retCode / CMS resultCode = Code, inside HTTP 200
)

var faultKindNames = map[FaultKind]string{
	FaultLatency: "latency", FaultHTTPStatus: "http_status", FaultGarbled: "garbled",
	FaultTruncated: "truncated", FaultThrottle: "throttle", FaultVendorCode: "vendor_code",
}

// String returns the snake_case name used in the control API.
func (k FaultKind) String() string {
	if n, ok := faultKindNames[k]; ok {
		return n
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText encodes the kind by name.
func (k FaultKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText accepts the names of MarshalText.
func (k *FaultKind) UnmarshalText(b []byte) error {
	for kind, n := range faultKindNames {
		if n == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("%w: fault kind %q", ErrBadValue, b)
}

// Fault describes injected misbehaviour. Endpoint "" matches every
// endpoint. Probability 0 means always; Count 0 means unlimited, else the
// fault retires after firing Count times.
type Fault struct {
	Endpoint    string        `json:"endpoint,omitempty"`
	Kind        FaultKind     `json:"kind"`
	Status      int           `json:"status,omitempty"`
	Code        string        `json:"code,omitempty"`
	Latency     time.Duration `json:"latency,omitempty"`
	Probability float64       `json:"probability,omitempty"`
	Count       int           `json:"count,omitempty"`
}

// UnmarshalJSON accepts latency as a Go duration string ("250ms") or as
// nanoseconds.
func (f *Fault) UnmarshalJSON(b []byte) error {
	type plain Fault
	var aux struct {
		plain
		Latency json.RawMessage `json:"latency,omitempty"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return fmt.Errorf("cecsim: fault: %w", err)
	}
	*f = Fault(aux.plain)
	if len(aux.Latency) > 0 {
		var str string
		if err := json.Unmarshal(aux.Latency, &str); err == nil {
			d, err := time.ParseDuration(str)
			if err != nil {
				return fmt.Errorf("%w: fault latency: %w", ErrBadValue, err)
			}
			f.Latency = d
		} else if err := json.Unmarshal(aux.Latency, (*int64)(&f.Latency)); err != nil {
			return fmt.Errorf("%w: fault latency: %w", ErrBadValue, err)
		}
	}
	return nil
}

type activeFault struct {
	id   int
	f    Fault
	left int // remaining firings, -1 = unlimited
}

// Inject adds a fault and returns its id.
func (s *Sim) Inject(f Fault) int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faultSeq++
	left := f.Count
	if left <= 0 {
		left = -1
	}
	s.faults = append(s.faults, &activeFault{id: s.faultSeq, f: f, left: left})
	s.log.Debug("fault injected", "id", s.faultSeq, "endpoint", f.Endpoint, "kind", f.Kind.String())
	return s.faultSeq
}

// ClearFaults removes every injected fault.
func (s *Sim) ClearFaults() {
	s.faultMu.Lock()
	s.faults = nil
	s.faultMu.Unlock()
}

// pickFaults returns the total injected latency and the first other fault
// that fires for this request, consuming their counts.
func (s *Sim) pickFaults(endpoint string) (time.Duration, *Fault) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if len(s.faults) == 0 {
		return 0, nil
	}
	var lat time.Duration
	var act *Fault
	kept := s.faults[:0]
	for _, af := range s.faults {
		fires := (af.f.Endpoint == "" || af.f.Endpoint == endpoint) &&
			(af.f.Kind == FaultLatency || act == nil) &&
			(af.f.Probability <= 0 || s.faultRng.Float64() < af.f.Probability)
		if fires {
			if af.f.Kind == FaultLatency {
				lat += af.f.Latency
			} else {
				f := af.f
				act = &f
			}
			if af.left > 0 {
				af.left--
			}
		}
		if af.left != 0 {
			kept = append(kept, af)
		}
	}
	clear(s.faults[len(kept):])
	s.faults = kept
	return lat, act
}

type family int

const (
	famFabric family = iota
	famGateway
	famCMS
)

// endpoint wraps a handler with counting and fault injection.
func (s *Sim) endpoint(name string, fam family, h http.HandlerFunc) http.Handler {
	ctr := s.counters[name]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctr.Add(1)
		lat, f := s.pickFaults(name)
		if lat > 0 {
			t := time.NewTimer(lat)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.done:
				t.Stop()
				return
			}
		}
		if f == nil {
			h(w, r)
			return
		}
		switch f.Kind {
		case FaultHTTPStatus:
			st := f.Status
			if st == 0 {
				st = http.StatusBadGateway
			}
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(st)
			fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center><hr><center>nginx</center></body></html>\n",
				st, http.StatusText(st), st, http.StatusText(st))
		case FaultThrottle:
			if fam == famGateway {
				writeJSON(w, http.StatusOK, gwResp{Message: "interface invoked repeatedly", Retcode: "000-007"})
				return
			}
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many requests"})
		case FaultVendorCode:
			switch {
			case fam == famGateway:
				writeJSON(w, http.StatusOK, gwResp{Message: "injected vendor error", Retcode: f.Code})
			case fam == famCMS:
				writeJSON(w, http.StatusOK, cmsResp{ResultCode: f.Code, ResultDesc: "injected vendor error"})
			case name == "queryAgentInfoByAccount":
				writeJSON(w, http.StatusOK, map[string]any{"returnCode": f.Code, "description": "injected vendor error"})
			default:
				writeJSON(w, http.StatusOK, map[string]any{"retCode": f.Code, "retMsg": "injected vendor error"})
			}
		case FaultGarbled, FaultTruncated:
			buf := &bufWriter{header: w.Header()}
			h(buf, r)
			if buf.status == 0 {
				buf.status = http.StatusOK
			}
			body := buf.body.Bytes()
			if f.Kind == FaultGarbled {
				// Keep a plausible prefix, then break the syntax for sure.
				garbled := append(bytes.Clone(body[:len(body)/2]), "\x00}{\"<<garbled"...)
				w.Header().Set("Content-Length", strconv.Itoa(len(garbled)))
				w.WriteHeader(buf.status)
				_, _ = w.Write(garbled)
				return
			}
			// Promise the whole body, deliver half, then drop the connection:
			// the client sees an unexpected EOF mid-body.
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(buf.status)
			_, _ = w.Write(body[:len(body)/2])
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			panic(http.ErrAbortHandler)
		default:
			h(w, r)
		}
	})
}

// bufWriter captures a handler's answer so a fault can corrupt it.
type bufWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufWriter) Header() http.Header { return b.header }
func (b *bufWriter) WriteHeader(st int) {
	if b.status == 0 {
		b.status = st
	}
}
func (b *bufWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"cecsim: encode failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
