"""Listens to a RadGrid portal's server-sent events stream as one expert and exits 0 when
the wanted event arrives (e.g. `--want offer:<case id>`), 1 on timeout.

    PYTHONPATH=.pydeps python3 Tests/Clients/portal_events.py --url PORTAL --token T --want offer:CASE
"""
import argparse
import json
import sys
import time

import requests


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--want", required=True, help="EVENT:CASE")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    want_event, want_case = args.want.split(":", 1)
    deadline = time.monotonic() + args.timeout
    response = requests.get(args.url + "/api/v1/events", headers={"Authorization": "Bearer " + args.token},
                            stream=True, timeout=(5, args.timeout))
    if response.status_code != 200:
        print("status", response.status_code, flush=True)
        sys.exit(2)
    event = None
    for raw in response.iter_lines(decode_unicode=True):
        if time.monotonic() > deadline:
            break
        line = raw or ""
        if line.startswith(": connected"):
            print("connected", flush=True)
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = json.loads(line[5:])
            print(event, json.dumps(data, sort_keys=True), flush=True)
            if event == want_event and data.get("case") == want_case:
                sys.exit(0)
    sys.exit(1)


if __name__ == "__main__":
    main()
