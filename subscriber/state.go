package subscriber

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cecbridge/cecbridge/schemas"
)

// The write side of the view: the state records and how each event folds
// into them (read.go is the read side).

// Visibility scopes as bit flags.
const (
	lostCalls uint8 = 1 << iota
	lostSoftphone
	lostPhones
)

type tenantState struct {
	agents     map[int]*agentState
	agentOrder []int // sorted work numbers ever seen (deleted ones included)
	phones     map[string]*record[schemas.PhoneState]
	phoneOrder []string // sorted phone numbers ever seen
	lost       uint8    // tenant-wide lost scopes (visibility events without ranges)
	// statesNotVisible is the sorted work numbers of the agents whose state
	// the last bridge.states_visibility event lists; nil (all visible) for
	// a tenant that never had one.
	statesNotVisible []int
}

// agentState keeps the aspects of an agent in one small record. Slices and
// strings are replaced, never mutated, so readers may share them after
// releasing the lock. The CTI state comes only from a CMS sweep, so it is
// allocated with its first event: a tenant without CMS pays a pointer.
type agentState struct {
	calls     record[schemas.AgentCalls]
	softphone record[schemas.AgentSoftphone]
	cti       *record[schemas.AgentState]
	lost      uint8
}

// record is one aspect of an entity as its last applied event left it.
type record[T any] struct {
	state T
	seq   uint64 // the per-entity seq of that event; 0 = none yet
	obs   int64  // unix nanos of its detected.by_poll; 0 = never
	has   bool   // false before the first event and after a delete
}

// apply takes an event of the aspect if it is newer than the record.
func (r *record[T]) apply(c *schemas.Change[T]) {
	if c.Seq <= r.seq {
		return
	}
	r.seq, r.obs = c.Seq, c.Detected.ByPoll.UnixNano()
	if c.After == nil {
		var zero T
		r.state, r.has = zero, false
		return
	}
	r.state, r.has = *c.After, true
}

func (v *View) tenantLocked(t string) *tenantState {
	ts := v.tenants[t]
	if ts == nil {
		ts = &tenantState{agents: map[int]*agentState{}, phones: map[string]*record[schemas.PhoneState]{}}
		v.tenants[t] = ts
	}
	return ts
}

func (ts *tenantState) agent(workNo int) *agentState {
	a := ts.agents[workNo]
	if a == nil {
		a = &agentState{}
		ts.agents[workNo] = a
		i, _ := slices.BinarySearch(ts.agentOrder, workNo)
		ts.agentOrder = slices.Insert(ts.agentOrder, i, workNo)
	}
	return a
}

func (ts *tenantState) phone(num string) *record[schemas.PhoneState] {
	p := ts.phones[num]
	if p == nil {
		p = &record[schemas.PhoneState]{}
		ts.phones[num] = p
		i, _ := slices.BinarySearch(ts.phoneOrder, num)
		ts.phoneOrder = slices.Insert(ts.phoneOrder, i, num)
	}
	return p
}

// unusedSuffix ends the subjects of agent.calls.v2 events. The view
// answers no lookup from them (agent.calls answers the v1 call IDs, which
// the sweep publishes beside them), and with CMS they are among a tenant's
// most frequent events, so apply skips them without decoding.
const unusedSuffix = "." + schemas.AspectCallsV2

