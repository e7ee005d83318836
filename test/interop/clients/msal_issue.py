#!/usr/bin/python3
"""Run MSAL's WS-Trust leg (the one ADFS username/password sign-in uses)
against an avouch STS, exactly as msal calls it:

  msal.wstrust_request.send_request(username, password, cloud_audience_urn,
                                    endpoint_address, soap_action, http_client)

with soap_action msal.mex.Mex.ACTION_13 (WS-Trust 1.3) or ACTION_2005
(WS-Trust 2005/02). msal extracts the token from the RSTR by text.

Prints one JSON object on stdout:
  {"ok": true, "token": "<saml:Assertion ...>", "type": "<TokenType text>"}
  {"ok": false, "error": "..."}
Run with Debian's /usr/bin/python3 (python3-msal).
"""

import argparse
import json
import sys

import requests

import msal.mex
import msal.wstrust_request


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="SOAP endpoint URL")
    p.add_argument("--version", choices=["13", "2005"], required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--audience", required=True, help="cloud_audience_urn (becomes AppliesTo)")
    args = p.parse_args()

    action = msal.mex.Mex.ACTION_13 if args.version == "13" else msal.mex.Mex.ACTION_2005
    out = {"ok": False}
    try:
        with requests.Session() as http:
            result = msal.wstrust_request.send_request(
                args.user, args.password, args.audience, args.url, action, http, timeout=30)
        token = result["token"]
        out["token"] = token.decode("utf-8") if isinstance(token, bytes) else token
        out["type"] = result["type"]
        out["ok"] = True
    except Exception as e:  # msal raises RuntimeError with the fault; let Go report it
        out["error"] = "%s: %s" % (type(e).__name__, e)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
