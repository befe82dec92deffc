package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errNoMessage is what the stream answers when nothing matches.
var errNoMessage = jetstream.ErrMsgNotFound

// jsNoMessageFound is the API error code for "no message found".
const jsNoMessageFound = 10037

// storedMsg is one message as the stream API returns it.
type storedMsg struct {
	Subject  string
	Sequence uint64
	Header   nats.Header
	Data     []byte
	Time     time.Time
}

// leaderLast reads the last message on subject (which may hold wildcards)
// through the stream API, which the stream's leader answers. A direct get
// could be answered by a follower that lags behind and report an older
// message: a decision such as "another writer owns this subject" must not
// rest on that.
func (p *Publisher) leaderLast(ctx context.Context, stream, subject string) (*storedMsg, error) {
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, fmt.Errorf("publisher: last message on %s: %w", subject, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.AckTimeout)
		defer cancel()
	}
	resp, err := p.js.Conn().RequestWithContext(ctx, p.apiPrefix()+"STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, fmt.Errorf("publisher: last message on %s: %w", subject, err)
	}
	var body struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Subject  string    `json:"subject"`
			Sequence uint64    `json:"seq"`
			Header   []byte    `json:"hdrs"`
			Data     []byte    `json:"data"`
			Time     time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(resp.Data, &body); err != nil {
		return nil, fmt.Errorf("publisher: last message on %s: %w", subject, err)
	}
	switch {
	case body.Error != nil && body.Error.ErrCode == jsNoMessageFound:
		return nil, fmt.Errorf("publisher: last message on %s: %w", subject, errNoMessage)
	case body.Error != nil:
		return nil, fmt.Errorf("publisher: last message on %s: %s (%d)", subject, body.Error.Description, body.Error.ErrCode)
	case body.Message == nil:
		return nil, fmt.Errorf("publisher: last message on %s: empty answer", subject)
	}
	m := &storedMsg{Subject: body.Message.Subject, Sequence: body.Message.Sequence, Data: body.Message.Data, Time: body.Message.Time}
	if len(body.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(body.Message.Header); err != nil {
			return nil, fmt.Errorf("publisher: last message on %s: headers: %w", subject, err)
		}
	}
	return m, nil
}

func (p *Publisher) apiPrefix() string {
	if pre := p.js.Options().APIPrefix; pre != "" {
		if pre[len(pre)-1] != '.' {
			pre += "."
		}
		return pre
	}
	return jetstream.DefaultAPIPrefix
}

// isNoMessage tells a "nothing stored on that subject" answer.
func isNoMessage(err error) bool { return errors.Is(err, errNoMessage) }
