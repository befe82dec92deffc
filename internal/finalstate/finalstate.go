package finalstate

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// Msg is one stored event as a reader of the events stream received it.
type Msg struct {
	StreamSeq uint64
	Subject   string
	Data      []byte
}

// MsgsOf is how recs reach a reader of the events stream when they are
// stored in this order from stream sequence 1: a history built by hand,
// for tests.
func MsgsOf(recs ...schemas.Record) []Msg {
	out := make([]Msg, len(recs))
	for i, r := range recs {
		out[i] = Msg{StreamSeq: uint64(i + 1), Subject: r.Subject, Data: r.Body}
	}
	return out
}

// World is the entity state of one tenant: what the simulator holds, or
// what a history ends in.
type World struct {
	Calls      map[int][]string  // work number → call IDs, sorted
	Softphones map[int]string    // work number → "sip_account|account_code"
	Phones     map[string]string // phone number → registration status
}

func newWorld() World {
	return World{Calls: map[int][]string{}, Softphones: map[int]string{}, Phones: map[string]string{}}
}

// OfSim is the simulator's current world.
func OfSim(sim *cecsim.Sim) World {
	w := newWorld()
	for _, wn := range sim.Agents() {
		a, ok := sim.Agent(wn)
		if !ok {
			continue
		}
		w.Calls[wn] = a.Calls
		w.Softphones[wn] = a.SIPAccount + "|" + a.AccountCode
	}
	for _, p := range sim.Phones() {
		w.Phones[p.PhoneNum] = schemas.PhoneStatus(p.Status)
	}
	return w
}

// OfHistory is the state tenant's history in msgs (in stream order) ends
// in: the last event of each entity subject; a delete removes the entity.
func OfHistory(tenant string, msgs []Msg) (World, error) {
	w := newWorld()
	for _, m := range msgs {
		ps, err := schemas.ParseSubject(m.Subject)
		if err != nil || ps.Tenant != tenant || ps.Entity == "bridge" {
			continue
		}
		var ev schemas.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return w, fmt.Errorf("finalstate: %s stream seq %d: %w", m.Subject, m.StreamSeq, err)
		}
		switch ps.Aspect {
		case "calls":
			after, err := after[schemas.AgentCalls](ev)
			if err != nil {
				return w, err
			}
			if after == nil {
				delete(w.Calls, ps.WorkNo)
			} else {
				w.Calls[ps.WorkNo] = after.CallIDs
			}
		case "softphone":
			after, err := after[schemas.AgentSoftphone](ev)
			if err != nil {
				return w, err
			}
			if after == nil {
				delete(w.Softphones, ps.WorkNo)
			} else {
				w.Softphones[ps.WorkNo] = after.SIPAccount + "|" + after.AccountCode
			}
		case "state":
			after, err := after[schemas.PhoneState](ev)
			if err != nil {
				return w, err
			}
			if after == nil {
				delete(w.Phones, ps.PhoneNum)
			} else {
				w.Phones[ps.PhoneNum] = after.Status
			}
		}
	}
	return w, nil
}

func after[T any](ev schemas.Event) (*T, error) {
	var ch schemas.Change[T]
	if err := json.Unmarshal(ev.Data, &ch); err != nil {
		return nil, fmt.Errorf("finalstate: %s: %w", ev.Subject, err)
	}
	return ch.After, nil
}

// Diff lists every entity whose state differs between want and got, in a
// stable order; empty means the worlds agree. No calls and an empty call
// list are the same state.
func Diff(want, got World) []string {
	var out []string
	for _, wn := range slices.Sorted(maps.Keys(union(want.Calls, got.Calls))) {
		w, inW := want.Calls[wn]
		g, inG := got.Calls[wn]
		if inW != inG || !slices.Equal(w, g) && len(w)+len(g) > 0 {
			out = append(out, fmt.Sprintf("agent %d calls: want %s, got %s", wn, show(w, inW), show(g, inG)))
		}
	}
	for _, wn := range slices.Sorted(maps.Keys(union(want.Softphones, got.Softphones))) {
		w, inW := want.Softphones[wn]
		g, inG := got.Softphones[wn]
		if inW != inG || w != g {
			out = append(out, fmt.Sprintf("agent %d softphone: want %s, got %s", wn, show(w, inW), show(g, inG)))
		}
	}
	for _, num := range slices.Sorted(maps.Keys(union(want.Phones, got.Phones))) {
		w, inW := want.Phones[num]
		g, inG := got.Phones[num]
		if inW != inG || w != g {
			out = append(out, fmt.Sprintf("phone %s: want %s, got %s", num, show(w, inW), show(g, inG)))
		}
	}
	return out
}

func union[K comparable, V any](a, b map[K]V) map[K]bool {
	u := make(map[K]bool, len(a))
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

func show(v any, present bool) string {
	if !present {
		return "absent"
	}
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}
