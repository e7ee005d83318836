#!/usr/bin/python3
"""Ask an avouch STS for a holder-of-key token with zeep, the way a WS-Trust
client that wants a proof key does it.

The RequestSecurityToken is built by hand with lxml (zeep's generated
clients have no convenient way to send wst:Entropy or wst:UseKey), zeep's
UsernameToken plugin adds the WS-Security header and zeep's transport posts
it: the raw mode of zeep_issue.py, whose transport this script reuses.

  --key-type SymmetricKey [--entropy-bytes N] [--key-size BITS]
      N > 0 sends <wst:Entropy><wst:BinarySecret Type=".../Nonce"> with N
      random bytes. When the STS answers with a ComputedKey of
      .../CK/PSHA1, this client derives the proof key itself:
      P_SHA1(secret = its own entropy, seed = the server's entropy), WS-Trust
      1.3 section 4.4.4 with TLS 1.0's P_hash, computed here with Python's
      hmac module and nothing else. Without entropy it takes the proof key
      from RequestedProofToken/BinarySecret.
  --key-type PublicKey --use-key-cert PEM --use-key-form bst|x509data
  --key-type PublicKey --use-key-form rsakeyvalue --rsa-modulus B64 --rsa-exponent B64
      sends the requestor's public key in wst:UseKey: as a
      wsse:BinarySecurityToken (X509v3), as ds:KeyInfo/ds:X509Data, or as
      ds:KeyInfo/ds:KeyValue/ds:RSAKeyValue.

Prints one JSON object on stdout:
  {"ok": true, "status": 200, "request": "...", "response": "<raw HTTP body>",
   "client_entropy": "b64" | null, "server_entropy": "b64" | null,
   "computed_key": "<ComputedKey URI>" | null,
   "binary_secret_type": "<Type of RequestedProofToken/BinarySecret>" | null,
   "key_size": 256 | null,            # wst:KeySize of the RSTR
   "proof_key": "b64" | null}         # the key this client will sign with
  {"ok": false, "status": 500, "fault": {...}, "response": "...", ...}
The Go test (hok_test.go) does all checking; this script only drives the
client and does the client's half of the key agreement.
Run with Debian's /usr/bin/python3 (python3-zeep).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import uuid

from lxml import etree

from zeep.wsse.username import UsernameToken

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from zeep_issue import ISSUE_ACTION, ISSUE_REQUEST, SOAP_NS, WSA, WSP, WST, RecordingTransport  # noqa: E402

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
PSHA1 = WST + "/CK/PSHA1"


def p_sha1(secret, seed, length):
    """P_SHA1(secret, seed) of TLS 1.0 (RFC 2246 section 5), first length
    bytes: A(0) = seed, A(i) = HMAC(secret, A(i-1)),
    output = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) + ..."""
    out = b""
    a = seed
    while len(out) < length:
        a = hmac.new(secret, a, hashlib.sha1).digest()
        out += hmac.new(secret, a + seed, hashlib.sha1).digest()
    return out[:length]


def use_key(rst, args):
    uk = etree.SubElement(rst, etree.QName(WST, "UseKey"))
    if args.use_key_form == "rsakeyvalue":
        ki = etree.SubElement(uk, etree.QName(DS, "KeyInfo"), nsmap={"ds": DS})
        rsa = etree.SubElement(etree.SubElement(ki, etree.QName(DS, "KeyValue")), etree.QName(DS, "RSAKeyValue"))
        etree.SubElement(rsa, etree.QName(DS, "Modulus")).text = args.rsa_modulus
        etree.SubElement(rsa, etree.QName(DS, "Exponent")).text = args.rsa_exponent
        return
    with open(args.use_key_cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    b64 = base64.b64encode(der).decode()
    if args.use_key_form == "bst":
        bst = etree.SubElement(uk, etree.QName(WSSE, "BinarySecurityToken"), nsmap={"wsse": WSSE},
                               ValueType=X509V3, EncodingType=B64)
        bst.text = b64
    else:
        ki = etree.SubElement(uk, etree.QName(DS, "KeyInfo"), nsmap={"ds": DS})
        x509 = etree.SubElement(ki, etree.QName(DS, "X509Data"))
        etree.SubElement(x509, etree.QName(DS, "X509Certificate")).text = b64


def build(args, out):
    soap = SOAP_NS[args.soap]
    env = etree.Element(etree.QName(soap, "Envelope"), nsmap={"s": soap, "a": WSA})
    header = etree.SubElement(env, etree.QName(soap, "Header"))
    must = {etree.QName(soap, "mustUnderstand"): "1"}
    etree.SubElement(header, etree.QName(WSA, "Action"), must).text = ISSUE_ACTION
    etree.SubElement(header, etree.QName(WSA, "MessageID")).text = "urn:uuid:" + str(uuid.uuid4())
    etree.SubElement(header, etree.QName(WSA, "To"), must).text = args.url
    body = etree.SubElement(env, etree.QName(soap, "Body"))
    rst = etree.SubElement(body, etree.QName(WST, "RequestSecurityToken"), nsmap={"wst": WST})
    if args.token_type:
        etree.SubElement(rst, etree.QName(WST, "TokenType")).text = args.token_type
    etree.SubElement(rst, etree.QName(WST, "RequestType")).text = ISSUE_REQUEST
    at = etree.SubElement(rst, etree.QName(WSP, "AppliesTo"), nsmap={"wsp": WSP})
    epr = etree.SubElement(at, etree.QName(WSA, "EndpointReference"))
    etree.SubElement(epr, etree.QName(WSA, "Address")).text = args.applies_to
    etree.SubElement(rst, etree.QName(WST, "KeyType")).text = WST + "/" + args.key_type
    if args.entropy_bytes:
        entropy = os.urandom(args.entropy_bytes)
        out["client_entropy"] = base64.b64encode(entropy).decode()
        bs = etree.SubElement(etree.SubElement(rst, etree.QName(WST, "Entropy")), etree.QName(WST, "BinarySecret"),
                              Type=WST + "/Nonce")
        bs.text = out["client_entropy"]
    if args.key_size:
        etree.SubElement(rst, etree.QName(WST, "KeySize")).text = str(args.key_size)
    if args.use_key_form:
        use_key(rst, args)
    return env


def read_proof(args, response, out):
    """The client's half: find the proof key in the RSTR."""
    root = etree.fromstring(response)
    ns = {"wst": WST}
    rstrs = root.findall(".//wst:RequestSecurityTokenResponse", ns)
    if len(rstrs) != 1:
        raise ValueError("%d RequestSecurityTokenResponse elements" % len(rstrs))
    rstr = rstrs[0]
    ks = rstr.find("wst:KeySize", ns)
    out["key_size"] = int(ks.text) if ks is not None else None
    ck = rstr.find("wst:RequestedProofToken/wst:ComputedKey", ns)
    secret = rstr.find("wst:RequestedProofToken/wst:BinarySecret", ns)
    server = rstr.find("wst:Entropy/wst:BinarySecret", ns)
    if server is not None:
        out["server_entropy"] = server.text.strip()
    if ck is not None:
        out["computed_key"] = ck.text.strip()
        if out["computed_key"] != PSHA1:
            raise ValueError("unknown ComputedKey algorithm " + out["computed_key"])
        if server is None or not out.get("client_entropy") or not out["key_size"]:
            raise ValueError("ComputedKey without server Entropy, client entropy or KeySize")
        key = p_sha1(base64.b64decode(out["client_entropy"]), base64.b64decode(out["server_entropy"]),
                     out["key_size"] // 8)
        out["proof_key"] = base64.b64encode(key).decode()
    elif secret is not None:
        out["binary_secret_type"] = secret.get("Type")
        out["proof_key"] = secret.text.strip()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--soap", choices=["1.1", "1.2"], default="1.1")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--applies-to", required=True)
    p.add_argument("--token-type")
    p.add_argument("--key-type", choices=["Bearer", "SymmetricKey", "PublicKey"], required=True)
    p.add_argument("--entropy-bytes", type=int, default=0)
    p.add_argument("--key-size", type=int, default=0)
    p.add_argument("--use-key-form", choices=["bst", "x509data", "rsakeyvalue"])
    p.add_argument("--use-key-cert")
    p.add_argument("--rsa-modulus")
    p.add_argument("--rsa-exponent")
    args = p.parse_args()

    transport = RecordingTransport(timeout=30, operation_timeout=30)
    out = {"ok": False, "client_entropy": None, "server_entropy": None, "computed_key": None,
           "binary_secret_type": None, "key_size": None, "proof_key": None}
    try:
        env = build(args, out)
        if args.soap == "1.1":
            headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"%s"' % ISSUE_ACTION}
        else:
            headers = {"Content-Type": 'application/soap+xml; charset=utf-8; action="%s"' % ISSUE_ACTION}
        env, headers = UsernameToken(args.user, args.password).apply(env, headers)
        response = transport.post_xml(args.url, env, headers)
        if response.status_code == 200:
            read_proof(args, response.content, out)
            out["ok"] = True
        else:
            out["fault"] = {"code": "", "message": "HTTP %d" % response.status_code}
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
