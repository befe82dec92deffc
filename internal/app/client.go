package app

import (
	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/poller/cec"
)

// ClientConfig is the vendor client configuration of tenant tc: endpoints,
// credentials, timeouts, TLS, no-call codes and the request budget. The
// caller adds its Observer and Logger. cecbridge probe uses it too, so
// that it asks the tenant the way the bridge does.
func ClientConfig(tc configs.Tenant) cec.Config {
	ccfg := cec.Config{
		FabricURL:          tc.FabricURL,
		TokenURL:           tc.TokenURL,
		GatewayURL:         tc.GatewayURL,
		AppKey:             tc.AppKey,
		AppSecret:          cec.Secret(tc.AppSecret.Reveal()),
		TokenLifetime:      tc.TokenLifetime,
		RequestTimeout:     tc.Timeout,
		CAFile:             tc.TLS.CAFile,
		InsecureSkipVerify: tc.TLS.InsecureSkipVerify,
		NoCallCodes:        tc.NoCallCodes,
	}
	if tc.Budget > 0 {
		// One budget for every query of the tenant, polls and live lookups
		// alike; NewBudget keeps the burst at 1 or more, since a burst below
		// 1 would refuse every request and the tenant would never poll.
		ccfg.Limiter = cec.NewBudget(tc.Budget, tc.Burst)
	}
	return ccfg
}
