package wstrust

import (
	"errors"

	"github.com/avouch/avouch/internal/soap"
	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/wssec"
)

// faultFor maps core and WS-Security errors to SOAP faults: the one table of
// this front-end. v is the WS-Trust version whose namespace the wst fault
// QNames take (1.3 when unknown).
func faultFor(err error, v Version) *soap.Fault {
	if v == "" {
		v = V13
	}
	var f *soap.Fault
	if errors.As(err, &f) {
		return f
	}
	var we *wssec.Error
	if errors.As(err, &we) {
		if we.Code == "RequestFailed" { // a dependency failed, not the caller
			return &soap.Fault{Code: soap.CodeReceiver, Subcode: wstQName(v, "RequestFailed"), Reason: we.Msg}
		}
		return &soap.Fault{Code: soap.CodeSender, Subcode: soap.QName{Space: wssec.NSWSSE, Prefix: "wsse", Local: we.Code}, Reason: we.Msg}
	}
	var se *sts.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sts.CodeInternal:
			return &soap.Fault{Code: soap.CodeReceiver, Subcode: wstQName(v, "RequestFailed"), Reason: "the request could not be completed"}
		case sts.CodeUnavailable:
			return &soap.Fault{Code: soap.CodeReceiver, Subcode: wstQName(v, "RequestFailed"), Reason: se.Msg}
		}
		return &soap.Fault{Code: soap.CodeSender, Subcode: wstQName(v, string(se.Code)), Reason: se.Msg}
	}
	return &soap.Fault{Code: soap.CodeReceiver, Subcode: wstQName(v, "RequestFailed"), Reason: "the request could not be completed"}
}

func wstQName(v Version, local string) soap.QName {
	return soap.QName{Space: string(v), Prefix: "wst", Local: local}
}
