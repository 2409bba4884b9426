"""A mail sink for the VM test: an SMTP server on loopback that stores each message it is
handed as a text file (recipients, subject, the decoded plain-text body), one file a message,
in the directory given. Plain SMTP only (latchkey's `?tls=none`, allowed for loopback).

    python3 smtp_sink.py HOST PORT DIR
"""

import email
import email.policy
import os
import socketserver
import sys

HOST, PORT, DIR = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Session(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 sink ESMTP")
        rcpt = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 sink")
            elif verb == "MAIL":
                rcpt = []
                self.reply("250 ok")
            elif verb == "RCPT":
                arg = line.decode(errors="replace").split(":", 1)[1].split()
                rcpt.append(arg[0].strip("<>") if arg else "")
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while True:
                    chunk = self.rfile.readline()
                    if not chunk or chunk in (b".\r\n", b".\n"):
                        break
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.store(rcpt, data)
                self.reply("250 stored")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # RSET, NOOP and the rest
                self.reply("250 ok")

    def store(self, rcpt, data):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body else ""
        name = f"{len(os.listdir(DIR)) + 1:04d}.txt"
        with open(os.path.join(DIR, name + ".tmp"), "w") as f:
            f.write(f"To: {' '.join(rcpt)}\nSubject: {msg['subject']}\n\n{text}\n")
        os.rename(os.path.join(DIR, name + ".tmp"), os.path.join(DIR, name))


os.makedirs(DIR, exist_ok=True)
socketserver.ThreadingTCPServer.allow_reuse_address = True
with socketserver.ThreadingTCPServer((HOST, PORT), Session) as server:
    server.serve_forever()
