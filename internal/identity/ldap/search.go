package ldap

import (
	"context"
	"fmt"
	"math"

	ldapv3 "github.com/go-ldap/ldap/v3"
)

// pageSize is the paged-results page size: below the usual server limits
// (OpenLDAP 500, Active Directory MaxPageSize 1000), so listings and large
// group memberships are complete however big the directory.
const pageSize = 500

// searchOnce runs one search request with the service account.
func (s *Store) searchOnce(ctx context.Context, req *ldapv3.SearchRequest) (*ldapv3.SearchResult, error) {
	var res *ldapv3.SearchResult
	err := s.search.run(ctx, func(c *conn) error {
		return c.do(ctx, s.cfg.Timeout, func() (err error) {
			res, err = c.l.Search(req)
			return err
		})
	})
	return res, err
}

// searchPaged runs req with the paged-results control (RFC 2696) and returns
// up to limit entries (limit 0: all). All pages are read on one connection,
// as the server's cursor belongs to it; each page gets its own timeout. A
// sizeLimitExceeded error is returned with the entries received, for servers
// that ignore the (non-critical) control.
func (s *Store) searchPaged(ctx context.Context, req ldapv3.SearchRequest, limit int) ([]*ldapv3.Entry, error) {
	var out []*ldapv3.Entry
	err := s.search.run(ctx, func(c *conn) error {
		out = out[:0] // run may retry on a fresh connection
		paging := ldapv3.NewControlPaging(pageSize)
		req.Controls = []ldapv3.Control{paging}
		for {
			if limit > 0 {
				paging.PagingSize = uint32(min(pageSize, limit-len(out)))
			}
			var res *ldapv3.SearchResult
			err := c.do(ctx, s.cfg.Timeout, func() (err error) {
				res, err = c.l.Search(&req)
				return err
			})
			if res != nil {
				out = append(out, res.Entries...)
			}
			if err != nil {
				return err
			}
			next, _ := ldapv3.FindControl(res.Controls, ldapv3.ControlTypePaging).(*ldapv3.ControlPaging)
			if next == nil || len(next.Cookie) == 0 {
				return nil
			}
			paging.SetCookie(next.Cookie)
			if limit > 0 && len(out) >= limit {
				// Page size 0 with the cookie tells the server to drop
				// the cursor (RFC 2696 section 3).
				paging.PagingSize = 0
				_ = c.do(ctx, s.cfg.Timeout, func() error {
					_, err := c.l.Search(&req)
					return err
				})
				return nil
			}
		}
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// searchFailed turns a failed service-account search into an error wrapping
// identity.ErrStoreUnavailable. A result code from the server here (no such
// base DN, filter the server rejects, referral ...) means the store is
// misconfigured or the directory unwell, never that the user is wrong.
func (s *Store) searchFailed(what string, err error) error {
	if answered(err) {
		return s.unavailable(fmt.Errorf("%s: %w", what, err))
	}
	return err // already wraps ErrStoreUnavailable
}

// timeLimit is the server-side time limit for a search, in whole seconds,
// so the server gives up when the client would.
func (s *Store) timeLimit() int {
	return int(math.Ceil(s.cfg.Timeout.Seconds()))
}
