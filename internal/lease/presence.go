package lease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// presencePrefix starts the keys instances announce themselves under, in
// the lease bucket: a key lives one TTL after its last write, so the keys
// present are the instances alive.
const presencePrefix = "instance."

func presenceKey(holder string) string {
	sum := sha256.Sum256([]byte(holder))
	return presencePrefix + hex.EncodeToString(sum[:8])
}

// Announce writes this instance's presence key now and every TTL/3 until
// ctx ends, then deletes it (a clean stop leaves at once). Failures are
// retried at the next round: an instance NATS cannot see is not present.
func (e *Elector) Announce(ctx context.Context) {
	key := presenceKey(e.cfg.Holder)
	tick := time.NewTicker(e.TTL() / 3)
	defer tick.Stop()
	for {
		if kv, err := e.bucket(ctx); err == nil {
			actx, cancel := context.WithTimeout(ctx, e.TTL()/3)
			_, _ = kv.Put(actx, key, []byte(e.cfg.Holder))
			cancel()
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if kv, err := e.bucket(dctx); err == nil {
				_ = kv.Delete(dctx, key)
			}
			cancel()
			return
		case <-tick.C:
		}
	}
}

// Live lists the names of the instances present now, sorted.
func (e *Elector) Live(ctx context.Context) ([]string, error) {
	kv, err := e.bucket(ctx)
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeysFiltered(ctx, presencePrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("lease: live instances: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	var names []string
	for key := range lister.Keys() {
		if !strings.HasPrefix(key, presencePrefix) {
			continue
		}
		entry, err := kv.Get(ctx, key)
		if err == nil && entry.Operation() == jetstream.KeyValuePut {
			names = append(names, string(entry.Value()))
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
