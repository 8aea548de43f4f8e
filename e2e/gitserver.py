#!/usr/bin/env python3
"""A smart-HTTP git server for the local control plane: `git http-backend` behind a small
threaded HTTP server on loopback.

  /git/<name>.git/...      open repositories (clone, fetch, push)
  /private/<name>.git/...  the same, behind HTTP basic auth (GIT_SERVER_USERNAME/PASSWORD)
  /static/...              plain files (Helm chart repositories for tests)

Usage: gitserver.py ROOT PORT. Repositories live in ROOT/public and ROOT/private, static
files in ROOT/static.
"""
import base64
import hmac
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

ROOT = os.path.abspath(sys.argv[1])
PORT = int(sys.argv[2])
USER = os.environ.get("GIT_SERVER_USERNAME", "")
PASSWORD = os.environ.get("GIT_SERVER_PASSWORD", "")
BACKEND = os.path.join(
    subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip(),
    "git-http-backend",
)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tumbler-e2e-git/1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK add ~40 ms to every request.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # one line per request, to the log file
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.route()

    def do_HEAD(self):
        self.route()

    def route(self):
        path = unquote(urlsplit(self.path).path)
        if ".." in path.split("/"):
            return self.reply(400, b"bad path\n")
        if path.startswith("/git/"):
            return self.git("public", path[len("/git"):])
        if path.startswith("/private/"):
            if not self.authorised():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="tumbler-e2e"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self.git("private", path[len("/private"):])
        if path.startswith("/static/"):
            return self.static(path[len("/static/"):])
        if path == "/healthz":
            return self.reply(200, b"ok\n")
        return self.reply(404, b"not found\n")

    def authorised(self):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            return False
        return hmac.compare_digest(user, USER) and hmac.compare_digest(password, PASSWORD)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def git(self, area, path_info):
        data = self.body()
        query = urlsplit(self.path).query
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": os.path.join(ROOT, area),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_HTTP_MAX_REQUEST_BUFFER": "100M",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(data)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": USER if area == "private" else "anonymous",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        for header in ("Content-Encoding", "Git-Protocol", "Accept"):
            if header in self.headers:
                env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        proc = subprocess.run([BACKEND], input=data, env=env, capture_output=True)
        if proc.returncode != 0 and not proc.stdout:
            sys.stderr.write(proc.stderr.decode(errors="replace"))
            return self.reply(500, b"git http-backend failed\n")
        head, _, body = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, body = proc.stdout.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode(errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name.strip(), value.strip()))
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def static(self, rel):
        path = os.path.join(ROOT, "static", rel)
        if not os.path.isfile(path):
            return self.reply(404, b"not found\n")
        with open(path, "rb") as f:
            data = f.read()
        ctype = "application/x-yaml" if path.endswith(".yaml") else "application/octet-stream"
        self.reply(200, data, ctype)

    def reply(self, status, data, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    for area in ("public", "private", "static"):
        os.makedirs(os.path.join(ROOT, area), exist_ok=True)
    Server(("127.0.0.1", PORT), Handler).serve_forever()
