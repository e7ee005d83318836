package sts

import "fmt"

// Code classifies a core error; each front-end maps codes to its own faults
// in one table.
type Code string

const (
	CodeInvalidRequest       Code = "InvalidRequest"
	CodeFailedAuthentication Code = "FailedAuthentication"
	CodeRequestFailed        Code = "RequestFailed"
	CodeInvalidTimeRange     Code = "InvalidTimeRange"
	CodeUnableToRenew        Code = "UnableToRenew"
	CodeInvalidSecurityToken Code = "InvalidSecurityToken"
	CodeBadRequest           Code = "BadRequest"
	CodeUnavailable          Code = "Unavailable" // a dependency (user store, database) is down
	CodeInternal             Code = "Internal"
)

// Error is a core error. Msg is safe to show to the client; Err (the cause)
// is for logs only and never shown.
type Error struct {
	Code Code
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, sts.ErrInvalidRequest) match any error of that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInvalidRequest       = &Error{Code: CodeInvalidRequest}
	ErrFailedAuthentication = &Error{Code: CodeFailedAuthentication}
	ErrRequestFailed        = &Error{Code: CodeRequestFailed}
	ErrInvalidTimeRange     = &Error{Code: CodeInvalidTimeRange}
	ErrUnableToRenew        = &Error{Code: CodeUnableToRenew}
	ErrUnavailable          = &Error{Code: CodeUnavailable}
)

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}
