#!/usr/bin/python3
"""Ask an avouch STS for a token with a request that zeep signs with its own
WS-Security signature plugin (X.509 Token Profile), the way a zeep user with
a client certificate does it.

The RequestSecurityToken and a wsu:Timestamp are built with lxml; then
zeep.wsse.signature signs the envelope with python3-xmlsec (exclusive c14n,
one Reference to the soap:Body and one to the Timestamp, by wsu:Id):

  --form signature  zeep.wsse.signature.Signature: the certificate goes in
                    KeyInfo/SecurityTokenReference/X509Data (with
                    X509IssuerSerial)
  --form binary     zeep.wsse.signature.BinarySignature: the certificate goes
                    in a wsse:BinarySecurityToken that KeyInfo references
  --algorithms sha1     zeep's defaults, RSA-SHA1 and SHA-1 digests
  --algorithms sha256   RSA-SHA256 and SHA-256 digests

zeep's transport posts it. Prints one JSON object on stdout:
  {"ok": true, "status": 200, "request": "...", "response": "<raw HTTP body>"}
  {"ok": false, "status": 500, "request": "...", "response": "...", "error": "..."}
The Go test (x509_test.go) does all checking; this script only drives the
client. Run with Debian's /usr/bin/python3 (python3-zeep, python3-xmlsec).
"""

import argparse
import datetime
import json
import sys

import xmlsec
from lxml import etree
from zeep.wsse.signature import BinarySignature, Signature

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from zeep_issue import ISSUE_ACTION, ISSUE_REQUEST, SOAP_NS, WSP, WSA, WST, RecordingTransport  # noqa: E402

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def zulu(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(args):
    soap = SOAP_NS[args.soap]
    env = etree.Element(etree.QName(soap, "Envelope"), nsmap={"s": soap, "wsu": WSU})
    header = etree.SubElement(env, etree.QName(soap, "Header"))
    sec = etree.SubElement(header, etree.QName(WSSE, "Security"), {etree.QName(soap, "mustUnderstand"): "1"},
                           nsmap={"wsse": WSSE})
    now = datetime.datetime.now(datetime.timezone.utc)
    ts = etree.SubElement(sec, etree.QName(WSU, "Timestamp"))
    etree.SubElement(ts, etree.QName(WSU, "Created")).text = zulu(now)
    etree.SubElement(ts, etree.QName(WSU, "Expires")).text = zulu(now + datetime.timedelta(minutes=5))
    body = etree.SubElement(env, etree.QName(soap, "Body"))
    rst = etree.SubElement(body, etree.QName(WST, "RequestSecurityToken"), nsmap={"wst": WST})
    etree.SubElement(rst, etree.QName(WST, "TokenType")).text = "urn:oasis:names:tc:SAML:2.0:assertion"
    etree.SubElement(rst, etree.QName(WST, "RequestType")).text = ISSUE_REQUEST
    at = etree.SubElement(rst, etree.QName(WSP, "AppliesTo"), nsmap={"wsp": WSP})
    epr = etree.SubElement(at, etree.QName(WSA, "EndpointReference"), nsmap={"a": WSA})
    etree.SubElement(epr, etree.QName(WSA, "Address")).text = args.applies_to
    etree.SubElement(rst, etree.QName(WST, "KeyType")).text = WST + "/Bearer"
    return env


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--soap", choices=["1.1", "1.2"], default="1.1")
    p.add_argument("--key", required=True, help="PEM private key")
    p.add_argument("--cert", required=True, help="PEM certificate")
    p.add_argument("--form", choices=["signature", "binary"], default="binary")
    p.add_argument("--algorithms", choices=["sha1", "sha256"], default="sha1")
    p.add_argument("--applies-to", required=True)
    args = p.parse_args()

    kwargs = {}
    if args.algorithms == "sha256":
        kwargs = {"signature_method": xmlsec.Transform.RSA_SHA256, "digest_method": xmlsec.Transform.SHA256}
    plugin = (BinarySignature if args.form == "binary" else Signature)(args.key, args.cert, **kwargs)

    transport = RecordingTransport(timeout=30, operation_timeout=30)
    out = {"ok": False}
    try:
        env = build(args)
        if args.soap == "1.1":
            headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"%s"' % ISSUE_ACTION}
        else:
            headers = {"Content-Type": 'application/soap+xml; charset=utf-8; action="%s"' % ISSUE_ACTION}
        env, headers = plugin.apply(env, headers)
        response = transport.post_xml(args.url, env, headers)
        out["ok"] = response.status_code == 200
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
