package poller

import (
	"context"

	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/schemas"
)

// Sink receives encoded events. Emit must not block on the network: nil means
// the record was accepted and will be published in order for its subject; an
// error means it was refused, and the poller keeps its previous state so the
// change is detected again on a later poll.
type Sink interface {
	Emit(ctx context.Context, rec schemas.Record) error
}

// Roster is one complete queryAgentInfo answer.
type Roster struct {
	SIPServerIP   string
	SIPServerPort int
	Agents        []RosterAgent
}

// RosterAgent is one agent's softphone binding in a Roster.
type RosterAgent struct {
	WorkNo      int
	SIPAccount  string
	AccountCode string
}

// Phone is one softphone number in a complete queryPhone walk.
type Phone struct {
	PhoneNum string
	Status   int
	ID       int64
}

// Directory answers the tenant-wide API Fabric queries. Each call returns a
// complete observation or an error, never a partial one.
type Directory interface {
	Roster(ctx context.Context) (Roster, error)
	Phones(ctx context.Context) ([]Phone, error)
}

// CallSource asks the CC-Gateway for an agent's call IDs through a signed-in
// monitoring session. An agent with no call yields an empty slice and a nil
// error; every failure is an error. Implementations bound each request
// with their own timeout.
type CallSource interface {
	AllCallInfo(ctx context.Context, workNo int) ([]string, error)
	Ready() bool
}

// Observer receives measurements; nil is allowed. Implementations must be
// cheap and safe for concurrent use.
type Observer interface {
	// ObservePoll records one poll: kind is "calls", "roster" or "phones";
	// outcome is "ok", "error" or "refused".
	ObservePoll(kind, outcome string)
	// ObserveEvent records one accepted event of the given type.
	ObserveEvent(eventType string)
}

// CMS answers for many agents per request (CC-CMS, see poller/cec): it
// splits a roster into chunks and observes each chunk's calls and agent
// states. A chunk's answer is a complete observation of the agents it
// describes; an agent it leaves out is not observed, never "no call".
type CMS interface {
	Plan(agents []int, limit int) (chunks []cec.Chunk, unplanned []int)
	QueryAgentCalls(ctx context.Context, ch cec.Chunk) (*cec.CallsAnswer, error)
	QueryAgentStates(ctx context.Context, ch cec.Chunk) (*cec.StatesAnswer, error)
}
