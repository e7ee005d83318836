#!/usr/bin/python3
"""Build a zeep client from one avouch endpoint's own WSDL (URL?wsdl) and ask
it for a token, for either WS-Trust version: the ADFS-compatible endpoints fix
theirs (…/trust/13/usernamemixed is 1.3, …/trust/2005/usernamemixed 2005/02),
and each one's WSDL must be enough for zeep to call it.

(zeep_issue.py does the same for /services/sts, but only in WS-Trust 1.3 and
without a way to trust the server's TLS certificate.)

Prints one JSON object on stdout:
  {"ok": true, "status": 200, "posted": "<address zeep posted to>",
   "response": "<raw HTTP body>", "parsed_assertion": "{ns}Assertion"}
  {"ok": false, "status": 500, "fault": {...}, "error": "...", ...}
Run with Debian's /usr/bin/python3 (python3-zeep).
"""

import argparse
import json
import sys

import requests
from lxml import etree

import zeep
import zeep.exceptions
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from tlspin import pin

TRUST = {
    "13": {
        "request_type": "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue",
        "key_type": "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer",
    },
    "2005": {
        "request_type": "http://schemas.xmlsoap.org/ws/2005/02/trust/Issue",
        # What ADFS clients send on the 2005 endpoint (msal too).
        "key_type": "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey",
    },
}
PORTS = {"1.1": "SecurityTokenServiceSoap11", "1.2": "SecurityTokenServiceSoap12"}


class RecordingTransport(Transport):
    """zeep's transport, remembering the last exchange so that the test can
    cut the assertion out of the raw response, as clients do."""

    last_address = None
    last_response = None

    def post(self, address, message, headers):
        self.last_address = address
        response = super().post(address, message, headers)
        self.last_response = response
        return response


def find_assertion(value, depth=0):
    if depth > 20 or value is None:
        return None
    if isinstance(value, etree._Element):
        if etree.QName(value).localname == "Assertion":
            return value
        for child in value:
            found = find_assertion(child, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        items = value
    elif hasattr(value, "__values__"):
        items = list(value.__values__.values())
    else:
        return None
    for item in items:
        found = find_assertion(item, depth + 1)
        if found is not None:
            return found
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="endpoint URL; the WSDL is URL?wsdl")
    p.add_argument("--trust", choices=sorted(TRUST), required=True)
    p.add_argument("--soap", choices=sorted(PORTS), required=True)
    p.add_argument("--ca", help="the server's TLS certificate (PEM), pinned for https")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--token-type", required=True)
    p.add_argument("--applies-to", required=True)
    args = p.parse_args()

    session = pin(requests.Session(), args.ca)
    transport = RecordingTransport(session=session, timeout=30, operation_timeout=30)
    out = {"ok": False}
    try:
        client = zeep.Client(args.url + "?wsdl", wsse=UsernameToken(args.user, args.password), transport=transport)
        service = client.bind("SecurityTokenService", PORTS[args.soap])
        result = service.Issue(
            RequestType=TRUST[args.trust]["request_type"],
            KeyType=TRUST[args.trust]["key_type"],
            TokenType=args.token_type,
            AppliesTo={"EndpointReference": {"Address": args.applies_to}},
        )
        assertion = find_assertion(result)
        out["parsed_assertion"] = None if assertion is None else assertion.tag
        out["ok"] = True
    except zeep.exceptions.Fault as f:
        out["fault"] = {"code": str(f.code), "message": str(f.message)}
    except Exception as e:  # report, let the Go test decide
        out["error"] = "%s: %s" % (type(e).__name__, e)
    out["posted"] = transport.last_address
    if transport.last_response is not None:
        out["status"] = transport.last_response.status_code
        out["response"] = transport.last_response.content.decode("utf-8", "replace")
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
