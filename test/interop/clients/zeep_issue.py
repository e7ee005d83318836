#!/usr/bin/python3
"""Ask an avouch STS for a token with zeep, the way zeep users do.

Two modes:
  wsdl  build the client from the server's own WSDL (URL?wsdl), bind the
        SOAP 1.1 or 1.2 port and call the Issue operation with keyword
        arguments. This proves the WSDL is consumable and that zeep can parse
        the RSTRC it gets back.
  raw   build a RequestSecurityToken envelope by hand, let zeep's
        UsernameToken plugin add the WS-Security header and post it with
        zeep's transport (what people do when an STS has no usable WSDL).

Prints one JSON object on stdout:
  {"ok": true,  "status": 200, "request": "...", "response": "<raw HTTP body>",
   "parsed_assertion": "{ns}Assertion",  # wsdl mode: what zeep's parser found
   "lifetime": ["<Created>", "<Expires>"]  # the wst:Lifetime sent, if any
  }
  {"ok": false, "status": 500, "fault": {"code": "...", "message": "..."}, ...}
The Go test does all checking; this script only drives the client.
Run with Debian's /usr/bin/python3 (python3-zeep).
"""

import argparse
import datetime
import json
import sys
import uuid

from lxml import etree

import zeep
import zeep.exceptions
from zeep.transports import Transport
from zeep.wsse import utils as wsse_utils
from zeep.wsse.username import UsernameToken

SOAP_NS = {
    "1.1": "http://schemas.xmlsoap.org/soap/envelope/",
    "1.2": "http://www.w3.org/2003/05/soap-envelope",
}
WST = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
WSP = "http://schemas.xmlsoap.org/ws/2004/09/policy"
WSA = "http://www.w3.org/2005/08/addressing"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
IDENTITY = "http://schemas.xmlsoap.org/ws/2005/05/identity"
ISSUE_ACTION = WST + "/RST/Issue"
ISSUE_REQUEST = WST + "/Issue"
BEARER = WST + "/Bearer"
PORTS = {"1.1": "SecurityTokenServiceSoap11", "1.2": "SecurityTokenServiceSoap12"}


class RecordingTransport(Transport):
    """zeep's own transport, remembering the last exchange so that the test
    can extract the assertion from the raw response text, as clients do."""

    last_request = None
    last_response = None

    def post(self, address, message, headers):
        self.last_request = message
        response = super().post(address, message, headers)
        self.last_response = response
        return response


