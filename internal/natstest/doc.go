// Package natstest runs embedded nats-servers with JetStream for tests:
// random client ports, stores in temporary directories, no logging, no
// signal handlers, and restarts that come back on the same ports and store
// directories so that clients with reconnect enabled find them again.
//
// One server:
//
//	s := natstest.RunServer(t)
//	nc := s.Connect(t)          // closed at test end
//	js := natstest.JetStream(t, nc)
//	s.Restart()                 // same port, same store dir
//
// A three-node JetStream cluster (routes between all nodes, a meta leader
// elected before RunCluster returns):
//
//	c := natstest.RunCluster(t)
//	nc := c.Connect(t)          // knows every node's URL
//	i := c.WaitStreamLeader(t, "CEC_EVENTS")
//	c.Kill(i)                   // the stream elects another leader
//	c.Restart(t, i)             // same ports, same store dir
//
// StartCluster is the same cluster without a testing.TB. FixedPorts picks
// the ports of servers that restart on them (the bench command's server
// processes).
package natstest
