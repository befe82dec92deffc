package app

import (
	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/poller/cec"
)

// NewCMS builds a tenant's CC-CMS client when its configuration has a cms
// block, and returns nil otherwise. It shares the tenant client's
// transport, request budget and upstream metrics; the tenant's poller
// sweeps the roster with it, and cecbridge probe checks it.
func NewCMS(client *cec.Client, c *configs.CMS) (*cec.CMS, error) {
	if c == nil {
		return nil, nil
	}
	cfg := cec.CMSConfig{
		URL:           c.URL,
		AK:            cec.Secret(c.AK.Reveal()),
		SK:            cec.Secret(c.SK.Reveal()),
		CCID:          c.CCID,
		SignedHeaders: c.SignedHeaders,
	}
	if c.Timestamp == configs.CMSTimestampMillis {
		cfg.Timestamp = cec.TimestampMillis
	}
	for _, v := range c.VDNs {
		covers, err := v.Covers()
		if err != nil {
			return nil, err
		}
		cfg.VDNs = append(cfg.VDNs, cec.VDN{ID: v.VDN, Covers: covers})
	}
	return client.NewCMS(cfg)
}