def zulu(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def username_token(args):
    if not args.digest:
        return UsernameToken(args.user, args.password)
    # Digest clients also send a Timestamp (like the captured zeep requests):
    # the server must accept both together.
    now = datetime.datetime.now(datetime.timezone.utc)
    timestamp = wsse_utils.WSU.Timestamp(
        wsse_utils.WSU.Created(zulu(now)),
        wsse_utils.WSU.Expires(zulu(now + datetime.timedelta(minutes=5))),
    )
    return UsernameToken(args.user, args.password, use_digest=True, timestamp_token=timestamp)


def lifetime(args):
    if not args.lifetime:
        return None
    now = datetime.datetime.now(datetime.timezone.utc)
    return zulu(now), zulu(now + datetime.timedelta(seconds=args.lifetime))


def find_assertion(value, depth=0):
    """Walk zeep's parsed response for the assertion element it kept."""
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


def issue_from_wsdl(args, transport, out):
    client = zeep.Client(args.url + "?wsdl", wsse=username_token(args), transport=transport)
    service = client.bind("SecurityTokenService", PORTS[args.soap])
    kwargs = {"RequestType": ISSUE_REQUEST, "KeyType": BEARER}
    if args.token_type:
        kwargs["TokenType"] = args.token_type
    if args.applies_to:
        kwargs["AppliesTo"] = {"EndpointReference": {"Address": args.applies_to}}
    if args.claim:
        kwargs["Claims"] = {
            "Dialect": IDENTITY,
            "ClaimType": [{"Uri": c, "Optional": True} for c in args.claim],
        }
    lt = lifetime(args)
    if lt:
        kwargs["Lifetime"] = {"Created": lt[0], "Expires": lt[1]}
        out["lifetime"] = lt
    result = service.Issue(**kwargs)
    assertion = find_assertion(result)
    return None if assertion is None else assertion.tag


def issue_raw(args, transport, out):
    soap = SOAP_NS[args.soap]
    nsmap = {"s": soap, "a": WSA}
    env = etree.Element(etree.QName(soap, "Envelope"), nsmap=nsmap)
    header = etree.SubElement(env, etree.QName(soap, "Header"))
    must = {etree.QName(soap, "mustUnderstand"): "1"}
    etree.SubElement(header, etree.QName(WSA, "Action"), must).text = ISSUE_ACTION
    etree.SubElement(header, etree.QName(WSA, "MessageID")).text = "urn:uuid:" + str(uuid.uuid4())
    etree.SubElement(header, etree.QName(WSA, "To"), must).text = args.url
    body = etree.SubElement(env, etree.QName(soap, "Body"))
    rst = etree.SubElement(body, etree.QName(WST, "RequestSecurityToken"), nsmap={"trust": WST})
    if args.token_type:
        etree.SubElement(rst, etree.QName(WST, "TokenType")).text = args.token_type
    etree.SubElement(rst, etree.QName(WST, "RequestType")).text = ISSUE_REQUEST
    if args.applies_to:
        at = etree.SubElement(rst, etree.QName(WSP, "AppliesTo"), nsmap={"wsp": WSP})
        epr = etree.SubElement(at, etree.QName(WSA, "EndpointReference"))
        etree.SubElement(epr, etree.QName(WSA, "Address")).text = args.applies_to
    if args.claim:
        claims = etree.SubElement(rst, etree.QName(WST, "Claims"), Dialect=IDENTITY)
        for c in args.claim:
            etree.SubElement(claims, etree.QName(IDENTITY, "ClaimType"), nsmap={"i": IDENTITY}, Uri=c, Optional="true")
    lt = lifetime(args)
    if lt:
        out["lifetime"] = lt
        lte = etree.SubElement(rst, etree.QName(WST, "Lifetime"))
        etree.SubElement(lte, etree.QName(WSU, "Created"), nsmap={"wsu": WSU}).text = lt[0]
        etree.SubElement(lte, etree.QName(WSU, "Expires"), nsmap={"wsu": WSU}).text = lt[1]
    etree.SubElement(rst, etree.QName(WST, "KeyType")).text = BEARER

    if args.soap == "1.1":
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"%s"' % ISSUE_ACTION}
    else:
        headers = {"Content-Type": 'application/soap+xml; charset=utf-8; action="%s"' % ISSUE_ACTION}
    env, headers = username_token(args).apply(env, headers)
    response = transport.post_xml(args.url, env, headers)
    if response.status_code != 200:
        raise RawFault(response.status_code)
    return None


class RawFault(Exception):
    pass


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="SOAP endpoint URL")
    p.add_argument("--mode", choices=["wsdl", "raw"], required=True)
    p.add_argument("--soap", choices=["1.1", "1.2"], required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--digest", action="store_true", help="PasswordDigest (+ Timestamp) instead of PasswordText")
    p.add_argument("--token-type")
    p.add_argument("--applies-to")
    p.add_argument("--claim", action="append", help="claim URI (identity dialect), repeatable")
    p.add_argument("--lifetime", type=int, help="requested lifetime in seconds (wst:Lifetime)")
    args = p.parse_args()

    transport = RecordingTransport(timeout=30, operation_timeout=30)
    out = {"ok": False}
    try:
        if args.mode == "wsdl":
            out["parsed_assertion"] = issue_from_wsdl(args, transport, out)
        else:
            issue_raw(args, transport, out)
        out["ok"] = True
    except zeep.exceptions.Fault as f:
        out["fault"] = {"code": str(f.code), "message": str(f.message)}
    except RawFault:
        out["fault"] = {"code": "", "message": "HTTP error status"}
    except Exception as e:  # report, let the Go test decide
        out["error"] = "%s: %s" % (type(e).__name__, e)
    if transport.last_response is not None:
        out["status"] = transport.last_response.status_code
        out["response"] = transport.last_response.content.decode("utf-8", "replace")
    if transport.last_request is not None:
        req = transport.last_request
        out["request"] = req.decode("utf-8", "replace") if isinstance(req, bytes) else req
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
