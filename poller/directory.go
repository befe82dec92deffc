package poller

import (
	"context"

	"github.com/cecbridge/cecbridge/poller/cec"
)

// Fabric is the part of the vendor client the directory needs.
type Fabric interface {
	QueryAgentInfo(ctx context.Context) (*cec.AgentInfo, error)
	QueryPhones(ctx context.Context) ([]cec.Phone, error)
}

// FabricDirectory adapts the vendor client to a Directory, dropping
// everything the poller does not keep (SIP and phone passwords above all).
// Its requests take priority in the request budget: a walk of hundreds of
// phone pages must not queue behind every waiting call-ID poll.
type FabricDirectory struct{ Client Fabric }

// Roster implements Directory.
func (d FabricDirectory) Roster(ctx context.Context) (Roster, error) {
	info, err := d.Client.QueryAgentInfo(cec.WithPriority(ctx))
	if err != nil {
		return Roster{}, err
	}
	r := Roster{SIPServerIP: info.SIPServerIP, SIPServerPort: info.SIPServerPort, Agents: make([]RosterAgent, len(info.Agents))}
	for i, a := range info.Agents {
		r.Agents[i] = RosterAgent{WorkNo: a.WorkNo, SIPAccount: a.SIPAccount, AccountCode: a.AccountCode}
	}
	return r, nil
}

// Phones implements Directory.
func (d FabricDirectory) Phones(ctx context.Context) ([]Phone, error) {
	list, err := d.Client.QueryPhones(cec.WithPriority(ctx))
	if err != nil {
		return nil, err
	}
	out := make([]Phone, len(list))
	for i, p := range list {
		out[i] = Phone{PhoneNum: p.PhoneNum, Status: p.Status, ID: p.ID}
	}
	return out, nil
}
