package probe_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/probe"
)

// Every key the probe suggests applies, also when read back from a JSON
// report, without changing the caller's cms block; a cms key for a tenant
// without one, and a value of the wrong type, are errors.
func TestApplyTakesEverySuggestedKey(t *testing.T) {
	suggested := []probe.Suggestion{
		{Key: "no_call_codes", Value: []string{"900-002"}},
		{Key: "token_lifetime", Value: "2m0s"},
		{Key: "cms.signed_headers", Value: []string{"content-length", "content-type", "host"}},
		{Key: "cms.timestamp", Value: configs.CMSTimestampMillis},
		{Key: "cms.confirm", Value: true},
	}
	b, err := json.Marshal(suggested)
	if err != nil {
		t.Fatal(err)
	}
	var decoded []probe.Suggestion
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	for name, list := range map[string][]probe.Suggestion{"as suggested": suggested, "from JSON": decoded} {
		base := configsFor("apply", "http://127.0.0.1:1")
		base.CMS = simCMS("cms-sk")
		tc, err := probe.Apply(base, list)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(tc.NoCallCodes, []string{"900-002"}) || tc.TokenLifetime.String() != "2m0s" ||
			len(tc.CMS.SignedHeaders) != 3 || tc.CMS.Timestamp != configs.CMSTimestampMillis || !tc.CMS.Confirm {
			t.Errorf("%s: applied %+v, cms %+v", name, tc, *tc.CMS)
		}
		if base.CMS.Confirm || base.CMS.Timestamp != configs.CMSTimestampSeconds {
			t.Errorf("%s: the caller's cms block changed: %+v", name, *base.CMS)
		}
		// The table prints them as YAML to paste into the tenant's entry.
		pasted := pasteSuggestedConfig(t, base, &probe.Report{Tenant: "apply", Suggest: list})
		if !reflect.DeepEqual(pasted, tc) {
			t.Errorf("%s: the printed YAML pasted gives\n%+v (cms %+v)\nthe suggestions applied\n%+v (cms %+v)", name, pasted, *pasted.CMS, tc, *tc.CMS)
		}
	}
	if _, err := probe.Apply(configsFor("apply", "http://127.0.0.1:1"), suggested[2:3]); err == nil {
		t.Error("a cms suggestion applied to a tenant without CMS")
	}
	if _, err := probe.Apply(configsFor("apply", "http://127.0.0.1:1"), []probe.Suggestion{{Key: "no_call_codes", Value: "900-002"}}); err == nil {
		t.Error("no_call_codes took a string")
	}
}