// apply decodes one event and folds it into the state. Events whose
// per-entity seq is not newer than the state's are ignored, so the overlap
// between bootstrap and follow, or a redelivery, is harmless. The applied
// sequence advances even for events the view does not use.
func (v *View) apply(streamSeq uint64, subject string, data []byte) {
	var ev schemas.Event
	var err error
	unused := strings.HasSuffix(subject, unusedSuffix)
	if !unused {
		err = json.Unmarshal(data, &ev)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if streamSeq > v.applied {
		v.applied = streamSeq
	}
	defer v.wakeLocked()
	if unused {
		return
	}
	if err != nil {
		v.skipped++
		v.log.Warn("undecodable event", "subject", subject, "seq", streamSeq, "err", err)
		return
	}
	switch schemas.KindOfType(ev.Type) {
	case schemas.KindAgentCalls:
		err = decodeInto(ev.Data, v.applyCalls)
	case schemas.KindAgentSoftphone:
		err = decodeInto(ev.Data, v.applySoftphone)
	case schemas.KindAgentState:
		err = decodeInto(ev.Data, v.applyState)
	case schemas.KindPhoneState:
		err = decodeInto(ev.Data, v.applyPhone)
	case schemas.KindBridgeVisibility:
		err = decodeInto(ev.Data, v.applyVisibility)
	case schemas.KindBridgeHeartbeat:
		err = decodeInto(ev.Data, v.applyHeartbeat)
	case schemas.KindBridgeStatesVisibility:
		err = decodeInto(ev.Data, v.applyStatesVisibility)
	}
	if err != nil {
		v.skipped++
		v.log.Warn("unusable event", "subject", subject, "seq", streamSeq, "type", ev.Type, "err", err)
	}
}

// decodeInto decodes an event's data and hands it to apply.
func decodeInto[T any](data []byte, apply func(*T) error) error {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	return apply(&v)
}

func (v *View) wanted(tenant string) error {
	if err := schemas.ValidTenant(tenant); err != nil {
		return err
	}
	if len(v.cfg.Tenants) > 0 && !slices.Contains(v.cfg.Tenants, tenant) {
		return fmt.Errorf("subscriber: tenant %q not followed", tenant)
	}
	return nil
}

// agentLocked is the agent an agent event is about.
func (v *View) agentLocked(key schemas.Key, aspect string) (*agentState, error) {
	if err := v.wanted(key.Tenant); err != nil {
		return nil, err
	}
	if schemas.ValidWorkNo(key.WorkNo) != nil {
		return nil, fmt.Errorf("subscriber: %s event for work number %d", aspect, key.WorkNo)
	}
	return v.tenantLocked(key.Tenant).agent(key.WorkNo), nil
}

func (v *View) applyCalls(c *schemas.Change[schemas.AgentCalls]) error {
	a, err := v.agentLocked(c.Key, "calls")
	if err != nil {
		return err
	}
	if c.After != nil {
		// Readers share the slice: nothing may append into its spare room.
		c.After.CallIDs = slices.Clip(c.After.CallIDs)
	}
	a.calls.apply(c)
	return nil
}

func (v *View) applySoftphone(c *schemas.Change[schemas.AgentSoftphone]) error {
	a, err := v.agentLocked(c.Key, "softphone")
	if err != nil {
		return err
	}
	a.softphone.apply(c)
	return nil
}

func (v *View) applyState(c *schemas.Change[schemas.AgentState]) error {
	a, err := v.agentLocked(c.Key, "state")
	if err != nil {
		return err
	}
	if a.cti == nil {
		a.cti = &record[schemas.AgentState]{}
	}
	a.cti.apply(c)
	return nil
}

func (v *View) applyPhone(c *schemas.Change[schemas.PhoneState]) error {
	if err := v.wanted(c.Key.Tenant); err != nil {
		return err
	}
	if c.Key.PhoneNum == "" {
		return errors.New("subscriber: phone event without phone number")
	}
	v.tenantLocked(c.Key.Tenant).phone(c.Key.PhoneNum).apply(c)
	return nil
}

// applyVisibility marks the listed agents (or, with no ranges, the whole
// tenant scope) lost or visible again. Entities keep their last state.
func (v *View) applyVisibility(vis *schemas.Visibility) error {
	if err := v.wanted(vis.Tenant); err != nil {
		return err
	}
	var bit uint8
	switch vis.Scope {
	case schemas.ScopeCalls:
		bit = lostCalls
	case schemas.ScopeSoftphone:
		bit = lostSoftphone
	case schemas.ScopePhones:
		bit = lostPhones
	default:
		return fmt.Errorf("subscriber: unknown visibility scope %q", vis.Scope)
	}
	lost := vis.State == schemas.VisibilityLost
	if !lost && vis.State != schemas.VisibilityRestored {
		return fmt.Errorf("subscriber: unknown visibility state %q", vis.State)
	}
	ts := v.tenantLocked(vis.Tenant)
	set := func(flags *uint8) {
		if lost {
			*flags |= bit
		} else {
			*flags &^= bit
		}
	}
	if vis.Agents == "" || bit == lostPhones {
		set(&ts.lost)
		if !lost {
			// A tenant-wide restore covers every agent of the scope.
			for _, a := range ts.agents {
				a.lost &^= bit
			}
		}
		return nil
	}
	nums, err := schemas.ParseRanges(vis.Agents)
	if err != nil {
		return fmt.Errorf("subscriber: visibility ranges: %w", err)
	}
	for _, n := range nums {
		if schemas.ValidWorkNo(n) != nil {
			continue
		}
		set(&ts.agent(n).lost)
	}
	return nil
}

// applyHeartbeat takes the whole visibility picture a heartbeat carries:
// the state stream keeps only a tenant's last visibility event, so a view
// that bootstraps late learns the rest from the last heartbeat, and every
// heartbeat corrects any drift.
func (v *View) applyHeartbeat(hb *schemas.Heartbeat) error {
	if err := v.wanted(hb.Tenant); err != nil {
		return err
	}
	nums, err := schemas.ParseRanges(hb.NotVisible)
	if err != nil {
		return fmt.Errorf("subscriber: heartbeat not_visible: %w", err)
	}
	ts := v.tenantLocked(hb.Tenant)
	for _, a := range ts.agents {
		a.lost &^= lostCalls
	}
	for _, n := range nums {
		if schemas.ValidWorkNo(n) == nil {
			ts.agent(n).lost |= lostCalls
		}
	}
	ts.lost &^= lostCalls
	setBit := func(bit uint8, visible bool) {
		if visible {
			ts.lost &^= bit
			for _, a := range ts.agents {
				a.lost &^= bit
			}
		} else {
			ts.lost |= bit
		}
	}
	setBit(lostSoftphone, hb.RosterVisible)
	setBit(lostPhones, hb.PhonesVisible)
	return nil
}

// applyStatesVisibility takes the whole picture of the agents whose state
// is not observed, replacing the last one: each event lists them all, so
// the last one alone, as the state stream keeps it, is the picture.
func (v *View) applyStatesVisibility(sv *schemas.StatesVisibility) error {
	if err := v.wanted(sv.Tenant); err != nil {
		return err
	}
	nums, err := schemas.ParseRanges(sv.NotVisible)
	if err != nil {
		return fmt.Errorf("subscriber: states_visibility not_visible: %w", err)
	}
	slices.Sort(nums)
	v.tenantLocked(sv.Tenant).statesNotVisible = slices.Compact(nums)
	return nil
}

// stateVisible says whether the agent's state is observed, as the last
// states picture has it.
func (ts *tenantState) stateVisible(workNo int) bool {
	_, lost := slices.BinarySearch(ts.statesNotVisible, workNo)
	return !lost
}
