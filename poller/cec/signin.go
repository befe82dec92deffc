package cec

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// Signing in: loginex or login, forcing an earlier sign-in of the
// monitoring agent out only while the session may (SessionConfig.MayForce).

type signInBody struct {
	Password      string `json:"password"`
	PhoneNum      string `json:"phonenum,omitempty"`
	AutoAnswer    bool   `json:"autoanswer"`
	AutoEnterIdle bool   `json:"autoenteridle"`
	ReleasePhone  bool   `json:"releasephone"`
	AgentType     int    `json:"agenttype"`
	Status        int    `json:"status"`
}

// signIn performs login (or loginex), or forcelogin when the gateway says
// the agent is already signed in (a previous bridge instance, or our own
// session that the gateway has not yet timed out), and returns the new GUID.
func (s *Session) signIn(ctx context.Context) (string, error) {
	g, _, err := s.signInOnce(ctx, true)
	return g, err
}

// signInOnce signs in and returns the GUID and the raw Set-GUID header.
// With takeOver false an agent that is already signed in is left alone
// and the 100-002 answer is returned as the error.
func (s *Session) signInOnce(ctx context.Context, takeOver bool) (guid, setGUID string, _ error) {
	body, _ := json.Marshal(signInBody{
		Password: s.cfg.Password.Reveal(), PhoneNum: s.cfg.PhoneNum,
		AutoAnswer: true, AutoEnterIdle: true, ReleasePhone: true, AgentType: 4,
		// Busy, so the gateway never routes a customer call to the
		// monitoring agent.
		Status: 3,
	})
	ep, path := "login", "/onlineagent/"+s.idStr
	if s.cfg.LoginEx {
		ep = "loginex"
	}
	_, resp, err := s.gwCall(ctx, ep, http.MethodPut, signInPath(path, ep), "", 0, body, 0)
	var e *Error
	if takeOver && errors.As(err, &e) && e.Code == "100-002" {
		if s.cfg.MayForce != nil && !s.cfg.MayForce() {
			return "", "", &Error{Endpoint: ep, HTTPStatus: e.HTTPStatus, Code: e.Code, Message: "signed in elsewhere; not forcing it while the lease is unconfirmed", Err: ErrSignedInElsewhere}
		}
		ep = "forcelogin"
		_, resp, err = s.gwCall(ctx, ep, http.MethodPut, signInPath(path, ep), "", 0, body, 0)
	}
	if err != nil {
		return "", "", err
	}
	setGUID = resp.header.Get("Set-GUID")
	g := parseSetGUID(setGUID)
	if g == "" {
		return "", "", &Error{Endpoint: ep, HTTPStatus: resp.status, Message: "no Set-GUID header", Err: ErrBadResponse}
	}
	s.c.secrets.addRotating(g)
	return g, setGUID, nil
}

// signInPath is the path of a sign-in endpoint for the agent at base.
func signInPath(base, ep string) string {
	if ep == "login" {
		return base
	}
	return base + "/" + ep
}
