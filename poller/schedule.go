package poller

import (
	"container/heap"
	"time"
)

// queue is a min-heap of agents by due time.
type queue []*agent

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].heapIdx = i
	q[j].heapIdx = j
}
func (q *queue) Push(x any) {
	a := x.(*agent)
	a.heapIdx = len(*q)
	*q = append(*q, a)
}
func (q *queue) Pop() any {
	old := *q
	n := len(old)
	a := old[n-1]
	old[n-1] = nil
	a.heapIdx = -1
	*q = old[:n-1]
	return a
}

// scheduler holds the two queues of agents waiting for their next call-ID
// poll. It is guarded by the tenant's mutex.
type scheduler struct {
	active, idle queue
	idleShare    float64
	credit       float64 // idle dispatches owed while active agents are overdue
}

func (s *scheduler) push(a *agent) {
	if a.heapIdx >= 0 || a.inFlight {
		return
	}
	if a.active {
		heap.Push(&s.active, a)
	} else {
		heap.Push(&s.idle, a)
	}
}

func (s *scheduler) remove(a *agent) {
	if a.heapIdx < 0 {
		return
	}
	// An agent's queue is the one whose slot holds it.
	if a.heapIdx < len(s.active) && s.active[a.heapIdx] == a {
		heap.Remove(&s.active, a.heapIdx)
	} else if a.heapIdx < len(s.idle) && s.idle[a.heapIdx] == a {
		heap.Remove(&s.idle, a.heapIdx)
	}
	a.heapIdx = -1
}

// next pops the agent to poll now, or returns nil and the time the earliest
// one falls due (zero if both queues are empty). Active agents go first;
// while they are overdue, idle agents still get idleShare of the dispatches
// so that none starves.
func (s *scheduler) next(now time.Time) (*agent, time.Time) {
	activeDue := len(s.active) > 0 && !s.active[0].due.After(now)
	idleDue := len(s.idle) > 0 && !s.idle[0].due.After(now)
	switch {
	case activeDue && idleDue:
		s.credit += s.idleShare
		if s.credit >= 1 {
			s.credit--
			return heap.Pop(&s.idle).(*agent), time.Time{}
		}
		return heap.Pop(&s.active).(*agent), time.Time{}
	case activeDue:
		return heap.Pop(&s.active).(*agent), time.Time{}
	case idleDue:
		return heap.Pop(&s.idle).(*agent), time.Time{}
	}
	var earliest time.Time
	if len(s.active) > 0 {
		earliest = s.active[0].due
	}
	if len(s.idle) > 0 && (earliest.IsZero() || s.idle[0].due.Before(earliest)) {
		earliest = s.idle[0].due
	}
	return nil, earliest
}

func (s *scheduler) len() int { return len(s.active) + len(s.idle) }
