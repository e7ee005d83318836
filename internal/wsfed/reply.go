package wsfed

import (
	"errors"

	"github.com/avouch/avouch/internal/registry"
)

// ErrReplyNotRegistered: wreply is not one of the relying party's reply URLs.
var ErrReplyNotRegistered = errors.New("wsfed: wreply is not a registered reply URL of this relying party")

// ResolveReply returns where a sign-in response for sp is posted: wreply
// when it equals one of sp's registered reply URLs byte for byte, or sp's
// first reply URL when no wreply was sent.
//
// Equality is the whole rule. No prefix match, no case folding, no
// percent-decoding, no trimming, no path normalisation: each of those has
// let some identity provider post tokens to an attacker
// (https://rp.example@evil.example, //evil.example, /\evil.example,
// https://rp.example.evil.example/, a registered URL plus "/../x"). Whatever
// an administrator registered is the complete list of places tokens go.
func ResolveReply(sp *registry.ServiceProvider, wreply string, given bool) (string, error) {
	if sp == nil || sp.Passive == nil || len(sp.Passive.ReplyURLs) == 0 {
		return "", ErrReplyNotRegistered
	}
	if !given {
		return sp.Passive.ReplyURLs[0], nil
	}
	for _, u := range sp.Passive.ReplyURLs {
		if u == wreply {
			return u, nil
		}
	}
	return "", ErrReplyNotRegistered
}

// registeredURLs are the URLs of sp a sign-out may continue to: its reply
// URLs and its sign-out URL.
func registeredURLs(sp *registry.ServiceProvider) []string {
	if sp == nil || sp.Passive == nil {
		return nil
	}
	out := append([]string(nil), sp.Passive.ReplyURLs...)
	if sp.Passive.SignOutURL != "" {
		out = append(out, sp.Passive.SignOutURL)
	}
	return out
}

// oneOf reports whether s equals one of list exactly.
func oneOf(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
