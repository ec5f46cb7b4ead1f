"""A stand-in Kubernetes API (Secrets with resourceVersions, StatefulSet patches recorded) for the
programs of the bundle run here: the TLS certificate sync and the MongoDB certificate
issuer."""

from __future__ import annotations

import copy
import json
import re


class FakeApi:
    """Just enough of the Kubernetes API for Secrets (GET, POST, PUT, with resourceVersions) and
    StatefulSet patches (recorded)."""

    def __init__(self):
        import http.server
        import threading

        self.secrets: dict[tuple[str, str], dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.patches: list[tuple[tuple[str, str], str, dict]] = []
        self.version = 0
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_call(self):
                api.calls.append((self.command, self.path))
                if self.headers.get("Authorization") != "Bearer fake-token":
                    return self.reply(401, {"kind": "Status", "code": 401})
                m = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/statefulsets/([^/]+)", self.path)
                if m and self.command == "PATCH":
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                    api.patches.append((m.groups(), self.headers.get("Content-Type"), body))
                    return self.reply(200, {"kind": "StatefulSet", "metadata": {"namespace": m.group(1), "name": m.group(2)}})
                m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?", self.path)
                if not m:
                    return self.reply(404, {"kind": "Status", "code": 404})
                ns, name = m.groups()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}") if self.command in ("POST", "PUT") else None
                if self.command == "GET" and name:
                    s = api.secrets.get((ns, name))
                    return self.reply(200, s) if s else self.reply(404, {"kind": "Status", "code": 404})
                if self.command == "POST" and not name:
                    key = (ns, body["metadata"]["name"])
                    if key in api.secrets:
                        return self.reply(409, {"kind": "Status", "code": 409})
                    return self.reply(201, api.store(key, body))
                if self.command == "PUT" and name:
                    current = api.secrets.get((ns, name))
                    if current is None:
                        return self.reply(404, {"kind": "Status", "code": 404})
                    if body["metadata"].get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
                        return self.reply(409, {"kind": "Status", "code": 409})
                    return self.reply(200, api.store((ns, name), body))
                return self.reply(405, {"kind": "Status", "code": 405})

            do_GET = do_POST = do_PUT = do_PATCH = handle_call

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def store(self, key, body):
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.secrets[key] = body
        return body

    def close(self):
        self.server.shutdown()
        self.server.server_close()
