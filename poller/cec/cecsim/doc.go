// Package cecsim simulates one Huawei Cloud CEC tenant over real HTTP: the
// tokenByAkSk endpoint, the API Fabric queries, the CC-Gateway agent
// interfaces and the CC-CMS monitoring interfaces, all on one listener,
// plus a control API for tests. It follows
// reference/cec-api.md and reproduces the vendor's rough edges rather than a
// happy path: tokens that expire, GUIDs that rotate, sessions reaped after a
// silent NoPollTimeout, string/number looseness, the return-code catalogue,
// and the documentation's gaps as switches (NoCallMode, EmptyPollMode,
// ExpiredTokenStatus/Body/NoBody, FlatRegServ, NoLoginEx, the CMS signing
// variant, a CMS that refuses the client). [Replay] takes them, and the shape of the world, from a
// capture of a real tenant.
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
// Calls have a status and a direction. A call starts alerting (ringing),
// is answered (talking) or released unanswered, may be held and taken back,
// and is released; the truth records each step (call_added with the first
// status in After and the Direction, call_status with Before and After,
// call_removed with the last status in Before), so a scorer can measure how
// soon "alerting" reached the stream. An agent's CTI state follows from
// its presence and calls: 0 not signed in, 1 idle, 4 answering (only
// ringing calls), 5 talking; its time in state runs from the change that
// set it. Agent states are not recorded separately: they are a function of
// the recorded changes.
//
// # Vendor paths
//
//	POST   /apigovernance/api/oauth/tokenByAkSk                     token
//	GET    /apiaccess/CC-Management/v1/queryAgentInfo              queryAgentInfo
//	POST   /apiaccess/CC-Management/v2/mobileAgent/queryPhone      queryPhone
//	POST   /apiaccess/rest/CC-Management/v1/queryAgentInfoByAccount queryAgentInfoByAccount
//	PUT    /agentgateway/resource/onlineagent/{id}                 login
//	PUT    /agentgateway/resource/onlineagent/{id}/loginex         loginex
//	PUT    /agentgateway/resource/onlineagent/{id}/forcelogin      forcelogin
//	DELETE /agentgateway/resource/onlineagent/{id}/logout          logout
//	PUT    /agentgateway/resource/onlineagent/{id}/updateGuid      updateGuid
//	GET    /agentgateway/resource/onlineagent/{id}/agentstatus     agentstatus
//	GET    /agentgateway/resource/agentevent/{id}                  agentevent
//	GET    /agentgateway/resource/calldata/{id}/allcallinfoEx/{w}  allcallinfoEx
//	GET    /agentgateway/resource/calldata/{id}/callinfobycallid/{c} callinfobycallid
//	POST   /rest/cmsapp/v1/openapi/agentgroup/queryagentcalls      queryagentcalls
//	POST   /rest/cmsapp/v1/openapi/agentgroup/agentstatusinfobyagentids agentstatusinfobyagentids
//	POST   /rest/cmsapp/v1/openapi/vdn/totalagentstate             totalagentstate
//
// The right-hand names are the endpoint names of [Fault] and [Sim.Counters].
// API Fabric calls need "Authorization: Bearer <AccessToken>"; a missing,
// unknown, expired or revoked token gets ExpiredTokenStatus with
// ExpiredTokenBody (typed JSON or text by what it is), or with no body at
// all under ExpiredTokenNoBody. Gateway calls answer HTTP 200 with {message, retcode,
// result|event}; the GUID travels in the Guid request header, bare or as
// "JSESSIONID=<guid>". No session (or a reaped one) gives 100-006; a wrong,
// superseded-and-lapsed or invalidated GUID gives 000-003. In dynamic mode a
// new GUID is issued once GUIDInterval has passed and is delivered in
// Set-GUID on an agentevent answer; the previous one keeps working for
// GUIDTimeout after that, and polls that still use it are sent Set-GUID
// again. Logout of an agent whose roster self holds calls gets 100-010.
// [Sim.SignIns] counts each agent's API sign-ins and [Sim.LiveSessions]
// lists the sessions signed in now: with the forcelogin counter, what a
// read-only client left behind.
//
// # CC-CMS
//
// A CMS that refuses the client (Config.CMS.RefuseClient, or the control
// API), as for a host outside the tenant's IP whitelist, answers every
// CMS call HTTP 403 with a small JSON body and no CMS envelope (sources
// give the status only), before anything else below is looked at.
// Otherwise CMS calls need a C2 signature (reference/cec-cms.md): "Authorization:
// auth-v2/AK/timestamp/signed-headers/signature" with Config.CMS.AK and SK,
// a timestamp to the second or the millisecond within Config.CMS.ClockSkew
// of the simulator's clock, and "host" among the signed headers. With
// Config.CMS.SignedHeaders or Timestamp set, only that variant is accepted
// (sources disagree on which one CMS wants); Config.CMS.RefuseSignatures
// refuses them all, as for a wrong AK/SK. A missing,
// malformed or wrong signature, an unknown AK or a skewed clock gets HTTP
// 401, whose body echoes the refused Authorization as some gateways do
// (a client must not copy it into errors or logs). Then, in this order:
// an unlicensed CMS (Config.CMS.NotLicensed, or the control API) answers
// resultCode 0100003 to every call; a ccId other than Config.CMS.CCID, a
// vdn outside 1-5000, an empty agentIds, an ID outside 101-999999, or more
// than 3,000 IDs (queryagentcalls) or 6,000 (agentstatusinfobyagentids)
// answers 0100002. Success is resultCode 0100000 with the list in
// resultDesc, duplicated in resultDatas, and the legacy result "0".
//
// Answers list the asked agents of the request's VDN in descending work
// number order, never the request's; agents of another VDN and unknown ones
// are left out, and Config.CMS.AnswerUnasked adds an entry for an agent
// nobody asked about, as the vendor's sample does. queryagentcalls gives
// each agent's callList ([] for none) of {callId, callStatus (4 alerting, 5
// talking, 6 held), callInOut (0 in, 1 out), mediaType 5};
// agentstatusinfobyagentids gives currentState, currentStateTime (seconds),
// prevState, prevStateTime, logonTime (epoch ms, 4294967295000 when not
// signed in) and fixed currentStateReason, locationId, agentRelease and
// currentPrivateCallNum; totalagentstate gives {agentId, state} for the
// whole VDN, or HTTP 404 with Config.CMS.NoTotalAgentState (CTI 3.6).
// LooseTypes applies to the numbers.
//
// CMS answers from its own view of the world, which applies each recorded
// change once it is Config.CMS.Lag old ([Sim.SetCMSLag] changes it while
// running). With no lag, CMS names exactly the calls allcallinfoEx names.
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
//	GET    /cecsim/cms                       CMSSettings: {"lag":"0s","licensed":true,"client_refused":false}
//	POST   /cecsim/cms                       change the fields given, e.g. {"lag":"2s"}, {"licensed":false} or {"client_refused":true}
//
// Fault kinds in JSON: latency (with "latency":"250ms"), http_status,
// garbled, truncated, throttle, vendor_code (with "code"). They apply to
// every endpoint name above, the CMS ones included (throttle: HTTP 429;
// vendor_code: the CMS resultCode). http_status, throttle and vendor_code
// refuse the request before it is processed (before the C2 check, for CMS);
// garbled and truncated corrupt a real answer after it was produced, so an
// event taken by a corrupted poll is lost, as on a real network. Truncated
// promises the full Content-Length, sends half and drops the connection.
// Script actions: start_call (optional call_status, default "alerting", and
// direction, default "inbound"), set_call_status (call_id, call_status:
// alerting, talking or held), end_call (call_id), sign_in, sign_out,
// set_softphone (sip_account, account_code), set_phone_status (phone_num,
// status), add_agent, remove_agent.
//
// # Workload
//
// With Workload.Enabled one goroutine advances a min-heap of scheduled events
// on a 20 ms ticker: tenant-wide Poisson call arrivals spread over signed-in
// agents, exponential call durations, each call's ring, answer and hold
// (Workload.MeanAlerting, HoldShare, MeanHold; OutboundShare of calls go
// out; drawn from a generator of their own, so adding them left a seed's
// arrivals and durations as they were), sign-in/out, softphone rebinds
// ("8888<n>" <-> "8887<n>"), phone suspensions that re-register about 30 s
// later, and roster additions/removals. Event times are virtual offsets
// drawn from the seeded generator, so for a given seed the sequence of
// workload changes is the same on every run (wall-clock timestamps and the
// unix prefix of call IDs differ). [Sim.StopWorkload] freezes the world
// for a final comparison.
package cecsim
