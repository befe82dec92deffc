// Package finalstate compares the state a stored history ends in with the
// simulator's world. Tests and cecbench use it after runs that kill servers
// or processes, to show that no change was lost and none made up; the
// history rules themselves (duplicates, forks, holes, broken links) are
// audit.Checker's (package github.com/cecbridge/cecbridge/audit).
//
// [OfHistory] is the state a tenant's history ends in (the last event of
// every entity subject; a delete removes the entity), [OfSim] the
// simulator's current world, and [Diff] lists where they differ: a change
// that never reached the stream, or one that should not be there.
package finalstate
