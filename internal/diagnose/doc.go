// Package diagnose notices, while the bridge runs, when the vendor
// contradicts an assumption the configuration rests on, and says what to
// change: a return code that most agents' allcallinfoEx answers carry and
// nobody configured (idle agents then look not visible and ended calls go
// unreported), a token granted for less time than asked, a vendor clock
// far from ours, a CC-CMS that refuses the client's signature or the client
// itself (the roster is then not swept).
//
// It watches through the vendor client's Observer hook ([cec.Observer],
// with the facts of [cec.FactObserver] and the CMS refusals of
// [cec.RefusalObserver]): [Diagnoser.Tenant] wraps the observer a tenant's
// client reports to and passes every measurement on.
// Each finding is logged once with its fix, listed by [Diagnoser.Findings]
// (the bridge's /readyz detail) and exported as two metric families with
// bounded labels (tenant, assumption):
//
//	cecbridge_vendor_assumption_violated          1 while the finding stands
//	cecbridge_vendor_assumption_violations_total  answers that contradicted it
//
// A finding clears when the evidence goes away (a window of answers without
// the code, a token of the asked lifetime, clocks back in step, an answer
// from each CMS interface that refused).
package diagnose
