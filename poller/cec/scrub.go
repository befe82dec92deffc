package cec

import (
	"regexp"
	"strings"
	"sync"
)

// secretKeyRE finds JSON members whose name says they hold a credential,
// whatever the value's type, including a value cut off by truncation.
var secretKeyRE = regexp.MustCompile(`(?i)("[a-z_]*(?:pwd|password|secret|token|guid)[a-z_]*"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]*)`)

// jsessionRE finds GUIDs written in Set-GUID form inside a body.
var jsessionRE = regexp.MustCompile(`(?i)JSESSIONID=[^;"\s,]*`)

// authV2RE finds a C2 Authorization value (AK, timestamp and signature)
// that a server echoed back.
var authV2RE = regexp.MustCompile(`(?i)auth-v2/[^\s"',;<>]*`)

// secretSet remembers secret values the client has handled (app secret,
// CMS AK/SK, tokens, GUIDs, agent passwords) so they can be cut out of any text taken
// from a response, even where they appear under an innocent key. Rotating
// values are kept in a bounded ring.
type secretSet struct {
	mu      sync.RWMutex
	fixed   []string
	ring    []string
	ringPos int
}

const secretRing = 64

func newSecretSet() *secretSet { return &secretSet{ring: make([]string, 0, secretRing)} }

func (s *secretSet) add(v string) {
	if len(v) < 3 { // too short to scrub without mangling ordinary text
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.fixed {
		if f == v {
			return
		}
	}
	s.fixed = append(s.fixed, v)
}

func (s *secretSet) addRotating(v string) {
	if len(v) < 3 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.ring {
		if f == v {
			return
		}
	}
	if len(s.ring) < secretRing {
		s.ring = append(s.ring, v)
		return
	}
	s.ring[s.ringPos] = v
	s.ringPos = (s.ringPos + 1) % secretRing
}

func (s *secretSet) scrub(text string) string {
	text = secretKeyRE.ReplaceAllString(text, `${1}"`+redacted+`"`)
	text = jsessionRE.ReplaceAllString(text, "JSESSIONID="+redacted)
	text = authV2RE.ReplaceAllString(text, "auth-v2/"+redacted)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, list := range [][]string{s.fixed, s.ring} {
		for _, v := range list {
			if strings.Contains(text, v) {
				text = strings.ReplaceAll(text, v, redacted)
			}
		}
	}
	return text
}

// excerpt returns at most excerptBytes of body with secrets removed. The
// scrub runs on a longer prefix first so a secret straddling the cut is
// still recognised as a whole.
func (c *Client) excerpt(body []byte) string {
	const window = 4096
	if len(body) > window {
		body = body[:window]
	}
	s := c.secrets.scrub(string(body))
	if len(s) > excerptBytes {
		s = s[:excerptBytes]
		// A cut may leave the first bytes of a secret; drop a trailing
		// fragment of any known secret value.
		s = c.secrets.trimPartial(s)
	}
	return strings.ToValidUTF8(s, "")
}

// trimPartial removes a tail of s that is a prefix of a known secret.
func (s *secretSet) trimPartial(text string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, list := range [][]string{s.fixed, s.ring} {
		for _, v := range list {
			for n := min(len(v)-1, len(text)); n >= 3; n-- {
				if strings.HasSuffix(text, v[:n]) {
					text = text[:len(text)-n]
					break
				}
			}
		}
	}
	return text
}

// scrubMessage cleans a vendor message before it goes into an error string.
func (c *Client) scrubMessage(m string) string {
	if len(m) > excerptBytes {
		m = m[:excerptBytes]
	}
	return strings.ToValidUTF8(c.secrets.scrub(m), "")
}
