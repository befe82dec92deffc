package cecsim

import (
	"container/heap"
	"context"
	"strconv"
	"time"
)

type evKind uint8

const (
	evArrival evKind = iota
	evCallEnd
	evSignInOut
	evSoftphone
	evPhoneFlap
	evPhoneRestore
	evRoster
	evCallStatus
)

// wEvent is one scheduled workload event, at a virtual offset from the
// workload's start. Virtual time keeps the event sequence a pure function of
// the seed, whatever the ticker's jitter.
type wEvent struct {
	at     time.Duration
	seq    uint64 // tie-break, keeps the heap order total
	kind   evKind
	status CallStatus // evCallStatus: the status the call moves to
	workNo int32
	ref    string // call ID or phone number
}

type evHeap []wEvent

func (h evHeap) Len() int { return len(h) }
func (h evHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h evHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *evHeap) Push(x any)   { *h = append(*h, x.(wEvent)) }
func (h *evHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type workloadState struct {
	heap evHeap
	seq  uint64
	now  time.Duration // virtual time of the last processed step
}

const workloadTick = 20 * time.Millisecond

// expDelay draws an exponential delay for a rate per hour; math.Inf-free:
// a zero rate schedules nothing.
func (s *Sim) expDelay(perHour float64) time.Duration {
	mean := float64(time.Hour) / perHour
	return time.Duration(s.rng.ExpFloat64() * mean)
}

func (s *Sim) schedule(at time.Duration, kind evKind, workNo int32, ref string) {
	s.wl.seq++
	heap.Push(&s.wl.heap, wEvent{at: at, seq: s.wl.seq, kind: kind, workNo: workNo, ref: ref})
}

func (s *Sim) scheduleRate(from time.Duration, perHour float64, kind evKind) {
	if perHour > 0 {
		s.schedule(from+s.expDelay(perHour), kind, 0, "")
	}
}

func (s *Sim) initWorkloadLocked() {
	w := s.cfg.Workload
	if !w.Enabled {
		return
	}
	s.scheduleArrivalLocked(0)
	s.scheduleRate(0, w.SignInOutPerHour, evSignInOut)
	s.scheduleRate(0, w.SoftphoneChangesPerHour, evSoftphone)
	s.scheduleRate(0, w.PhoneFlapsPerHour, evPhoneFlap)
	s.scheduleRate(0, w.RosterChangesPerHour, evRoster)
}

// scheduleArrivalLocked draws the next tenant-wide call arrival: the
// superposition of every signed-in agent's Poisson process.
func (s *Sim) scheduleArrivalLocked(from time.Duration) {
	w := s.cfg.Workload
	if w.CallsPerAgentHour <= 0 {
		return
	}
	n := len(s.signed)
	if n == 0 {
		s.schedule(from+time.Second, evArrival, 0, "") // look again later
		return
	}
	s.schedule(from+s.expDelay(w.CallsPerAgentHour*float64(n)), evArrival, 0, "")
}

// step applies every workload event due by virtual time now.
func (s *Sim) step(now time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wl.now = now
	for len(s.wl.heap) > 0 && s.wl.heap[0].at <= now {
		e := heap.Pop(&s.wl.heap).(wEvent)
		s.applyLocked(e)
	}
}

func (s *Sim) pickAgentLocked() *agent {
	if len(s.roster) == 0 {
		return nil
	}
	return s.agents[s.roster[s.rng.IntN(len(s.roster))]]
}

// protectedLocked says whether the workload must leave an agent alone: an
// agent with an API session is the bridge's monitoring agent.
func (s *Sim) protectedLocked(wn int32) bool {
	ss := s.sessions[wn]
	return ss != nil && ss.signedIn
}

func (s *Sim) applyLocked(e wEvent) {
	w := s.cfg.Workload
	switch e.kind {
	case evArrival:
		if n := len(s.signed); n > 0 {
			a := s.agents[s.signed[s.rng.IntN(n)]]
			if len(a.calls) < w.MaxCallsPerAgent {
				dir := Inbound
				if s.callRng.Float64() < w.OutboundShare {
					dir = Outbound
				}
				id := s.startCallLocked(a, CallAlerting, dir)
				d := time.Duration(s.rng.ExpFloat64() * float64(w.MeanCallDuration))
				s.schedule(e.at+d, evCallEnd, a.workNo, id)
				s.scheduleCallStatusesLocked(e.at, d, a.workNo, id)
			}
		}
		s.scheduleArrivalLocked(e.at)
	case evCallEnd:
		if a := s.agents[e.workNo]; a != nil {
			s.endCallLocked(a, e.ref) // no-op if a script or sign-out ended it
		}
	case evSignInOut:
		// Toggle with a bias so the signed-in share stays near SignedInShare.
		if a := s.pickAgentLocked(); a != nil {
			share := w.SignedInShare
			if a.signedIdx >= 0 {
				if s.rng.Float64() < 1-share {
					s.signOutLocked(a)
				}
			} else if s.rng.Float64() < share {
				s.signInLocked(a, true)
			}
		}
		s.scheduleRate(e.at, w.SignInOutPerHour, evSignInOut)
	case evSoftphone:
		if a := s.pickAgentLocked(); a != nil {
			wn := strconv.Itoa(int(a.workNo))
			sip := defaultSIP(int(a.workNo))
			if a.sipAccount == sip {
				sip = "8887" + wn
			}
			s.setSoftphoneLocked(a, sip, a.accountCode)
		}
		s.scheduleRate(e.at, w.SoftphoneChangesPerHour, evSoftphone)
	case evPhoneFlap:
		if n := len(s.phoneList); n > 0 {
			p := s.phoneList[s.rng.IntN(n)]
			if p.status == 0 {
				s.setPhoneStatusLocked(p, 1)
				// Suspended phones re-register after about half a minute.
				d := time.Duration(s.rng.ExpFloat64() * float64(30*time.Second))
				s.schedule(e.at+d, evPhoneRestore, 0, p.num)
			}
		}
		s.scheduleRate(e.at, w.PhoneFlapsPerHour, evPhoneFlap)
	case evPhoneRestore:
		if p := s.phones[e.ref]; p != nil {
			s.setPhoneStatusLocked(p, 0)
		}
	case evCallStatus:
		if c := s.calls[e.ref]; c != nil && c.workNo == e.workNo {
			s.setCallStatusLocked(c, e.status) // the call may have ended meanwhile
		}
	case evRoster:
		if s.rng.IntN(2) == 0 && len(s.roster) > 1 {
			if a := s.pickAgentLocked(); a != nil && !s.protectedLocked(a.workNo) {
				s.removeAgentLocked(a)
			}
		} else if s.nextWorkNo <= 999999 {
			s.addAgentLocked(s.nextWorkNo, true, false, true)
		}
		s.scheduleRate(e.at, w.RosterChangesPerHour, evRoster)
	}
}

// scheduleCallStatusesLocked plans a call's life between its start at and
// its release after d: it rings, is answered (unless it is released while
// ringing), and is sometimes put on hold once. The draws come from their
// own generator, so the arrivals and durations of a seed stay as they were
// before calls had statuses.
func (s *Sim) scheduleCallStatusesLocked(at, d time.Duration, workNo int32, id string) {
	w := s.cfg.Workload
	ring := time.Duration(s.callRng.ExpFloat64() * float64(w.MeanAlerting))
	if ring >= d {
		return // released unanswered
	}
	s.scheduleStatus(at+ring, workNo, id, CallTalking)
	if s.callRng.Float64() >= w.HoldShare {
		return
	}
	holdAt := ring + time.Duration(s.callRng.Float64()*float64(d-ring)/2)
	s.scheduleStatus(at+holdAt, workNo, id, CallHeld)
	if back := holdAt + time.Duration(s.callRng.ExpFloat64()*float64(w.MeanHold)); back < d {
		s.scheduleStatus(at+back, workNo, id, CallTalking)
	}
}

func (s *Sim) scheduleStatus(at time.Duration, workNo int32, id string, st CallStatus) {
	s.wl.seq++
	heap.Push(&s.wl.heap, wEvent{at: at, seq: s.wl.seq, kind: evCallStatus, status: st, workNo: workNo, ref: id})
}

func (s *Sim) runWorkload(ctx context.Context) {
	defer close(s.workloadDone)
	if !s.cfg.Workload.Enabled {
		return
	}
	start := time.Now()
	t := time.NewTicker(workloadTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-s.workloadStop:
			return
		case <-t.C:
			s.step(time.Since(start))
		}
	}
}

// StopWorkload ends the random workload for good and returns once it has
// made its last change: the world stays as it is, the APIs keep answering
// and scripted changes still apply, so a client's final state can be
// compared with the world's. It returns at once if Start was never called.
func (s *Sim) StopWorkload() {
	s.stopWorkload.Do(func() { close(s.workloadStop) })
	if s.url != "" {
		<-s.workloadDone
	}
}
