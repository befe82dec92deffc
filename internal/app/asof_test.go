package app_test

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// truth replays the simulator's ground truth: the initial world and every
// change with the instant it happened.
type truth struct {
	calls   map[int][]string // initial call IDs (none) per agent
	sip     map[int]string   // initial "sipAccount|accountCode"
	phones  map[string]int   // initial status
	changes []cecsim.Change
}

func initialTruth(sim *cecsim.Sim) *truth {
	tr := &truth{calls: map[int][]string{}, sip: map[int]string{}, phones: map[string]int{}}
	for _, w := range sim.Agents() {
		a, _ := sim.Agent(w)
		tr.calls[w] = a.Calls
		tr.sip[w] = a.SIPAccount + "|" + a.AccountCode
	}
	for _, p := range sim.Phones() {
		tr.phones[p.PhoneNum] = p.Status
	}
	return tr
}

// key names the entity a change is about, as the bridge's subjects do.
func changeKey(c cecsim.Change) string {
	switch c.Kind {
	case cecsim.KindCallAdded, cecsim.KindCallRemoved:
		return "calls " + strconv.Itoa(c.WorkNo)
	case cecsim.KindSoftphone:
		return "softphone " + strconv.Itoa(c.WorkNo)
	case cecsim.KindPhoneStatus, cecsim.KindPhoneAdded, cecsim.KindPhoneRemoved:
		return "phone " + c.PhoneNum
	}
	return ""
}

// stable says the entity did not change in the settle time up to at, so
// the bridge must have seen its state at at.
func (tr *truth) stable(key string, at time.Time, settle time.Duration) bool {
	for _, c := range tr.changes {
		if changeKey(c) == key && c.At.After(at.Add(-settle)) && !c.At.After(at) {
			return false
		}
	}
	return true
}

func (tr *truth) callsAt(w int, at time.Time) []string {
	ids := slices.Clone(tr.calls[w])
	for _, c := range tr.changes {
		if c.At.After(at) || c.WorkNo != w {
			continue
		}
		switch c.Kind {
		case cecsim.KindCallAdded:
			ids = append(ids, c.CallID)
		case cecsim.KindCallRemoved:
			ids = slices.DeleteFunc(ids, func(id string) bool { return id == c.CallID })
		}
	}
	slices.Sort(ids)
	return ids
}

func (tr *truth) softphoneAt(w int, at time.Time) string {
	sp := tr.sip[w]
	for _, c := range tr.changes {
		if !c.At.After(at) && c.Kind == cecsim.KindSoftphone && c.WorkNo == w {
			sp = c.After
		}
	}
	return sp
}

// phoneAt returns a phone's status, -1 if it did not exist.
func (tr *truth) phoneAt(num string, at time.Time) int {
	st, ok := tr.phones[num]
	if !ok {
		st = -1
	}
	for _, c := range tr.changes {
		if c.At.After(at) || c.PhoneNum != num {
			continue
		}
		switch c.Kind {
		case cecsim.KindPhoneAdded, cecsim.KindPhoneStatus:
			st, _ = strconv.Atoi(c.After)
		case cecsim.KindPhoneRemoved:
			st = -1
		}
	}
	return st
}

// phoneNums is every phone number the simulator ever had.
func (tr *truth) phoneNums() []string {
	nums := slices.Collect(maps.Keys(tr.phones))
	for _, c := range tr.changes {
		if c.PhoneNum != "" && !slices.Contains(nums, c.PhoneNum) {
			nums = append(nums, c.PhoneNum)
		}
	}
	return nums
}

func lookupAsOf(t *testing.T, nc *nats.Conn, endpoint string, req, resp any) {
	t.Helper()
	schematest.LookupOK(t, nc, tenant, endpoint, req, resp, 10*time.Second)
}

