#!/usr/bin/env python3
"""The fleet tier's forwarding proxy: the hosts' apt reaches the Debian mirror only through it.

It listens on the controller's end of each host's veth pair (--listen ADDR:PORT, repeatable) and
forwards plain-HTTP GET and HEAD requests for the mirror's hosts (--allow HOST, repeatable: the
hosts of this machine's apt sources, passed by Tests/fleet/run.sh) to port 80 there; anything
else is refused with 403, and counted. apt sends absolute URIs to a proxy (Acquire::http::Proxy),
so the request names the mirror. It stops by itself when its parent is gone or after
--lifetime seconds. One line per request in --log; SIGTERM ends it.
"""
from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
              "trailer", "transfer-encoding", "upgrade"}


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    allowed: set[str] = set()
    log_file = None
    lock = threading.Lock()
    counts = {"forwarded": 0, "refused": 0, "bytes": 0}
    local = threading.local()

    def log_message(self, fmt, *args):  # the request log is ours (log_request)
        pass

    def record(self, status, url, size=0):
        with Proxy.lock:
            Proxy.counts["forwarded" if status != 403 else "refused"] += 1
            Proxy.counts["bytes"] += size
            if Proxy.log_file:
                Proxy.log_file.write("%s %s %s %d %s\n" % (
                    time.strftime("%H:%M:%S"), self.client_address[0], status, size, url))
                Proxy.log_file.flush()

    def refuse(self, why):
        body = ("refused by the fleet test's proxy: %s\n" % why).encode()
        self.send_response(403)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.record(403, self.path)

    def upstream(self, host):
        conns = getattr(Proxy.local, "conns", None)
        if conns is None:
            conns = Proxy.local.conns = {}
        conn = conns.get(host)
        if conn is None:
            conn = conns[host] = http.client.HTTPConnection(host, 80, timeout=60)
        return conn

    def forward(self):
        url = urlsplit(self.path)
        if url.scheme != "http" or not url.hostname:
            return self.refuse("not an absolute http:// URI")
        if url.hostname not in Proxy.allowed or (url.port not in (None, 80)):
            return self.refuse("%s is not the mirror" % url.netloc)
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = url.hostname
        for attempt in (1, 2):
            conn = self.upstream(url.hostname)
            try:
                conn.request(self.command, path, headers=headers)
                response = conn.getresponse()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                Proxy.local.conns.pop(url.hostname, None)
                if attempt == 2:
                    body = b"the mirror did not answer\n"
                    self.send_response(502)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    self.record(502, self.path)
                    return
        length = response.getheader("Content-Length")
        self.send_response(response.status, response.reason)
        for k, v in response.getheaders():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        close = length is None and self.command != "HEAD" and response.status not in (204, 304)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        size = 0
        if self.command != "HEAD":
            while True:
                chunk = response.read(65536)
                if not chunk:
                    break
                self.wfile.write(chunk)
                size += len(chunk)
        else:
            response.read()
        if response.will_close:
            conn.close()
            Proxy.local.conns.pop(url.hostname, None)
        self.record(response.status, self.path, size)

    def do_GET(self):
        self.forward()

    def do_HEAD(self):
        self.forward()

    def do_POST(self):
        self.refuse("only GET and HEAD")

    do_PUT = do_DELETE = do_CONNECT = do_OPTIONS = do_PATCH = do_POST


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", action="append", required=True, help="ADDR:PORT (repeatable)")
    parser.add_argument("--allow", action="append", required=True, help="a mirror host (repeatable)")
    parser.add_argument("--log", required=True)
    parser.add_argument("--lifetime", type=int, default=7200)
    parser.add_argument("--ready", help="a file written once every listener is bound")
    args = parser.parse_args()
    Proxy.allowed = set(args.allow)
    Proxy.log_file = open(args.log, "a", encoding="utf-8")
    servers = []
    for listen in args.listen:
        addr, port = listen.rsplit(":", 1)
        server = Server((addr, int(port)), Proxy)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("%d\n" % os.getpid())
    parent = os.getppid()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + args.lifetime
    while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
        stop.wait(1)
    for server in servers:
        server.shutdown()
    with Proxy.lock:
        Proxy.log_file.write("# forwarded %(forwarded)d, refused %(refused)d, bytes %(bytes)d\n" % Proxy.counts)
        Proxy.log_file.close()


if __name__ == "__main__":
    socket.setdefaulttimeout(120)
    sys.exit(main())
