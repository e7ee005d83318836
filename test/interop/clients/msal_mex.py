#!/usr/bin/python3
"""Discover an avouch STS the way MSAL's ADFS username/password flow does,
then get a token from what it discovered:

  1. msal.mex.send_request(mex_url, http_client)          # GET the MEX document
     or msal.mex.Mex(document).get_wstrust_username_password_endpoint()
     (--mex-file: a document written by the Go test)
  2. msal.wstrust_request.send_request(username, password, cloud_audience_urn,
                                       endpoint["address"], endpoint["action"],
                                       http_client)

Every URL the HTTP client is asked to POST to is recorded, so that the Go test
can check the token came from exactly the endpoint MSAL picked.

Prints one JSON object on stdout:
  {"ok": true, "endpoint": {"address": ..., "action": ...}, "posted": [...],
   "token": "<Assertion ...>", "type": "<TokenType text>"}
  {"ok": false, "endpoint": null or {...}, "posted": [...], "error": "..."}
Run with Debian's /usr/bin/python3 (python3-msal).
"""

import argparse
import json
import sys

import requests

import msal.mex
import msal.wstrust_request

from tlspin import pin


class RecordingSession(requests.Session):
    """A requests session that remembers where it POSTed."""

    def __init__(self):
        super().__init__()
        self.posted = []

    def post(self, url, *args, **kwargs):
        self.posted.append(url)
        return super().post(url, *args, **kwargs)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--mex", help="MEX URL, fetched with msal.mex.send_request")
    src.add_argument("--mex-file", help="MEX document on disk, parsed with msal.mex.Mex")
    p.add_argument("--ca", help="the server's TLS certificate (PEM), pinned for https")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--audience", required=True, help="cloud_audience_urn (becomes AppliesTo)")
    args = p.parse_args()

    out = {"ok": False, "endpoint": None, "posted": []}
    http = pin(RecordingSession(), args.ca)
    try:
        if args.mex:
            endpoint = msal.mex.send_request(args.mex, http, timeout=30)
        else:
            with open(args.mex_file, encoding="utf-8") as f:
                endpoint = msal.mex.Mex(f.read()).get_wstrust_username_password_endpoint()
        out["endpoint"] = endpoint
        if not endpoint:
            out["error"] = "msal found no username/password endpoint in the MEX document"
        else:
            result = msal.wstrust_request.send_request(
                args.user, args.password, args.audience, endpoint["address"], endpoint["action"], http, timeout=30)
            token = result["token"]
            out["token"] = token.decode("utf-8") if isinstance(token, bytes) else token
            out["type"] = result["type"]
            out["ok"] = True
    except Exception as e:  # report, let the Go test decide
        out["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        out["posted"] = http.posted
        http.close()
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