// Lookups as of random past instants agree with the simulator's ground
// truth for every entity that had been stable for a settle time: the calls
// of each agent, who was on a call, softphone bindings and phone status.
func TestAsOfMatchesTheSimulatorAtRandomInstants(t *testing.T) {
	const never = 0.001 // per hour; a rate of zero means the default
	e := newEnvWith(t, cecsim.Config{Agents: 8, Workload: cecsim.Workload{
		Enabled: true, SignedInShare: 0.99, CallsPerAgentHour: 1800, MeanCallDuration: 3 * time.Second,
		SoftphoneChangesPerHour: 1800, PhoneFlapsPerHour: 2400, SignInOutPerHour: never, RosterChangesPerHour: never,
	}})
	tr := initialTruth(e.sim)
	e.start(t)
	e.events = readStream(t, e.js)
	e.waitSnapshots(t)
	from := time.Now().Add(time.Second)
	testwait.Until(t, "a few seconds of workload", func() bool {
		return time.Since(from) > 5*time.Second && len(e.sim.Truth(0)) > 40
	})
	to := time.Now().Add(-time.Second)
	tr.changes = e.sim.Truth(0)

	const settle = time.Second
	rng := rand.New(rand.NewPCG(14, 14))
	var checked, inCall, suspended int
	for range 6 {
		at := from.Add(time.Duration(rng.Int64N(int64(to.Sub(from)))))
		asOf := at.UTC().Format(time.RFC3339Nano)
		var list schemas.AgentsListResponse
		yes := true
		lookupAsOf(t, e.nc, schemas.LookupAgentsList, schemas.AgentsListRequest{InCall: &yes, AsOf: asOf}, &list)
		listed := map[int]bool{}
		for _, a := range list.Agents {
			listed[a.WorkNo] = true
		}
		for _, w := range e.sim.Agents() {
			if !tr.stable("calls "+strconv.Itoa(w), at, settle) {
				continue
			}
			want := tr.callsAt(w, at)
			var calls schemas.AgentCallsResponse
			lookupAsOf(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: w, ReadOptions: schemas.ReadOptions{AsOf: asOf}}, &calls)
			if !slices.Equal(calls.CallIDs, want) && !(len(want) == 0 && len(calls.CallIDs) == 0) {
				t.Errorf("agent %d at %s: calls %v, truth %v (%+v)", w, asOf, calls.CallIDs, want, calls.AsOf)
			}
			if listed[w] != (len(want) > 0) {
				t.Errorf("agent %d at %s: listed in call %v, truth %v", w, asOf, listed[w], want)
			}
			checked++
			if len(want) > 0 {
				inCall++
			}
		}
		for _, w := range e.sim.Agents() {
			if !tr.stable("softphone "+strconv.Itoa(w), at, settle) {
				continue
			}
			var sp schemas.AgentSoftphoneResponse
			lookupAsOf(t, e.nc, schemas.LookupAgentSoftphone, schemas.AgentSoftphoneRequest{WorkNo: w, ReadOptions: schemas.ReadOptions{AsOf: asOf}}, &sp)
			if got, want := sp.SIPAccount+"|"+sp.AccountCode, tr.softphoneAt(w, at); got != want {
				t.Errorf("agent %d at %s: softphone %s, truth %s", w, asOf, got, want)
			}
			checked++
		}
		var phones schemas.PhonesListResponse
		lookupAsOf(t, e.nc, schemas.LookupPhonesList, schemas.PhonesListRequest{AsOf: asOf}, &phones)
		// Every phone that existed then, settled, is listed; none other.
		if phones.NextCursor != "" {
			t.Fatalf("phones as of %s: more than one page", asOf)
		}
		listedPhones := map[string]bool{}
		for _, p := range phones.Phones {
			listedPhones[p.PhoneNum] = true
		}
		for _, num := range tr.phoneNums() {
			if tr.stable("phone "+num, at, settle) && listedPhones[num] != (tr.phoneAt(num, at) >= 0) {
				t.Errorf("phone %s as of %s: listed %v, in the simulator %v", num, asOf, listedPhones[num], tr.phoneAt(num, at) >= 0)
			}
		}
		for _, p := range phones.Phones {
			if !tr.stable("phone "+p.PhoneNum, at, settle) {
				continue
			}
			if want := tr.phoneAt(p.PhoneNum, at); p.StatusCode != want {
				t.Errorf("phone %s at %s: status %d, truth %d", p.PhoneNum, asOf, p.StatusCode, want)
			}
			checked++
			if p.StatusCode != 0 {
				suspended++
			}
		}
	}
	if checked < 60 || inCall == 0 || suspended == 0 {
		t.Fatalf("too little compared: %d answers, %d with calls, %d suspended phones", checked, inCall, suspended)
	}
	t.Logf("%d as_of answers matched the truth (%d with calls, %d suspended phones)", checked, inCall, suspended)
}
