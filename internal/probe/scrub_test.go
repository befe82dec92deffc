package probe

import (
	"encoding/json"
	"strings"
	"testing"
)

// Personal data becomes stable pseudonyms of the same shape (a number
// stays a number of as many digits), credentials become [redacted] and
// are then cut out wherever else they turn up, a GUID becomes the same
// stand-in of its form wherever it turns up, and member order stays.
func TestScrubberPseudonymisesStablyAndRedacts(t *testing.T) {
	s := newScrubber()
	body := `{"retcode":"0","event":{"eventType":"AgentEvent_Talking","workNo":"1002",` +
		`"content":{"caller":"13800138000","called":88881002,"callid":"1700000000-42","accountCode":"alice"}},` +
		`"guid":"3f2c9a1e-1b2c-4d5e-8f90-112233445566.AgentGateway1","sipPwd":12345}`
	out, err := s.json([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, gone := range []string{"13800138000", "88881002", "alice", "3f2c9a1e", "12345"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q survived: %s", gone, got)
		}
	}
	var v struct {
		Event struct {
			WorkNo  string `json:"workNo"`
			Content struct {
				Caller  string      `json:"caller"`
				Called  json.Number `json:"called"`
				CallID  string      `json:"callid"`
				Account string      `json:"accountCode"`
			} `json:"content"`
		} `json:"event"`
		GUID   string `json:"guid"`
		SIPPwd string `json:"sipPwd"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("scrubbed body is not JSON of the same shape: %v\n%s", err, got)
	}
	c := v.Event.Content
	if len(c.Caller) != 11 || strings.Trim(c.Caller, "0123456789") != "" || len(c.Called.String()) != 8 {
		t.Errorf("pseudonyms changed shape: caller %q, called %q", c.Caller, c.Called)
	}
	if c.CallID != "1700000000-42" || v.Event.WorkNo != "1002" {
		t.Errorf("call ID or work number changed: %+v", v.Event)
	}
	const standIn = "00000000-0000-4000-8000-000000000001.AgentGateway1"
	if !strings.HasPrefix(c.Account, "account-") || v.GUID != standIn || v.SIPPwd != redacted {
		t.Errorf("account %q, guid %q, sipPwd %q", c.Account, v.GUID, v.SIPPwd)
	}
	if !strings.HasPrefix(got, `{"retcode":"0","event":{"eventType"`) {
		t.Errorf("member order changed: %s", got)
	}
	// Stable: the same number gets the same pseudonym in the next body,
	// the same GUID the same stand-in in free text, and a redacted value
	// is cut out of free text too.
	again, _ := s.json([]byte(`{"number":"13800138000","message":"guid 3f2c9a1e-1b2c-4d5e-8f90-112233445566.AgentGateway1 expired, pwd 12345"}`))
	if !strings.Contains(string(again), `"number":"`+c.Caller+`"`) || !strings.Contains(string(again), "guid "+standIn+" expired") ||
		strings.Contains(string(again), "12345") {
		t.Errorf("second body: %s", again)
	}
	// Set-GUID keeps its form with the same stand-in.
	if h := s.setGUID("JSESSIONID=3f2c9a1e-1b2c-4d5e-8f90-112233445566.AgentGateway1"); h != "JSESSIONID="+standIn {
		t.Errorf("Set-GUID became %q", h)
	}
	// A body that is not JSON is kept as scrubbed text.
	if txt := string(s.body([]byte("<html>caller 13800138000, token 3f2c9a1e-1b2c-4d5e-8f90-112233445566.AgentGateway1</html>"))); strings.Contains(txt, "13800138000") || strings.Contains(txt, "3f2c9a1e") {
		t.Errorf("text body: %s", txt)
	}
}
