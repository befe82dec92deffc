package configs

import (
	"fmt"
	"net/url"
	"slices"
	"time"
)

// CMS is a tenant's access to the CC-CMS monitoring interfaces (C2 AK/SK
// signing, see reference/cec-cms.md). With it the bridge can ask about
// thousands of agents per request; without it (a nil Tenant.CMS) it polls
// agents one by one.
type CMS struct {
	URL    string   `yaml:"url"`     // e.g. https://cms.example.com:28443
	AK     Secret   `yaml:"ak"`      // access key
	AKFile string   `yaml:"ak_file"` // or read from a file
	SK     Secret   `yaml:"sk"`      // secret key
	SKFile string   `yaml:"sk_file"`
	CCID   int      `yaml:"cc_id"` // call center ID, 1-65535
	VDNs   []CMSVDN `yaml:"vdns"`
	// SignedHeaders and Timestamp select the C2 signing variant, which
	// public sources disagree on; the defaults are the vendor demo's.
	SignedHeaders []string `yaml:"signed_headers"` // host, content-type, content-length (default [host])
	Timestamp     string   `yaml:"timestamp"`      // seconds (default) or milliseconds
	Concurrency   int      `yaml:"concurrency"`    // chunk requests of one sweep in flight (default 8)
	// Confirm asks for one allcallinfoEx before publishing a change a sweep
	// found.
	Confirm bool `yaml:"confirm"`
	// Lag is how far CMS data is known to trail the gateway; a sweep's
	// observation is dated that much before its answer.
	Lag time.Duration `yaml:"lag"`
}

// CMSVDN is one VDN of the tenant and the agents in it: every CMS request
// names one ccId and one VDN.
type CMSVDN struct {
	VDN int `yaml:"vdn"` // 1-5000
	// WorkNos are the agents in this VDN ("1001-5000,6000"); "" means every
	// agent no other VDN lists (at most one VDN may leave it empty).
	WorkNos string `yaml:"work_nos"`
}

// Timestamp precisions of CMS.Timestamp.
const (
	CMSTimestampSeconds = "seconds"
	CMSTimestampMillis  = "milliseconds"
)

// cmsSignable are the headers a C2 signature may cover.
var cmsSignable = []string{"host", "content-type", "content-length"}

// Covers parses WorkNos into a membership test; nil means every agent no
// other VDN covers.
func (v CMSVDN) Covers() (func(int) bool, error) { return parseRanges(v.WorkNos) }

func (c *CMS) setDefaults() {
	if len(c.SignedHeaders) == 0 {
		c.SignedHeaders = []string{"host"}
	}
	setIf(&c.Timestamp, CMSTimestampSeconds)
	setIf(&c.Concurrency, 8)
}

func (c *CMS) applyEnv(env Env, tenant string) {
	if v, ok := env(envName(tenant, "CMS_URL")); ok {
		c.URL = v
	}
	if v, ok := env(envName(tenant, "CMS_AK")); ok {
		c.AK, c.AKFile = Secret(v), ""
	}
	if v, ok := env(envName(tenant, "CMS_SK")); ok {
		c.SK, c.SKFile = Secret(v), ""
	}
}

func (c *CMS) validate(p string, bad func(path, format string, args ...any)) {
	if u, err := url.Parse(c.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		bad(p+".url", "expected an https URL such as https://cms.example.com:28443, got %q", c.URL)
	}
	if c.AK == "" {
		bad(p+".ak", "is required (or ak_file, or the environment)")
	}
	if c.SK == "" {
		bad(p+".sk", "is required (or sk_file, or the environment)")
	}
	if c.CCID < 1 || c.CCID > 65535 {
		bad(p+".cc_id", "must be 1-65535, got %d", c.CCID)
	}
	if len(c.VDNs) == 0 {
		bad(p+".vdns", "at least one VDN is required")
	}
	seen := map[int]bool{}
	catchAll := 0
	for i, v := range c.VDNs {
		vp := fmt.Sprintf("%s.vdns[%d]", p, i)
		if v.VDN < 1 || v.VDN > 5000 {
			bad(vp+".vdn", "must be 1-5000, got %d", v.VDN)
		} else if seen[v.VDN] {
			bad(vp+".vdn", "VDN %d is configured twice", v.VDN)
		}
		seen[v.VDN] = true
		covers, err := v.Covers()
		if err != nil {
			bad(vp+".work_nos", "expected ranges such as 1001-2000,3000, got %q", v.WorkNos)
		} else if covers == nil {
			if catchAll++; catchAll == 2 {
				bad(vp+".work_nos", "only one VDN may leave work_nos empty (every other agent)")
			}
		}
	}
	for i, h := range c.SignedHeaders {
		if !slices.Contains(cmsSignable, h) {
			bad(fmt.Sprintf("%s.signed_headers[%d]", p, i), "must be one of host, content-type, content-length (lower case), got %q", h)
		}
	}
	if !slices.Contains(c.SignedHeaders, "host") {
		bad(p+".signed_headers", "must include host: every known variant signs it")
	}
	if c.Timestamp != CMSTimestampSeconds && c.Timestamp != CMSTimestampMillis {
		bad(p+".timestamp", "must be seconds or milliseconds, got %q", c.Timestamp)
	}
	if c.Concurrency < 1 {
		bad(p+".concurrency", "must be positive")
	}
	if c.Lag < 0 || c.Lag > time.Minute {
		bad(p+".lag", "must be between 0 and 1m, got %s", c.Lag)
	}
}
