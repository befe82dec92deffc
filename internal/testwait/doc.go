// Package testwait is the one way tests in this module wait: poll a
// condition until it holds or a deadline passes, never sleep for a guessed
// time. It is imported by tests only.
package testwait
