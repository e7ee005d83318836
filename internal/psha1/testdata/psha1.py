#!/usr/bin/python3
"""Independent P_SHA1 (RFC 2246 section 5) for the Go tests, using only the
standard library's hmac module.

Input on stdin: one case per line, "client_hex server_hex bits".
Output on stdout: one line per case, the hex of the first bits/8 bytes of
P_SHA1(secret=client entropy, seed=server entropy).
"""
import hashlib
import hmac
import sys


def p_sha1(secret, seed, n):
    out = b""
    a = seed  # A(0)
    while len(out) < n:
        a = hmac.new(secret, a, hashlib.sha1).digest()  # A(i)
        out += hmac.new(secret, a + seed, hashlib.sha1).digest()
    return out[:n]


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    client, server, bits = line.split()
    key = p_sha1(bytes.fromhex(client), bytes.fromhex(server), int(bits) // 8)
    print(key.hex())
