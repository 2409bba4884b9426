"""Suite 3: Python backends against latchkey.

1. PyJWT alone: ``PyJWKClient`` + ``jwt.decode(token, key, algorithms=[alg], audience=...,
   issuer=...)`` on tokens from ``/api/auth/token`` and the ``set-auth-jwt`` header.
2. ``app.jwt_app`` (FastAPI + PyJWT) served by uvicorn on ``JWT_APP_PORT``.
3. ``app.proxied_app`` served by uvicorn on ``PROXIED_APP_PORT`` behind latchkey-api in
   reverse-proxy mode at ``PROXY_URL`` (its ``LATCHKEY_UPSTREAM`` points at that port).

Environment: AUTH_URL, PROXY_URL, JWT_APP_PORT, PROXIED_APP_PORT, JWT_ALG (default EdDSA).
Exit status 0 when every check passed.
"""

import json
import os
import random
import string
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

import jwt
import uvicorn

AUTH_URL = os.environ["AUTH_URL"].rstrip("/")
PROXY_URL = os.environ.get("PROXY_URL", "").rstrip("/")
JWT_APP_PORT = int(os.environ["JWT_APP_PORT"])
PROXIED_APP_PORT = int(os.environ.get("PROXIED_APP_PORT", "0"))
ALG = os.environ.get("JWT_ALG", "EdDSA")
os.environ["AUTH_URL"] = AUTH_URL
os.environ["JWT_ALGORITHMS"] = ALG

import app  # noqa: E402  (reads the environment above)

failures: list[str] = []


def step(name):
    def run(fn):
        t = time.monotonic()
        try:
            fn()
        except Exception:  # noqa: BLE001
            failures.append(name)
            tb = traceback.format_exc().rstrip().replace("\n", "\n     | ")
            print(f"FAIL {name}\n     | {tb}", flush=True)
            return fn
        print(f"ok   {name} ({(time.monotonic() - t) * 1000:.0f} ms)", flush=True)
        return fn

    return run


def request(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, dict(r.headers), (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return e.code, dict(e.headers), parsed


def serve(asgi_app, port):
    config = uvicorn.Config(asgi_app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    return server


# A user, signed up through latchkey-auth (plain urllib sends no Sec-Fetch-*, but a browser
# would send Origin, so we do too).
email = "py-" + "".join(random.choices(string.ascii_lowercase, k=10)) + "@example.com"
status, headers, body = request(
    "POST",
    f"{AUTH_URL}/api/auth/sign-up/email",
    {"name": "Py Thon", "email": email, "password": "python password 1"},
    {"origin": AUTH_URL},
)
if status != 200:
    print(f"FAIL sign-up: {status} {body}")
    sys.exit(1)
USER_ID = body["user"]["id"]
BEARER = {"authorization": f"Bearer {headers['set-auth-token']}"}
status, _, body = request("GET", f"{AUTH_URL}/api/auth/token", headers=BEARER)
assert status == 200, (status, body)
TOKEN = body["token"]
status, headers, _ = request("GET", f"{AUTH_URL}/api/auth/get-session", headers=BEARER)
HEADER_JWT = {k.lower(): v for k, v in headers.items()}.get("set-auth-jwt")


@step(f"PyJWT PyJWKClient verifies /token and set-auth-jwt ({ALG}, audience + issuer)")
def _():
    client = jwt.PyJWKClient(f"{AUTH_URL}/api/auth/jwks")
    for token in (TOKEN, HEADER_JWT):
        assert token, "no token"
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key, algorithms=[ALG], audience=AUTH_URL, issuer=AUTH_URL)
        assert claims["sub"] == USER_ID, claims
        assert claims["email"] == email, claims
        assert claims["exp"] - claims["iat"] == 900, claims
        assert jwt.get_unverified_header(token)["alg"] == ALG
    # The same with the key's .key, and via the .well-known URL.
    wk = jwt.PyJWKClient(f"{AUTH_URL}/.well-known/jwks.json")
    key = wk.get_signing_key_from_jwt(TOKEN)
    jwt.decode(TOKEN, key.key, algorithms=[ALG], audience=AUTH_URL, issuer=AUTH_URL)


@step("PyJWT rejects a wrong audience, a wrong issuer, a tampered token")
def _():
    client = jwt.PyJWKClient(f"{AUTH_URL}/api/auth/jwks")
    key = client.get_signing_key_from_jwt(TOKEN)
    for kwargs, exc in (
        ({"audience": "http://other.example", "issuer": AUTH_URL}, jwt.InvalidAudienceError),
        ({"audience": AUTH_URL, "issuer": "http://other.example"}, jwt.InvalidIssuerError),
    ):
        try:
            jwt.decode(TOKEN, key, algorithms=[ALG], **kwargs)
        except exc:
            pass
        else:
            raise AssertionError(f"accepted with {kwargs}")
    head, payload, sig = TOKEN.split(".")
    tampered = f"{head}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{sig}"
    try:
        jwt.decode(tampered, key, algorithms=[ALG], audience=AUTH_URL, issuer=AUTH_URL)
    except (jwt.InvalidSignatureError, jwt.DecodeError):
        pass
    else:
        raise AssertionError("tampered token accepted")


serve(app.jwt_app, JWT_APP_PORT)
APP = f"http://127.0.0.1:{JWT_APP_PORT}"


@step("FastAPI + PyJWKClient: /me with the JWT is 200, without or forged is 401")
def _():
    status, _, body = request("GET", f"{APP}/me", headers={"authorization": f"Bearer {TOKEN}"})
    assert status == 200, (status, body)
    assert body == {"id": USER_ID, "email": email, "name": "Py Thon"}, body
    status, _, body = request("GET", f"{APP}/me")
    assert status == 401, (status, body)
    status, _, body = request("GET", f"{APP}/me", headers={"authorization": f"Bearer {TOKEN[:-4]}AAAA"})
    assert status == 401, (status, body)
    # A session bearer token is not a JWT.
    status, _, body = request("GET", f"{APP}/me", headers=BEARER)
    assert status == 401, (status, body)


if PROXY_URL:
    serve(app.proxied_app, PROXIED_APP_PORT)

    @step("FastAPI behind latchkey-api (reverse proxy): X-Auth-User-* headers, no JWT code")
    def _():
        status, _, body = request("GET", f"{PROXY_URL}/me", headers={"authorization": f"Bearer {TOKEN}"})
        assert status == 200, (status, body)
        assert body["id"] == USER_ID and body["email"] == email and body["name"] == "Py Thon", body
        print(f"     (upstream saw the Authorization header: {body['sawAuthorization']})")
        # No token, or a forged one: latchkey-api answers 401 and the app never sees it.
        status, _, body = request("GET", f"{PROXY_URL}/me")
        assert status == 401, (status, body)
        status, _, body = request(
            "GET", f"{PROXY_URL}/me", headers={"authorization": f"Bearer {TOKEN[:-4]}AAAA"}
        )
        assert status == 401, (status, body)
        # A client cannot spoof the identity headers.
        status, _, body = request(
            "GET",
            f"{PROXY_URL}/me",
            headers={"authorization": f"Bearer {TOKEN}", "x-auth-user-id": "admin"},
        )
        assert status == 200 and body["id"] == USER_ID, (status, body)


if failures:
    print(f"FAILED check_python.py: {len(failures)} step(s) failed:")
    for f in failures:
        print(f"  - {f}")
    sys.exit(1)
print("PASS check_python.py: all steps passed")
sys.exit(0)
