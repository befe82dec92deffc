package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cecbridge/cecbridge/configs"
)

// The cluster profile of docker-compose.yml: three NATS servers with
// JetStream, each routed to all three under one cluster name, with its own
// name and store; two bridges on them whose configuration names every
// server and replicates streams and leases on all of them, each with its
// own spool, signed in to the shared simulator as a monitor the
// single-node bridge does not use. The single-node stack has no profile,
// so `docker compose up` is unchanged.
func TestComposeClusterProfileAgrees(t *testing.T) {
	dc := readCompose(t)
	var nodes, bridges []string
	for name, svc := range dc.Services {
		switch {
		case !slices.Contains(svc.Profiles, "cluster"):
			if len(svc.Profiles) > 0 {
				t.Errorf("service %s has profiles %v", name, svc.Profiles)
			}
		case strings.HasPrefix(name, "nats-"):
			nodes = append(nodes, name)
		case strings.HasPrefix(name, "cecbridge-"):
			bridges = append(bridges, name)
		default:
			t.Errorf("cluster profile service %s is neither a NATS node nor a bridge", name)
		}
	}
	slices.Sort(nodes)
	slices.Sort(bridges)
	if len(nodes) != 3 || len(bridges) != 2 {
		t.Fatalf("cluster profile: NATS nodes %v, bridges %v; want 3 and 2", nodes, bridges)
	}
	for _, name := range []string{"nats", "cecsim", "cecbridge"} {
		if _, ok := dc.Services[name]; !ok {
			t.Errorf("the single-node stack lost its %s service", name)
		}
	}

	// The NATS nodes.
	clusterName, clusterPort := "", ""
	storeVolumes := map[string]bool{}
	for _, n := range nodes {
		svc := dc.Services[n]
		cmd := svc.Command
		if !slices.Contains(cmd, "-js") || flagValue(cmd, "--name") != n {
			t.Errorf("%s: command %v wants -js and --name %s", n, cmd, n)
		}
		if p := flagValue(cmd, "-p") + flagValue(cmd, "--port"); p != "" {
			t.Errorf("%s: client port moved to %s; the configuration expects 4222", n, p)
		}
		cn := flagValue(cmd, "--cluster_name")
		if clusterName == "" {
			clusterName = cn
		}
		if cn == "" || cn != clusterName {
			t.Errorf("%s: cluster name %q, others %q", n, cn, clusterName)
		}
		cu, err := url.Parse(flagValue(cmd, "--cluster"))
		if err != nil || cu.Port() == "" {
			t.Fatalf("%s: --cluster %q", n, flagValue(cmd, "--cluster"))
		}
		if clusterPort == "" {
			clusterPort = cu.Port()
		}
		var routes []string
		for r := range strings.SplitSeq(flagValue(cmd, "--routes"), ",") {
			ru, err := url.Parse(strings.TrimSpace(r))
			if err != nil || ru.Port() != clusterPort {
				t.Errorf("%s: route %q not on the cluster port %s", n, r, clusterPort)
				continue
			}
			routes = append(routes, ru.Hostname())
		}
		slices.Sort(routes)
		if !slices.Equal(routes, nodes) {
			t.Errorf("%s routes to %v, want every node %v", n, routes, nodes)
		}
		store := flagValue(cmd, "-sd")
		mounted := false
		for _, v := range svc.Volumes {
			if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == store {
				mounted = true
				if _, ok := dc.Volumes[parts[0]]; !ok || storeVolumes[parts[0]] {
					t.Errorf("%s: store volume %s undeclared or shared", n, parts[0])
				}
				storeVolumes[parts[0]] = true
			}
		}
		if store == "" || !mounted {
			t.Errorf("%s: JetStream store %q is not a volume", n, store)
		}
		if len(svc.Healthcheck.Test) == 0 {
			t.Errorf("%s has no health check", n)
		}
	}

	// The bridges.
	single, err := os.ReadFile(filepath.Join(repoRoot, "configs", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	singleCfg, err := configs.Load(bytes.NewReader(single), func(k string) (string, bool) {
		v, ok := dc.Services["cecbridge"].Environment[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	spools, hostPorts, names := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, b := range bridges {
		svc := dc.Services[b]
		// The instance name defaults to the host name: a fixed one per
		// bridge lets a recreated container resume its own leases.
		if svc.Hostname == "" || names[svc.Hostname] {
			t.Errorf("%s: hostname %q; want one of its own (the instance name)", b, svc.Hostname)
		}
		names[svc.Hostname] = true
		cfgPath := flagValue(svc.Command, "--config")
		var mountedFrom string
		for _, v := range svc.Volumes {
			if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == cfgPath {
				mountedFrom = parts[0]
			}
		}
		if svc.Command[0] != "run" || mountedFrom != "./configs/cluster.yaml" {
			t.Fatalf("%s runs %v with %q mounted from %q; want configs/cluster.yaml", b, svc.Command, cfgPath, mountedFrom)
		}
		data, err := os.ReadFile(filepath.Join(repoRoot, mountedFrom))
		if err != nil {
			t.Fatal(err)
		}
		read := map[string]bool{}
		cfg, err := configs.Load(bytes.NewReader(data), func(k string) (string, bool) {
			read[k] = true
			v, ok := svc.Environment[k]
			return v, ok
		})
		if err != nil {
			t.Fatalf("%s: configs/cluster.yaml with the compose environment: %v", b, err)
		}
		if cfg.Instance != "" {
			t.Errorf("%s: configs/cluster.yaml names the instance %q for both bridges; leave it to the host name", b, cfg.Instance)
		}
		for k := range svc.Environment {
			if strings.HasPrefix(k, "CECBRIDGE_") && !read[k] {
				t.Errorf("%s: compose sets %s, which configs.Load never reads", b, k)
			}
		}
		var hosts []string
		for _, u := range cfg.NATS.URLs {
			pu, err := url.Parse(u)
			if err != nil || pu.Port() != "4222" {
				t.Errorf("%s: nats url %s", b, u)
				continue
			}
			hosts = append(hosts, pu.Hostname())
		}
		slices.Sort(hosts)
		if !slices.Equal(hosts, nodes) {
			t.Errorf("%s: nats urls name %v, want every node %v", b, hosts, nodes)
		}
		if cfg.Streams.Replicas != len(nodes) || cfg.Lease.Replicas != len(nodes) || cfg.Lease.Disabled {
			t.Errorf("%s: streams.replicas %d, lease.replicas %d (disabled %v); want %d on a %d-node cluster",
				b, cfg.Streams.Replicas, cfg.Lease.Replicas, cfg.Lease.Disabled, len(nodes), len(nodes))
		}
		for _, dep := range append(slices.Clone(nodes), "cecsim") {
			if _, ok := svc.DependsOn[dep]; !ok {
				t.Errorf("%s does not depend on %s", b, dep)
			}
		}
		for _, tn := range cfg.Tenants {
			for _, u := range []string{tn.FabricURL, tn.GatewayURL} {
				if pu, err := url.Parse(u); err != nil || pu.Hostname() != "cecsim" || pu.Port() != "8090" {
					t.Errorf("%s: tenant %s url %s, want the cecsim service on 8090", b, tn.Name, u)
				}
			}
			for _, m := range tn.Monitors {
				for _, st := range singleCfg.Tenants {
					for _, sm := range st.Monitors {
						if sm.AgentID == m.AgentID {
							t.Errorf("%s signs in as monitor %d, as the single-node bridge does on the same simulator", b, m.AgentID)
						}
					}
				}
			}
		}
		listen := cfg.HTTP.Listen[strings.LastIndex(cfg.HTTP.Listen, ":")+1:]
		if !slices.Contains(containerPorts(svc.Ports), listen) {
			t.Errorf("%s: http.listen port %s not published (%v)", b, listen, svc.Ports)
		}
		for _, p := range svc.Ports {
			host := p[:strings.LastIndex(p, ":")]
			if hostPorts[host] {
				t.Errorf("%s: host port %s published twice", b, host)
			}
			hostPorts[host] = true
		}
		for _, v := range svc.Volumes {
			if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == cfg.Publisher.SpoolDir {
				if _, ok := dc.Volumes[parts[0]]; !ok || spools[parts[0]] {
					t.Errorf("%s: spool volume %s undeclared or shared with the other bridge", b, parts[0])
				}
				spools[parts[0]] = true
			}
		}
		if len(svc.Healthcheck.Test) < 3 || svc.Healthcheck.Test[2] != "health" {
			t.Errorf("%s: health check %v", b, svc.Healthcheck.Test)
		}
	}
	if len(spools) != len(bridges) {
		t.Errorf("bridges' spools %v: each bridge needs a volume of its own", spools)
	}
}
