package wsfed

import (
	"errors"
	"net/http"

	"github.com/avouch/avouch/internal/sts"
)

func (h *Handler) requestID(r *http.Request) string {
	if h.RequestID == nil {
		return ""
	}
	return h.RequestID(r.Context())
}

// pageFor is the one table from errors to error pages. Every answer is a
// page with a status, never a redirect: a refused request must not send the
// browser (or a token) anywhere. Messages are the core's client-safe texts;
// causes go to the log only.
func pageFor(err error) (status int, title, msg string) {
	var re *RequestError
	if errors.As(err, &re) {
		return http.StatusBadRequest, "Sign-in request refused", re.Msg
	}
	var se *sts.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sts.CodeInvalidRequest, sts.CodeBadRequest, sts.CodeInvalidTimeRange:
			return http.StatusBadRequest, "Sign-in request refused", se.Msg
		case sts.CodeRequestFailed, sts.CodeFailedAuthentication:
			return http.StatusForbidden, "Access denied", se.Msg
		case sts.CodeUnavailable:
			return http.StatusServiceUnavailable, "Sign-in unavailable", "The sign-in service is temporarily unavailable: " + se.Msg + ". Please try again in a moment."
		}
	}
	return http.StatusInternalServerError, "Sign-in failed", "Signing in failed because of an internal error."
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, title, msg := pageFor(err)
	if status >= 500 {
		h.Log.Error("wsfed: request failed", "err", err, "request_id", h.requestID(r))
	} else {
		h.Log.Info("wsfed: request refused", "status", status, "reason", msg, "request_id", h.requestID(r))
	}
	h.Authn.ErrorPage(w, r, status, title, msg)
}
