#!/usr/bin/env python3
# tests/clients/reqlog_proxy.py - loopback HTTP proxy in front of ds4-server that
# logs every request line ("METHOD PATH STATUS", one per line). The server's
# --trace records only generation jobs; the client tests also need to see the
# other calls a frontend makes (Claude Code's /v1/messages/count_tokens, model
# list refreshes). Streams response bodies through unbuffered, so SSE timing is
# kept. usage: reqlog_proxy.py UPSTREAM_PORT LOG_FILE PORT_FILE
import http.client, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UP = int(sys.argv[1])
LOG = open(sys.argv[2], "a", buffering=1)
lock = threading.Lock()

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: close delimits the body

    def log_message(self, *a):
        pass

    def relay(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive", "transfer-encoding")}
        c = http.client.HTTPConnection("127.0.0.1", UP, timeout=900)
        c.request(self.command, self.path, body=body, headers=hdrs)
        r = c.getresponse()
        with lock:
            LOG.write(f"{self.command} {self.path} {r.status}\n")
        self.send_response_only(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        while True:
            chunk = r.read1(65536)
            if not chunk:
                break
            self.wfile.write(chunk)
            self.wfile.flush()
        c.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = relay

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(sys.argv[3], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
