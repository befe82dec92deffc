package subscriber

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// The answers to point lookups are appended by hand: encoding/json's
// reflection and time formatting cost more than the rest of the answer.
// Each appender writes exactly what json.Marshal writes (TestFastEncode and
// FuzzFastEncode compare them) and gives up, so that json.Marshal answers,
// on anything it does not write itself: a string needing escapes, a time
// json.Marshal would refuse.

// bufPool recycles answer buffers: the connection copies an answer before
// Respond or Publish returns. Buffers grown past maxPooled (a long list)
// are left to the collector.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooled = 16 << 10

// encodeAnswer appends resp as JSON to buf.
func encodeAnswer(buf []byte, resp any) ([]byte, error) {
	var out []byte
	ok := false
	switch r := resp.(type) {
	case schemas.AgentCallsResponse:
		out, ok = appendAgentCalls(buf, &r)
	case schemas.AgentSoftphoneResponse:
		out, ok = appendAgentSoftphone(buf, &r)
	case schemas.AgentStateResponse:
		out, ok = appendAgentState(buf, &r)
	case schemas.PhoneStateResponse:
		out, ok = appendPhoneState(buf, &r)
	}
	if ok {
		return out, nil
	}
	b, err := json.Marshal(resp)
	return append(buf, b...), err
}

// jsonWriter appends fields, remembering whether one could not be written.
type jsonWriter struct {
	b  []byte
	ok bool
}

func (w *jsonWriter) key(k string) {
	if len(w.b) > 0 && w.b[len(w.b)-1] != '{' {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

// str writes s if it needs no escaping; encoding/json escapes '<', '>'
// and '&' too.
func (w *jsonWriter) str(s string) {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			w.ok = false
			return
		}
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

// optStr writes an omitempty string field.
func (w *jsonWriter) optStr(k, v string) {
	if v != "" {
		w.key(k)
		w.str(v)
	}
}

func (w *jsonWriter) strings(ss []string) {
	if ss == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '[')
	for i, s := range ss {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.str(s)
	}
	w.b = append(w.b, ']')
}

// time writes t as time.Time.MarshalJSON does, for the years and offsets
// it accepts.
func (w *jsonWriter) time(t time.Time) {
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off%60 != 0 {
		w.ok = false
		return
	}
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

func (w *jsonWriter) int(n int64)   { w.b = strconv.AppendInt(w.b, n, 10) }
func (w *jsonWriter) uint(n uint64) { w.b = strconv.AppendUint(w.b, n, 10) }
func (w *jsonWriter) bool(v bool)   { w.b = strconv.AppendBool(w.b, v) }

// meta writes the embedded schemas.Meta fields, in declaration order.
func (w *jsonWriter) meta(m *schemas.Meta) {
	w.key("stream_seq")
	w.uint(m.StreamSeq)
	w.key("seq")
	w.uint(m.Seq)
	if m.Observed != nil {
		w.key("observed")
		w.time(*m.Observed)
	}
	if m.Live {
		w.key("live")
		w.bool(true)
	}
	w.key("visible")
	w.bool(m.Visible)
	if m.AsOf != nil {
		w.ok = false // answers for the past are rare: json.Marshal writes them
	}
}

func (w *jsonWriter) done() ([]byte, bool) {
	w.b = append(w.b, '}')
	return w.b, w.ok
}

// agentAnswer starts an answer about one agent: its tenant and work number.
func agentAnswer(buf []byte, tenant string, workNo int) jsonWriter {
	w := jsonWriter{b: append(buf, '{'), ok: true}
	w.key("tenant")
	w.str(tenant)
	w.key("work_no")
	w.int(int64(workNo))
	return w
}

func appendAgentCalls(buf []byte, r *schemas.AgentCallsResponse) ([]byte, bool) {
	w := agentAnswer(buf, r.Tenant, r.WorkNo)
	w.key("call_ids")
	w.strings(r.CallIDs)
	w.meta(&r.Meta)
	return w.done()
}

func appendAgentSoftphone(buf []byte, r *schemas.AgentSoftphoneResponse) ([]byte, bool) {
	w := agentAnswer(buf, r.Tenant, r.WorkNo)
	w.optStr("sip_account", r.SIPAccount)
	w.optStr("account_code", r.AccountCode)
	w.optStr("sip_server_ip", r.SIPServerIP)
	if r.SIPServerPort != 0 {
		w.key("sip_server_port")
		w.int(int64(r.SIPServerPort))
	}
	w.optStr("phone_status", r.PhoneStatus)
	if r.PhoneStatusCode != nil {
		w.key("phone_status_code")
		w.int(int64(*r.PhoneStatusCode))
	}
	w.key("registered")
	w.bool(r.Registered)
	w.meta(&r.Meta)
	return w.done()
}

func appendAgentState(buf []byte, r *schemas.AgentStateResponse) ([]byte, bool) {
	w := agentAnswer(buf, r.Tenant, r.WorkNo)
	w.key("state")
	w.str(r.State)
	w.key("state_code")
	w.int(int64(r.StateCode))
	w.key("since")
	w.time(r.Since)
	w.optStr("prev_state", r.PrevState)
	if r.Reason != 0 {
		w.key("reason")
		w.int(int64(r.Reason))
	}
	if r.SignedInAt != nil {
		w.key("signed_in_at")
		w.time(*r.SignedInAt)
	}
	w.meta(&r.Meta)
	return w.done()
}

func appendPhoneState(buf []byte, r *schemas.PhoneStateResponse) ([]byte, bool) {
	w := jsonWriter{b: append(buf, '{'), ok: true}
	w.key("tenant")
	w.str(r.Tenant)
	w.key("phone_num")
	w.str(r.PhoneNum)
	w.key("status")
	w.str(r.Status)
	w.key("status_code")
	w.int(int64(r.StatusCode))
	if r.ConfigID != 0 {
		w.key("config_id")
		w.int(r.ConfigID)
	}
	w.meta(&r.Meta)
	return w.done()
}
