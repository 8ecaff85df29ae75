#!/usr/bin/env python3
"""Range-capable file server for ds4ctl download tests (loopback only, bounded life).

usage: httpfile.py FILE PORTFILE LOGFILE [MAX_SECONDS]
Serves FILE at any path on 127.0.0.1:<free port> (written to PORTFILE). Supports HEAD,
GET with Range (206 + Content-Range), 416 with "bytes */N" past the end, ETag and
If-Range. Knobs are files next to PORTFILE, read on every request so a test can change
behaviour between runs:
  <PORTFILE>.drop     N: the next GET sends only N body bytes then closes (one-shot)
  <PORTFILE>.status   CODE: answer every request with this status (500, 404, 401)
  <PORTFILE>.etag     value of the ETag header (default "v1")
  <PORTFILE>.nolen    present: HEAD carries no Content-Length (forces the GET/416 path)
  <PORTFILE>.then_status  CODE: becomes <PORTFILE>.status once a drop has fired
  <PORTFILE>.slow     N: send the body N bytes per 0.1 s
Each request is logged as one line "METHOD range=<Range or -> auth=<yes|no> -> CODE".
"""
import os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

path, portfile, logfile = sys.argv[1], sys.argv[2], sys.argv[3]
max_s = float(sys.argv[4]) if len(sys.argv) > 4 else 120

def knob(name):
    try:
        with open(portfile + "." + name) as f: return f.read().strip()
    except OSError: return None

def log(line):
    with open(logfile, "a") as f: f.write(line + "\n")

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, head):
        data = open(path, "rb").read()
        size = len(data)
        etag = '"%s"' % (knob("etag") or "v1")
        rng = self.headers.get("Range")
        auth = "yes" if self.headers.get("Authorization") else "no"
        st = knob("status")
        if st:
            code = int(st)
            body = b"error"
            self.send_response(code); self.send_header("Content-Length", str(len(body))); self.end_headers()
            if not head: self.wfile.write(body)
            log("%s range=%s auth=%s -> %d" % (self.command, rng or "-", auth, code)); return
        start = 0
        if rng and rng.startswith("bytes=") and not head:
            ir = self.headers.get("If-Range")
            if ir is None or ir == etag:
                start = int(rng[6:].split("-")[0])
                if start >= size:
                    self.send_response(416); self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0"); self.end_headers()
                    log("GET range=%s auth=%s -> 416" % (rng, auth)); return
                code = 206
            else: code = 200
        else: code = 200
        body = data[start:]
        self.send_response(code)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if code == 206: self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        if not (head and knob("nolen") is not None): self.send_header("Content-Length", str(len(body)))
        if head and knob("nolen") is not None: self.send_header("Connection", "close")
        self.end_headers()
        log("%s range=%s auth=%s -> %d" % (self.command, rng or "-", auth, code))
        if head: return
        drop = knob("drop")
        if drop is not None:
            os.unlink(portfile + ".drop")
            if os.path.exists(portfile + ".then_status"):
                os.rename(portfile + ".then_status", portfile + ".status")
            self.wfile.write(body[:int(drop)]); self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        slow = knob("slow")
        if slow:
            step = int(slow)
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step]); self.wfile.flush(); time.sleep(0.1)
            return
        self.wfile.write(body)
    def do_HEAD(self): self.answer(True)
    def do_GET(self): self.answer(False)

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f: f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
threading.Timer(max_s, lambda: os._exit(0)).start()
srv.serve_forever()
