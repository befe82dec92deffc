package poller

// StatsAndRecount returns a tenant's Stats and the same figures counted
// from scratch by walking every agent and phone, from one hold of its lock.
var StatsAndRecount = (*Tenant).statsAndRecount
