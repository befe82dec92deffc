// Package devstack runs the whole dev stack inside a test: an embedded
// NATS server with JetStream (natstest), the simulated CEC over real HTTP
// (cecsim) and a bridge polling it with short intervals, as `cecbridge
// dev` wires them. Examples and end-to-end tests run against it:
//
//	st := devstack.Start(t, cecsim.Config{Agents: 6})
//	nc := st.NATS.Connect(t)
//	id, _ := st.Sim.StartCall(1003)
//
// Everything stops at the end of the test, the bridge first.
package devstack
