#!/usr/bin/python3
"""ssf_receiver.py - an SSF push receiver (RFC 8935) for test_ssf.c.

It checks every Security Event Token it is sent with an independent JOSE
implementation (PyJWT on python3-cryptography): the broker's JWKS fetched
from its /.well-known/jwks.json, the key chosen by kid, ES256 only, typ
secevent+jwt, iss the broker, aud this receiver, iat and jti present,
exactly one event and a sub_id. It answers 202, or 400 with an RFC 8935
error, and appends one JSON line per SET to OUT: {"ok": true, "claims": ...}
or {"ok": false, "error": ...}.

usage: ssf_receiver.py PORT PORTFILE BROKERFILE AUDIENCE AUTHORIZATION OUT
  PORT 0 picks a free port; the port is written to PORTFILE. BROKERFILE holds
  the broker's URL (its issuer), read at each request.

With AUDIENCE "--transmitter" it is instead an SSF transmitter whose keys the
broker fetches from its jwks_uri: it makes a P-256 key (kid "k1") with
python3-cryptography, serves GET /jwks.json (one {"jwks_fetch": kid} line in
OUT per fetch), signs the claims POSTed to /sign as a SET with PyJWT (typ
secevent+jwt; ?kid=X puts another kid in the header), and POST /rotate
replaces its key with a new one (kid "k2", "k3", ...).
"""
import http.server
import json
import os
import sys
import urllib.request

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

PORT, PORTFILE, BROKERFILE, AUDIENCE, AUTHORIZATION, OUT = sys.argv[1:7]
NOPROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def check(body, headers):
    if headers.get("Authorization") != AUTHORIZATION:
        raise ValueError("wrong Authorization header")
    if headers.get("Content-Type") != "application/secevent+jwt":
        raise ValueError("Content-Type is not application/secevent+jwt")
    with open(BROKERFILE) as f:
        issuer = f.read().strip()
    header = jwt.get_unverified_header(body)
    if header.get("typ") != "secevent+jwt" or header.get("alg") != "ES256":
        raise ValueError("header %r" % header)
    with NOPROXY.open(issuer + "/.well-known/jwks.json", timeout=2) as r:
        jwks = json.load(r)
    keys = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")]
    if len(keys) != 1:
        raise ValueError("kid not in the broker's JWKS")
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(body, key, algorithms=["ES256"], audience=AUDIENCE, issuer=issuer,
                        options={"require": ["iat", "jti"]})
    if len(claims.get("events", {})) != 1 or "format" not in claims.get("sub_id", {}):
        raise ValueError("events or sub_id")
    return claims


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode("ascii", "replace")
        try:
            line = {"ok": True, "claims": check(body, self.headers)}
            status, answer = 202, b""
        except Exception as e:  # every failure is an answer, never a crash
            line = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
            status = 400
            answer = json.dumps({"err": "invalid_request", "description": line["error"]}).encode()
        with open(OUT, "a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        if answer:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class Transmitter(http.server.BaseHTTPRequestHandler):
    key = ec.generate_private_key(ec.SECP256R1())
    kid = "k1"
    n = 1

    def answer(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/jwks.json":
            return self.answer(404, b"{}", "application/json")
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(Transmitter.key.public_key()))
        jwk.update({"kid": Transmitter.kid, "alg": "ES256", "use": "sig"})
        with open(OUT, "a") as f:
            f.write(json.dumps({"jwks_fetch": Transmitter.kid}) + "\n")
        self.answer(200, json.dumps({"keys": [jwk]}).encode(), "application/json")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.path == "/rotate":
            Transmitter.n += 1
            Transmitter.key = ec.generate_private_key(ec.SECP256R1())
            Transmitter.kid = "k%d" % Transmitter.n
            return self.answer(200, Transmitter.kid.encode(), "text/plain")
        kid = Transmitter.kid
        if self.path.startswith("/sign?kid="):
            kid = self.path[len("/sign?kid="):]
        elif self.path != "/sign":
            return self.answer(404, b"", "text/plain")
        tok = jwt.encode(json.loads(body), Transmitter.key, algorithm="ES256",
                         headers={"kid": kid, "typ": "secevent+jwt"})
        self.answer(200, tok.encode(), "application/secevent+jwt")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", int(PORT)),
                                Transmitter if AUDIENCE == "--transmitter" else Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
