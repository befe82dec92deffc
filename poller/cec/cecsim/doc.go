// Package cecsim simulates one Huawei Cloud CEC tenant over real HTTP: the
// tokenByAkSk endpoint, the API Fabric queries and the CC-Gateway agent
// interfaces, all on one listener, plus a control API for tests. It follows
// reference/cec-api.md and reproduces the vendor's rough edges rather than a
// happy path: tokens that expire, GUIDs that rotate, sessions reaped after a
// silent NoPollTimeout, string/number looseness, the return-code catalogue,
// and the documentation's gaps as switches (NoCallMode, EmptyPollMode,
// ExpiredTokenStatus/Body, FlatRegServ).
//
// Use it like net/http/httptest:
//
//	sim, err := cecsim.New(cecsim.Config{Agents: 50, LongPollHold: 200 * time.Millisecond})
//	...
//	err = sim.Start(ctx) // listens on Config.Addr (default 127.0.0.1:0)
//	defer sim.Close()
//	base := sim.URL()    // http://127.0.0.1:PORT serves every path below
//
// # World
//
// Agents FirstWorkNo..FirstWorkNo+Agents-1 each have softphone number
// "8888<workNo>" (listed by queryPhone), a SIP password, and, for about nine in
// ten, business account "acct<workNo>". With AgentsPerVDN > 0 agents sit in
// consecutive VDN blocks, and gateway queries across VDNs fail with 000-002.
// Roster agents have a modelled presence (signed in or out) and calls; that
// presence is separate from API sessions: any roster agent ID may sign in
// over the gateway API with Config.AgentPassword, and the workload never
// removes an agent that holds an API session. Without a workload every agent
// starts signed in (unless Workload.SignedInShare says otherwise) and the
// world changes only by scripts.
//
// Every true change is appended to the ground truth ([Sim.Truth]) at the
// instant the simulator applies it, with a gap-free sequence number from 1.
// The initial world is not part of the truth; read it with [Sim.Agents],
// [Sim.Agent] and [Sim.Phones].
//
// # Vendor paths
//
//	POST   /apigovernance/api/oauth/tokenByAkSk                     token
//	GET    /apiaccess/CC-Management/v1/queryAgentInfo              queryAgentInfo
//	POST   /apiaccess/CC-Management/v2/mobileAgent/queryPhone      queryPhone
//	POST   /apiaccess/rest/CC-Management/v1/queryAgentInfoByAccount queryAgentInfoByAccount
//	PUT    /agentgateway/resource/onlineagent/{id}                 login
//	PUT    /agentgateway/resource/onlineagent/{id}/forcelogin      forcelogin
//	DELETE /agentgateway/resource/onlineagent/{id}/logout          logout
//	PUT    /agentgateway/resource/onlineagent/{id}/updateGuid      updateGuid
//	GET    /agentgateway/resource/onlineagent/{id}/agentstatus     agentstatus
//	GET    /agentgateway/resource/agentevent/{id}                  agentevent
//	GET    /agentgateway/resource/calldata/{id}/allcallinfoEx/{w}  allcallinfoEx
//	GET    /agentgateway/resource/calldata/{id}/callinfobycallid/{c} callinfobycallid
//
// The right-hand names are the endpoint names of [Fault] and [Sim.Counters].
// API Fabric calls need "Authorization: Bearer <AccessToken>"; a missing,
// unknown, expired or revoked token gets ExpiredTokenStatus with
// ExpiredTokenBody. Gateway calls answer HTTP 200 with {message, retcode,
// result|event}; the GUID travels in the Guid request header, bare or as
// "JSESSIONID=<guid>". No session (or a reaped one) gives 100-006; a wrong,
// superseded-and-lapsed or invalidated GUID gives 000-003. In dynamic mode a
// new GUID is issued once GUIDInterval has passed and is delivered in
// Set-GUID on an agentevent answer; the previous one keeps working for
// GUIDTimeout after that, and polls that still use it are sent Set-GUID
// again. Logout of an agent whose roster self holds calls gets 100-010.
//
// # Control API
//
// Under /cecsim/ on the same listener, JSON unless stated:
//
//	GET    /cecsim/truth?since=N             changes with seq > N, NDJSON
//	POST   /cecsim/faults                    body Fault, e.g. {"endpoint":"queryPhone","kind":"http_status","status":502,"count":1}; answers {"id":N}
//	DELETE /cecsim/faults                    clear all faults
//	POST   /cecsim/script                    body ScriptAction, e.g. {"action":"start_call","work_no":1522}; answers {"ok":true,"call_id":...}
//	POST   /cecsim/revoke-tokens             every issued token becomes invalid
//	POST   /cecsim/kick/{agentid}            sign the API session out (100-006 afterwards)
//	POST   /cecsim/invalidate-guid/{agentid} the session's GUID stops working (000-003)
//	GET    /cecsim/counters                  requests per endpoint name
//	GET    /cecsim/agents/{workNo}           AgentInfo (404 if unknown)
//	GET    /cecsim/phones                    every PhoneInfo in queryPhone order
//
// Fault kinds in JSON: latency (with "latency":"250ms"), http_status,
// garbled, truncated, throttle, vendor_code (with "code"). http_status,
// throttle and vendor_code refuse the request before it is processed;
// garbled and truncated corrupt a real answer after it was produced, so an
// event taken by a corrupted poll is lost, as on a real network. Truncated
// promises the full Content-Length, sends half and drops the connection.
// Script actions: start_call, end_call (call_id), sign_in, sign_out,
// set_softphone (sip_account, account_code), set_phone_status (phone_num,
// status), add_agent, remove_agent.
//
// # Workload
//
// With Workload.Enabled one goroutine advances a min-heap of scheduled events
// on a 20 ms ticker: tenant-wide Poisson call arrivals spread over signed-in
// agents, exponential call durations, sign-in/out, softphone rebinds
// ("8888<n>" <-> "8887<n>"), phone suspensions that re-register about 30 s
// later, and roster additions/removals. Event times are virtual offsets
// drawn from the seeded generator, so for a given seed the sequence of
// workload changes is the same on every run (wall-clock timestamps and the
// unix prefix of call IDs differ). [Sim.StopWorkload] freezes the world
// for a final comparison.
package cecsim
