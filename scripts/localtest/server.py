"""The HTTP server: one host:port for every endpoint, the request log and fault injection.

`LocalPlatform` owns the shared state (store, tokens, log, faults) and the route tables; each
endpoint module adds its routes in `register(router, platform)`, so new APIs (App API writes,
Events, Maskinporten) slot in with one line here. `Handler` turns a request into a
`web.Request`, applies faults, checks the bearer token, calls the route and sends the
`web.Response`, keeping the log entry in step.

Sending: headers always carry Content-Length; bodies go out in chunks straight from the
content object, so a 256 MiB element costs no memory; a client that disconnects ends the
sending quietly. Keep-alive needs Nagle off (DESIGN.md: 40 ms stalls otherwise).
"""

import http.server
import select
import socket
import sys
import time
import traceback
import urllib.parse

from . import (admin, appapi, apps, auth, broker, brokerapi, brokerowner, corrapi, correspondence,
               events, faults, hostile, maskinporten, model, parties, reqlog, storage, web)

ADMIN_PREFIX = "/_localtest"
_SMALL_BODY = 64 << 10
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


class Options:
    def __init__(self, token_lifetime=3600, quiet=False, ranges=False, min_event_age=30,
                 allow_http_webhooks=False, webhook_retry_scale=1.0,
                 enforce_data_type_task_id=False):
        self.token_lifetime = token_lifetime
        self.quiet = quiet
        self.ranges = ranges
        self.min_event_age = min_event_age              # seconds; events polling only
        self.allow_http_webhooks = allow_http_webhooks  # http:// endpoints on loopback
        self.webhook_retry_scale = webhook_retry_scale  # multiplies the retry schedule
        # app-lib's EnforceDataTypeTaskId (AppSettings.cs:255, default false)
        self.enforce_data_type_task_id = enforce_data_type_task_id


