package subscriber

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// nextOwn tells what the view still has to apply before it has seen every
// message of its own subjects up to seq, given that it has applied all of
// them up to after. next is the sequence of the first such message past
// after, if there is one at or before seq. done means there is none and
// the stream has reached seq: the view is then as current as a view that
// applied seq itself. With neither, the stream has not reached seq yet.
//
// It asks the stream leader (stream info, then STREAM.MSG.GET with
// next_by_subj for each of the view's filters), not a replica through
// Direct Get: a replica that lags could miss a message and end a wait too
// early. The info comes first, so every message up to seq exists when the
// filters are asked.
func (v *View) nextOwn(ctx context.Context, after, seq uint64) (next uint64, done bool, err error) {
	s, err := v.js.Stream(ctx, v.cfg.EventsStream)
	if err != nil {
		return 0, false, fmt.Errorf("subscriber: stream %s: %w", v.cfg.EventsStream, err)
	}
	if s.CachedInfo().State.LastSeq < seq {
		return 0, false, nil
	}
	for _, filter := range v.filters {
		n, err := v.firstFrom(ctx, after+1, filter)
		if err != nil {
			return 0, false, err
		}
		if n != 0 && n <= seq && (next == 0 || n < next) {
			next = n
		}
	}
	return next, next == 0, nil
}

// firstFrom returns the sequence of the first message on subject (a
// filter, wildcards allowed) at or after from, or 0 if there is none.
func (v *View) firstFrom(ctx context.Context, from uint64, subject string) (uint64, error) {
	req, err := json.Marshal(struct {
		Seq        uint64 `json:"seq"`
		NextBySubj string `json:"next_by_subj"`
	}{from, subject})
	if err != nil {
		return 0, err
	}
	msg, err := v.js.Conn().RequestWithContext(ctx, apiPrefix(v.js)+"STREAM.MSG.GET."+v.cfg.EventsStream, req)
	if err != nil {
		return 0, fmt.Errorf("subscriber: next message on %s: %w", subject, err)
	}
	var resp struct {
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, fmt.Errorf("subscriber: next message on %s: %w", subject, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return 0, nil
	case resp.Error != nil:
		return 0, fmt.Errorf("subscriber: next message on %s: %w", subject, resp.Error)
	case resp.Message == nil:
		return 0, fmt.Errorf("subscriber: next message on %s: %w", subject, jetstream.ErrInvalidJetStreamResponse)
	}
	return resp.Message.Seq, nil
}

// apiPrefix is the JetStream API prefix js sends its requests to.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
}
