package cecsim_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// A replay sets the gap switches, example bodies and world shape it
// knows, keeps the defaults it does not, and names a value it cannot use.
func TestReplayAppliesWhatItKnows(t *testing.T) {
	dir := t.TempDir()
	body := `{"agents":12,"first_work_no":2001,"auth_mode":"dynamic","guid_interval":"200ms","long_poll_hold":"50ms",
		"token_max_lifetime":"2m0s","loginex":false,"no_call":"code","no_call_code":"900-002","empty_poll":"{}",
		"expired_token_status":403,"expired_token_body":"Forbidden","flat_reg_serv":true,"calls":{"2003":2}}`
	if err := os.WriteFile(filepath.Join(dir, cecsim.ReplayFile), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := cecsim.ReadReplay(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := r.Apply(cecsim.Config{GUIDTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agents != 12 || cfg.FirstWorkNo != 2001 || cfg.AuthMode != cecsim.AuthDynamic || cfg.GUIDInterval != 200*time.Millisecond ||
		cfg.GUIDTimeout != 400*time.Millisecond || cfg.LongPollHold != 50*time.Millisecond || cfg.TokenMaxLifetime != 2*time.Minute ||
		!cfg.NoLoginEx || cfg.NoCallMode != cecsim.NoCallError || cfg.NoCallCode != "900-002" ||
		cfg.EmptyPollMode != cecsim.EmptyPollEmptyObject || cfg.ExpiredTokenStatus != 403 || cfg.ExpiredTokenBody != "Forbidden" || !cfg.FlatRegServ {
		t.Fatalf("config %+v", cfg)
	}
	sim, err := cecsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.PlaceCalls(r.Calls); err != nil || len(sim.AgentCalls(2003)) != 2 {
		t.Fatalf("calls: %v %v", err, sim.AgentCalls(2003))
	}
	for _, bad := range []cecsim.Replay{{AuthMode: "sometimes"}, {NoCall: "code"}, {EmptyPoll: "[]"}, {LongPollHold: "soon"}} {
		if _, err := bad.Apply(cecsim.Config{}); !errors.Is(err, cecsim.ErrBadReplay) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, err := cecsim.ReadReplay(t.TempDir()); !errors.Is(err, cecsim.ErrBadReplay) {
		t.Errorf("missing file: %v", err)
	}
}
