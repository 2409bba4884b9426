"""A GitHub stand-in for the VM test, on loopback: GitHub's OAuth web flow
(/login/oauth/authorize, /login/oauth/access_token) and the two REST calls a sign-in makes
(/user, /user/emails), for one OAuth app and one user who approves at once.

    python3 github_standin.py PORT CLIENT_ID CLIENT_SECRET_FILE
"""

import base64
import json
import secrets
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, CLIENT_ID = int(sys.argv[1]), sys.argv[2]
with open(sys.argv[3]) as f:
    CLIENT_SECRET = f.read().strip()
USER = {"id": 4242, "login": "octo-vm", "name": "Octo VM", "email": "octo-vm@example.com",
        "avatar_url": "https://avatars.example.test/u/4242"}
EMAILS = [{"email": USER["email"], "primary": True, "verified": True, "visibility": "public"}]
codes, tokens = {}, set()


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body, content_type="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/login/oauth/authorize":
            if q.get("client_id") != CLIENT_ID or "redirect_uri" not in q:
                return self.answer(400, {"error": "bad authorize request"})
            code = secrets.token_hex(10)
            codes[code] = q["redirect_uri"]
            back = q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": q.get("state", "")})
            return self.answer(302, b"", "text/plain", [("location", back)])
        auth = self.headers.get("authorization", "").split(" ", 1)
        if len(auth) != 2 or auth[1] not in tokens:
            return self.answer(401, {"message": "Bad credentials"})
        if url.path == "/user":
            return self.answer(200, USER)
        if url.path == "/user/emails":
            return self.answer(200, EMAILS)
        self.answer(404, {"message": "Not Found"})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        form = dict(urllib.parse.parse_qsl(body))
        basic = self.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", urllib.parse.unquote(cid))
            form.setdefault("client_secret", urllib.parse.unquote(secret))
        if url.path != "/login/oauth/access_token":
            return self.answer(404, {"message": "Not Found"})
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            result = {"error": "incorrect_client_credentials"}
        elif codes.pop(form.get("code", ""), None) != form.get("redirect_uri"):
            result = {"error": "bad_verification_code"}
        else:
            token = "gho_" + secrets.token_hex(18)
            tokens.add(token)
            result = {"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}
        # GitHub answers errors with 200 too, as JSON when asked, else form-encoded.
        if "json" in self.headers.get("accept", ""):
            return self.answer(200, result)
        self.answer(200, urllib.parse.urlencode(result).encode(), "application/x-www-form-urlencoded")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
