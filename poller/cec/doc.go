// Package cec is a typed client for the Huawei Cloud Customer Engagement
// Center APIs the bridge depends on: the API Fabric configuration queries
// (Bearer token from tokenByAkSk) and the CC-Gateway agent interfaces (GUID
// sessions kept alive by long-polling the agent event queue).
//
// The vendor is loose and under-documented, so the client is deliberately
// tolerant on input (numbers as strings and strings as numbers, optional
// fields missing, several shapes for "nothing") and strict on meaning: a
// query that could not be answered is always an error, never an empty result.
// Every failure is an [*Error] whose class is one of the package sentinels,
// matched with [errors.Is].
//
// Credentials, tokens, GUIDs and softphone passwords are held as [Secret] or
// kept private, and are scrubbed from every error string and log record.
//
// An [Observer] that is also a [FactObserver] hears the facts the bridge's
// configuration rests on (tokens granted, return codes the client has no
// meaning for). Tools that must see the vendor's answers unsmoothed
// (cecbridge probe) use the one-shot operations: [Client.FetchToken],
// [Client.TryToken], [Session.SignInOnce], [Session.PollOnce] and
// [Session.SignOut].
package cec
