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
	if cfg.ExpiredTokenNoBody || cfg.CMS.RefuseSignatures || cfg.CMS.RefuseClient || cfg.CMS.NotLicensed || cfg.CMS.SignedHeaders != nil {
		t.Fatalf("a replay without a cms block or with a token body changed %+v", cfg)
	}

	// A refused token answered with no body; CMS accepting one variant only.
	cms := cecsim.Replay{ExpiredTokenStatus: 401, CMS: &cecsim.ReplayCMS{
		SignedHeaders: []string{"content-type", "host"}, Timestamp: cecsim.C2Millis, NotLicensed: true, AnswerUnasked: true}}
	if cfg, err = cms.Apply(cecsim.Config{}); err != nil {
		t.Fatal(err)
	}
	if !cfg.ExpiredTokenNoBody || cfg.CMS.Timestamp != cecsim.C2Millis || len(cfg.CMS.SignedHeaders) != 2 ||
		!cfg.CMS.NotLicensed || !cfg.CMS.AnswerUnasked || cfg.CMS.RefuseSignatures {
		t.Fatalf("config %+v", cfg)
	}
	refused := cecsim.Replay{CMS: &cecsim.ReplayCMS{Refused: true}}
	if cfg, err = refused.Apply(cecsim.Config{}); err != nil || !cfg.CMS.RefuseSignatures {
		t.Fatalf("refused: %v %+v", err, cfg.CMS)
	}
	refusedClient := cecsim.Replay{CMS: &cecsim.ReplayCMS{RefusedClient: true}}
	if cfg, err = refusedClient.Apply(cecsim.Config{}); err != nil || !cfg.CMS.RefuseClient || cfg.CMS.RefuseSignatures {
		t.Fatalf("refused client: %v %+v", err, cfg.CMS)
	}
	for _, bad := range []cecsim.Replay{{AuthMode: "sometimes"}, {NoCall: "code"}, {EmptyPoll: "[]"}, {LongPollHold: "soon"},
		{CMS: &cecsim.ReplayCMS{Timestamp: "minutes"}}} {
		if _, err := bad.Apply(cecsim.Config{}); !errors.Is(err, cecsim.ErrBadReplay) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, err := cecsim.ReadReplay(t.TempDir()); !errors.Is(err, cecsim.ErrBadReplay) {
		t.Errorf("missing file: %v", err)
	}
}
