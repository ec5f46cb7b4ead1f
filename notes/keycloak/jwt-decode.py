#!/usr/bin/env python3
"""Print the header and payload of each JWT read from stdin (one a line); never verifies."""
import sys, json, base64
def part(s):
    s += '=' * (-len(s) % 4)
    return json.loads(base64.urlsafe_b64decode(s))
for line in sys.stdin:
    line=line.strip()
    if not line: continue
    h, p, sig = line.split('.')
    print(json.dumps({"header": part(h), "payload": part(p), "sig_len": len(sig)}, indent=1))
