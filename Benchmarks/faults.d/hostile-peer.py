# A hostile peer on loopback (Benchmarks/faults): python3 hostile-peer.py MODE PORT [REQUESTS_FILE]
# (with REQUESTS_FILE, the path of every request is appended to it as a line)
#   series  - Prometheus: every query answers 1.4 million series (about 100 MB), count((...)) answers 1400000
#   endless - Prometheus: every query answers a body without end
#   drip    - Prometheus: every query answers a byte every 100 ms
#   escapes - Prometheus: every query answers HTTP 400 with an 850 KB error full of escape sequences
#   engine  - Docker engine: /version answers, every list answers a body without end
#   neginf  - Prometheus: every query answers one series whose value is -Inf
#   receiver - a webhook receiver: every POST answers 200 with a body without end
import http.server, json, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
ERROR = json.dumps({"status": "error", "errorType": "bad_data", "error": "\x1b[2J\x1b]0;owned\x07bad " * 25000}).encode()

class Hostile(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the end of the connection ends a body without length

    def head(self, status=200, length=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def note(self):
        if len(sys.argv) > 3:
            with open(sys.argv[3], "a") as f:
                f.write(self.command + " " + self.path + "\n")

    def do_GET(self):
        self.note()
        try:
            if self.path.startswith("/-/ready") or self.path.endswith("/version"):
                body = b'{"ApiVersion":"1.41"}' if mode == "engine" else b"Prometheus is Ready.\n"
                self.head(200, len(body)); self.wfile.write(body); return
            if mode == "series" and "query=count%28%28" in self.path:
                body = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1400000"]}]}}'
                self.head(200, len(body)); self.wfile.write(body); return
            if mode == "series":
                self.head(200)
                self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
                for chunk in range(1400):
                    self.wfile.write(",".join('{"metric":{"__name__":"up","instance":"host-%d"},"value":[1,"1"]}' % (chunk * 1000 + i) for i in range(1000)).encode() + (b"," if chunk < 1399 else b""))
                self.wfile.write(b"]}}"); return
            if mode == "neginf":
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [time.time(), "-Inf"]}]}}).encode()
                self.head(200, len(body)); self.wfile.write(body); return
            if mode == "escapes":
                self.head(400, len(ERROR)); self.wfile.write(ERROR); return
            self.head(200)
            piece = b"[" * 65536 if mode == "engine" else b"x" * 65536
            while True:
                if mode == "drip":
                    self.wfile.write(b" "); self.wfile.flush(); time.sleep(0.1)
                else:
                    self.wfile.write(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        self.note()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if mode != "receiver":
            self.head(404, 0); return
        try:
            self.head(200)
            while True:
                self.wfile.write(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *arguments):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", port), Hostile).serve_forever()