class LocalPlatform:
    def __init__(self, options):
        self.options = options
        self.store = model.Store()
        self.tokens = auth.TokenService(options.token_lifetime)
        self.log = reqlog.RequestLog()
        self.faults = faults.Faults()
        self.hostile = hostile.Hostile()
        self.parties = parties.PartyRegister(self.store)
        self.events = events.EventService(self)
        self.maskinporten = maskinporten.MaskinportenService(self)
        self.broker = broker.BrokerService(self)
        self.correspondence = correspondence.CorrespondenceService(self)
        self.url = None   # http://host:port once listening (cli.py)
        self.router = web.Router()
        self.admin_router = web.Router()
        # Order matters only where templates overlap: fixed prefixes before /{org}/{app}.
        auth.register(self.router, self)
        maskinporten.register(self.router, self)
        storage.register(self.router, self)
        events.register(self.router, self)
        brokerapi.register(self.router, self)
        brokerowner.register(self.router, self)  # the service owner's /resource
        corrapi.register(self.router, self)
        apps.register(self.router, self)
        appapi.register(self.router, self)
        admin.register(self.admin_router, self)
        hostile.register(self.admin_router, self, ADMIN_PREFIX)
        events.register_admin(self.admin_router, self)
        maskinporten.register_admin(self.admin_router, self)
        brokerapi.register_admin(self.admin_router, self)
        corrapi.register_admin(self.admin_router, self)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "altinn-localtest"
    sys_version = ""

    # -- entry points -------------------------------------------------------------------

    def handle(self):
        try:
            super().handle()
        except _CLIENT_GONE:
            pass

    def do_GET(self):
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def log_request(self, code="-", size="-"):
        pass   # _dispatch logs with timing

    def log_message(self, fmt, *args):
        if not self.server.platform.options.quiet:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    # -- dispatch -----------------------------------------------------------------------

    def _dispatch(self):
        platform = self.server.platform
        started = time.monotonic()
        target = self.path
        if not target.startswith("/"):
            parts = urllib.parse.urlsplit(target)      # absolute-form request target
            target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        raw_path, _, query_string = target.partition("?")
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        try:
            req = web.Request(self.command, raw_path, query_string, self.headers,
                              "http://" + host, self.rfile)
        except web.HttpError as e:
            self.close_connection = True
            self._send(e.response, None, None)
            return

        is_admin = raw_path == ADMIN_PREFIX or raw_path.startswith(ADMIN_PREFIX + "/")
        entry = None
        status = None
        try:
            if is_admin:
                response = self._route(platform.admin_router, req, check_auth=False)
                status = self._finish(req, response, None, None)
                return
            entry = platform.log.start(self.command, raw_path, query_string,
                                       self.headers.get("Range"),
                                       self.headers.get("Authorization") is not None,
                                       self.headers.get("Upload-Offset"))
            req.count_into(entry)
            rule = platform.faults.take(self.command, raw_path)
            response = None
            if rule is not None and rule.after:
                # Do the work first: the client loses the answer, not the change.
                response = self._route(platform.router, req, check_auth=True)
            if rule is not None and rule.action in ("drop", "hang"):
                entry["status"] = status = 0
                self.close_connection = True
                if rule.action == "hang":
                    self._hold()
                return
            if rule is not None and rule.action == "endless":
                status = self._send_endless(rule.status, entry)
                return
            if rule is not None and rule.action == "delay_ms":
                time.sleep(rule.delay_ms / 1000.0)
            if rule is not None and rule.action == "status":
                headers = []
                if rule.retry_after is not None:
                    headers.append(("Retry-After", str(rule.retry_after)))
                title = self.responses.get(rule.status, ("Error",))[0]
                response = web.problem(rule.status, title, "Injected by altinn-localtest",
                                       raw_path, headers)
            elif response is None:
                response = platform.hostile.route(
                    req, lambda r: self._route(platform.router, r, check_auth=True))
            status = self._finish(req, response, entry, rule)
        finally:
            if not platform.options.quiet:
                ms = (time.monotonic() - started) * 1000
                sent = entry["bytes"] if entry else "-"
                self.log_message('"%s %s" %s %s %.1fms%s', self.command, target,
                                 status if status is not None else "-", sent, ms,
                                 " (admin)" if is_admin else "")

    def _route(self, router, req, check_auth):
        route, params = router.match(req.method, req.path)
        if route is None:
            if params:
                return web.empty(405, [("Allow", ", ".join(sorted(set(params))))])
            return web.empty(404)
        req.params = params
        if check_auth and route.auth:
            req.principal = self.server.platform.tokens.authenticate(req.headers)
            if req.principal is None:
                return auth.unauthorized()
        try:
            return route.handler(req)
        except web.HttpError as e:
            return e.response
        except _CLIENT_GONE:
            raise
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return web.text(500, "Internal error in altinn-localtest")

    def _finish(self, req, response, entry, rule):
        """Drain the request body (or plan to close), then send as the fault rule (or None)
        says. Returns the status."""
        try:
            if not req.finish_body():
                self.close_connection = True
        except (ValueError, ConnectionError):
            self.close_connection = True
        self._send(response, entry, rule)
        return response.status

    # -- sending ------------------------------------------------------------------------

    def _send(self, response, entry, rule):
        action = rule.action if rule is not None else None
        truncate = action in ("truncate", "stall")
        length = response.length
        no_body = (self.command == "HEAD" or response.status in (204, 304)
                   or response.status < 200)
        limit = length // 2 if truncate else None
        try:
            self.send_response_only(response.status)
            self.send_header("Date", self.date_time_string())
            for name, value in response.headers:
                self.send_header(name, value)
            if not no_body or self.command == "HEAD":
                self.send_header("Content-Length", str(length))
            if self.close_connection and not truncate:
                self.send_header("Connection", "close")
            self._headers_buffer.append(b"\r\n")
            if entry is not None:
                entry["status"] = response.status
            if no_body:
                self.flush_headers()
                return
            if action == "trickle_bps":
                self.flush_headers()
                self._trickle(response.chunks(), entry, rule.trickle_bps)
            elif response.content is None and length <= _SMALL_BODY:
                body = response.body if limit is None else response.body[:limit]
                if entry is not None:
                    entry["bytes"] += len(body)
                self._headers_buffer.append(body)    # one write for headers and body
                self.flush_headers()
            else:
                self.flush_headers()
                for chunk in response.chunks(limit):
                    self._send_chunk(chunk, entry)
            if truncate:
                self.close_connection = True
            if action == "stall":
                self._hold()
        except _CLIENT_GONE:
            self.close_connection = True


    def _hold(self):
        """Keep the connection open, saying nothing, until the client closes it."""
        self.close_connection = True
        deadline = time.monotonic() + faults.HOLD_MAX
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.2)
            if readable:
                try:
                    if not self.connection.recv(4096):
                        return   # the client went away
                except OSError:
                    return

    def _trickle(self, chunks, entry, bps):
        """Send the body in pieces of at most 1 KiB, at `bps` bytes per second."""
        piece = max(1, min(1024, int(bps / 10)))
        for chunk in chunks:
            for i in range(0, len(chunk), piece):
                part = chunk[i:i + piece]
                self._send_chunk(part, entry)
                time.sleep(len(part) / bps)

    def _send_endless(self, status, entry):
        """Answer `status` with a body that never ends, 1 KiB every 50 ms, until the client
        goes away. Returns the status."""
        self.close_connection = True
        line = b"Injected by altinn-localtest: this error body never ends.\n"
        piece = line * (1024 // len(line) + 1)
        try:
            self.send_response_only(status)
            self.send_header("Date", self.date_time_string())
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            entry["status"] = status
            deadline = time.monotonic() + faults.HOLD_MAX
            while time.monotonic() < deadline:
                self._send_chunk(piece[:1024], entry)
                time.sleep(0.05)
        except _CLIENT_GONE:
            pass
        return status

    def _send_chunk(self, chunk, entry):
        """Send all of `chunk`, keeping entry["bytes"] equal to what the kernel took.

        The count is raised before sending (so a client that has the whole body never sees a
        log entry lagging behind) and lowered by what was not sent if the client goes away.
        """
        view = memoryview(chunk)
        if entry is not None:
            entry["bytes"] += len(view)
        sent = 0
        try:
            while sent < len(view):
                sent += self.connection.send(view[sent:])
        except _CLIENT_GONE:
            if entry is not None:
                entry["bytes"] -= len(view) - sent
            raise


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, platform):
        self.platform = platform
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], _CLIENT_GONE):
            return
        super().handle_error(request, client_address)

    @property
    def url(self):
        host, port = self.server_address[:2]
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d" % (host, port)
