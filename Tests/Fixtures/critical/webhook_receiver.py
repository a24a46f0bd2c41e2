#!/usr/bin/env python3
"""A webhook receiver for the critical-results tests: an independent check of the grid's
signature (Python's hmac, not the grid's code) and a site that fails on purpose.

usage: webhook_receiver.py PORT SECRET LOG [PATH=FAILURES ...]

Every POST is checked: X-RadGrid-Signature must be "sha256=" + hex HMAC-SHA256(SECRET,
X-RadGrid-Timestamp + "." + body). A bad signature answers 401. Otherwise the first FAILURES
requests to PATH answer 500, the rest 200. Each request is appended to LOG as one JSON line.
GET /health answers 200 once the server listens.
"""
import hashlib
import hmac
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, secret, log_path = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
failures = {}
for spec in sys.argv[4:]:
    path, count = spec.split("=")
    failures[path] = int(count)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        timestamp = self.headers.get("X-RadGrid-Timestamp", "")
        given = self.headers.get("X-RadGrid-Signature", "")
        expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(given, expected)
        if not valid:
            status = 401
        elif failures.get(self.path, 0) > 0:
            failures[self.path] -= 1
            status = 500
        else:
            status = 200
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        record = {"path": self.path, "status": status, "signatureValid": valid, "timestamp": timestamp,
                  "delivery": self.headers.get("X-RadGrid-Delivery", ""), "event": self.headers.get("X-RadGrid-Event", ""),
                  "contentType": self.headers.get("Content-Type", ""), "body": parsed}
        with open(log_path, "a") as log:
            log.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
