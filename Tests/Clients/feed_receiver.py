#!/usr/bin/env python3
"""A supervision platform for the feed tests: checks each batch's signature with Python's own
HMAC (not the grid's code), remembers batch ids to spot resends, and misbehaves on request.

    python3 Tests/Clients/feed_receiver.py PORT SECRET LOG [--fail N] [--fail-status S]
                                           [--refuse S] [--hang K]

Every POST must carry X-RadGrid-Signature = "sha256=" + hex HMAC-SHA256(SECRET, body); a bad
one answers 401. Then:
  --fail N       the first N POSTs answer --fail-status (default 503)
  --refuse S     every POST answers S (e.g. 403)
  --hang K       the K-th POST (1-based) is stored, but its answer only comes 10 s later (the
                 sender times out: delivered, not acknowledged)
otherwise 200. A batch whose X-RadGrid-Batch was already stored is marked "duplicate" (and
answered 200, as a real receiver would). Each POST is appended to LOG as one JSON line:
n, path, status, stored, duplicate, signatureValid, batch, contentType, body (text).
GET /health answers 200 once the server listens.
"""
import argparse
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("secret")
parser.add_argument("log")
parser.add_argument("--fail", type=int, default=0)
parser.add_argument("--fail-status", type=int, default=503)
parser.add_argument("--refuse", type=int, default=0)
parser.add_argument("--hang", type=int, default=0)
options = parser.parse_args()
secret = options.secret.encode()

lock = threading.Lock()
state = {"posts": 0, "stored": set()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.answer(200 if self.path == "/health" else 404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        given = self.headers.get("X-RadGrid-Signature", "")
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(given, expected)
        batch = self.headers.get("X-RadGrid-Batch", "")
        hang = False
        with lock:
            state["posts"] += 1
            n = state["posts"]
            if not valid:
                status = 401
            elif options.refuse:
                status = options.refuse
            elif n <= options.fail:
                status = options.fail_status
            else:
                status = 200
                hang = n == options.hang
            stored = status == 200
            duplicate = stored and batch in state["stored"]
            if stored:
                state["stored"].add(batch)
            record = {"n": n, "path": self.path, "status": status, "stored": stored, "duplicate": duplicate,
                      "signatureValid": valid, "batch": batch, "contentType": self.headers.get("Content-Type", ""),
                      "body": body.decode("utf-8", "replace")}
            with open(options.log, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
        if hang:
            time.sleep(10)
        self.answer(status, b"" if status == 200 else b"refused by the test receiver")

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
server.daemon_threads = True
server.serve_forever()
