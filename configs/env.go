package configs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Environment overrides and secret files: what a deployment sets outside
// the YAML.

func envName(parts ...string) string {
	s := "CECBRIDGE_" + strings.Join(parts, "_")
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

func (b *Bridge) applyEnv(env Env) {
	if env == nil {
		return
	}
	if v, ok := env("CECBRIDGE_NATS_URLS"); ok && v != "" {
		b.NATS.URLs = strings.Split(v, ",")
	}
	if v, ok := env("CECBRIDGE_NATS_USER"); ok {
		b.NATS.User = v
	}
	// A secret from the environment wins over the file the YAML names.
	if v, ok := env("CECBRIDGE_NATS_PASSWORD"); ok {
		b.NATS.Password, b.NATS.PasswordFile = Secret(v), ""
	}
	if v, ok := env("CECBRIDGE_NATS_TOKEN"); ok {
		b.NATS.Token, b.NATS.TokenFile = Secret(v), ""
	}
	for i := range b.Tenants {
		t := &b.Tenants[i]
		for suffix, dst := range map[string]*string{
			"FABRIC_URL": &t.FabricURL, "TOKEN_URL": &t.TokenURL,
			"GATEWAY_URL": &t.GatewayURL, "APP_KEY": &t.AppKey,
		} {
			if v, ok := env(envName(t.Name, suffix)); ok {
				*dst = v
			}
		}
		if v, ok := env(envName(t.Name, "APP_SECRET")); ok {
			t.AppSecret, t.AppSecretFile = Secret(v), ""
		}
		for j := range t.Monitors {
			m := &t.Monitors[j]
			if v, ok := env(envName(t.Name, "MONITOR", strconv.Itoa(m.AgentID), "PASSWORD")); ok {
				m.Password, m.PasswordFile = Secret(v), ""
			}
		}
		if t.CMS != nil {
			t.CMS.applyEnv(env, t.Name)
		}
	}
}

// readSecretFiles fills secrets from their _file twins.
func (b *Bridge) readSecretFiles() Problems {
	var ps Problems
	read := func(path string, dst *Secret, file string) {
		if file == "" {
			return
		}
		if *dst != "" {
			ps = append(ps, Problem{path, "give the secret or its _file, not both"})
			return
		}
		data, err := os.ReadFile(file)
		if err != nil {
			ps = append(ps, Problem{path + "_file", "cannot read: " + err.Error()})
			return
		}
		*dst = Secret(strings.TrimRight(string(data), "\r\n"))
	}
	read("nats.password", &b.NATS.Password, b.NATS.PasswordFile)
	read("nats.token", &b.NATS.Token, b.NATS.TokenFile)
	for i := range b.Tenants {
		t := &b.Tenants[i]
		read(fmt.Sprintf("tenants[%d].app_secret", i), &t.AppSecret, t.AppSecretFile)
		for j := range t.Monitors {
			m := &t.Monitors[j]
			read(fmt.Sprintf("tenants[%d].monitors[%d].password", i, j), &m.Password, m.PasswordFile)
		}
		if c := t.CMS; c != nil {
			read(fmt.Sprintf("tenants[%d].cms.ak", i), &c.AK, c.AKFile)
			read(fmt.Sprintf("tenants[%d].cms.sk", i), &c.SK, c.SKFile)
		}
	}
	return ps
}
