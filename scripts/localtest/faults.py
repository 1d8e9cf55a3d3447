"""Fault injection: rules that make matching requests fail in a chosen way.

A rule matches by path prefix (and optionally method) and applies to `count` requests (-1:
until cleared); a `*` in the path matches within one segment and a final `$` asks for the
whole path, so `/ttd/app/instances/*/*/data` catches every upload and `/ttd/app/instances$`
only instance creation. The path is that glob, never a regex: a path with regex syntax (`^`,
`\\`, `(`, `)`, `|`, `+`, `[`, `]`, `{`, `}`, `?`, `.*`, or a `$` before the end) is refused,
since it would match no request and a test using it would pass without testing anything.
Each rule counts its `hits`; the rules added since the last clear stay listed with their hits
(`all`) after they are used up, so a test can assert that its faults fired. Rules are tried in the order they were added; the first that matches
is used and loses one count, and is removed when it reaches zero. Actions:

  status    answer with that status and a ProblemDetails body (optional Retry-After)
  delay_ms  sleep, then answer normally
  drop      close the connection without answering
  truncate  send the headers and half the body, then close the connection
  hang      accept the request and never answer (until the client goes away)
  stall     send the headers and half the body, then nothing more (the connection stays open)
  trickle_bps  send the answer at that many bytes per second
  endless   answer with that status and an error body that never ends (1 KiB every 50 ms)

hang, stall and endless hold the connection until the client closes it or HOLD_MAX seconds
pass, so a client without a deadline is seen to hang rather than to fail.

With `"after": true` the request is first handled as usual (an instance is created, a body
stored) and only then is the answer replaced by the status, delayed, or dropped: the crash
window where the platform did the work but the client never heard of it.
"""

import re
import threading

ACTIONS = ("status", "delay_ms", "drop", "truncate", "hang", "stall", "trickle_bps", "endless")
HOLD_MAX = 300  # seconds a held connection is kept at most


# Regex syntax a path glob never needs: the reason it is refused.
_REGEX_SIGNS = (
    (".*", "\".*\" is regex; in a fault path * alone matches within one segment"),
    (".+", "\".+\" is regex; in a fault path * alone matches within one segment"),
    ("^", "\"^\" is regex; a fault path always matches from its start"),
    ("\\", "\"\\\" is regex escaping; a fault path is matched literally except * and a final $"),
    ("(", "\"(\" is a regex group; a fault path has none"),
    (")", "\")\" is a regex group; a fault path has none"),
    ("|", "\"|\" is regex alternation; add one rule per path instead"),
    ("+", "\"+\" is a regex repeat; a fault path has none"),
    ("[", "\"[\" is a regex class; use * for any one segment"),
    ("]", "\"]\" is a regex class; use * for any one segment"),
    ("{", "\"{\" is a regex repeat; a fault path has none"),
    ("}", "\"}\" is a regex repeat; a fault path has none"),
    ("?", "\"?\" starts a query, which fault paths never see (or it is regex)"),
)


def refuse_regex(path):
    """ValueError when path looks like a regex: such a rule would never fire."""
    for sign, why in _REGEX_SIGNS:
        if sign in path:
            raise ValueError("path %r looks like a regex, but fault paths are globs: %s"
                             % (path, why))
    if "$" in path[:-1]:
        raise ValueError("path %r looks like a regex, but fault paths are globs: \"$\" "
                         "is only allowed at the end (the whole path)" % path)


class FaultRule:
    def __init__(self, rule_id, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault rule is a JSON object")
        unknown = set(spec) - {"path", "method", "count", "retry_after", "after"} - set(ACTIONS)
        if unknown:
            raise ValueError("unknown fault field(s): %s" % ", ".join(sorted(unknown)))
        actions = [a for a in ACTIONS if a in spec and spec[a] not in (None, False)]
        if len(actions) != 1:
            raise ValueError("give exactly one of: " + ", ".join(ACTIONS))
        self.id = rule_id
        self.action = actions[0]
        self.path = spec.get("path") or "/"
        if isinstance(self.path, str):
            refuse_regex(self.path)
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError("path must be a string starting with /")
        exact = self.path.endswith("$")
        pattern = "[^/]*".join(re.escape(p) for p in self.path.rstrip("$").split("*"))
        self._regex = re.compile(pattern + ("$" if exact else ""))
        self.hits = 0
        self.after = spec.get("after", False)
        if not isinstance(self.after, bool):
            raise ValueError("after must be true or false")
        method = spec.get("method")
        self.method = method.upper() if isinstance(method, str) and method else None
        self.count = spec.get("count", 1)
        if not isinstance(self.count, int) or isinstance(self.count, bool) or \
                (self.count < 1 and self.count != -1):
            raise ValueError("count must be a positive integer or -1")
        self.status = None
        self.retry_after = None
        self.delay_ms = None
        self.trickle_bps = None
        if self.action in ("status", "endless"):
            self.status = spec[self.action]
            if not isinstance(self.status, int) or not 100 <= self.status <= 599:
                raise ValueError("status must be an HTTP status code")
            if self.action == "status" and spec.get("retry_after") is not None:
                self.retry_after = spec["retry_after"]
                retry = self.retry_after
                if not isinstance(retry, (int, str)) or isinstance(retry, bool):
                    raise ValueError("retry_after must be seconds or an HTTP date")
        elif self.action == "delay_ms":
            self.delay_ms = spec["delay_ms"]
            if not isinstance(self.delay_ms, (int, float)) or self.delay_ms < 0:
                raise ValueError("delay_ms must be a non-negative number")
        elif self.action == "trickle_bps":
            self.trickle_bps = spec["trickle_bps"]
            if not isinstance(self.trickle_bps, (int, float)) or isinstance(self.trickle_bps, bool) \
                    or not 0 < self.trickle_bps <= 1 << 20:
                raise ValueError("trickle_bps must be a positive number of bytes per second")
        elif spec[self.action] is not True:
            raise ValueError("%s must be true" % self.action)

    def matches(self, method, path):
        return (self._regex.match(path) is not None
                and (self.method is None or self.method == method))

    def to_json(self):
        out = {"id": self.id, "path": self.path, "count": self.count, "hits": self.hits}
        if self.method:
            out["method"] = self.method
        if self.after:
            out["after"] = True
        if self.action == "status":
            out["status"] = self.status
            if self.retry_after is not None:
                out["retry_after"] = self.retry_after
        elif self.action == "endless":
            out["endless"] = self.status
        elif self.action == "delay_ms":
            out["delay_ms"] = self.delay_ms
        elif self.action == "trickle_bps":
            out["trickle_bps"] = self.trickle_bps
        else:
            out[self.action] = True
        return out


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self._added = []              # every rule since the last clear, used up or not
        self._next_id = 1

    def add(self, spec):
        """Validate and append a rule; raises ValueError with a message for the client."""
        with self._lock:
            rule = FaultRule(self._next_id, spec)
            self._next_id += 1
            self._rules.append(rule)
            self._added.append(rule)
            return rule

    def take(self, method, path):
        """The first rule matching this request, with one count consumed; else None."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    if rule.count > 0:
                        rule.count -= 1
                        if rule.count == 0:
                            self._rules.remove(rule)
                    return rule
            return None

    def list(self, every=False):
        """The rules still in force; with every, all added since the last clear."""
        with self._lock:
            return [r.to_json() for r in (self._added if every else self._rules)]

    def get(self, rule_id):
        """One rule added since the last clear (used up or not), or None."""
        with self._lock:
            return next((r.to_json() for r in self._added if r.id == rule_id), None)

    def clear(self):
        """Removes every rule; returns those that never fired."""
        with self._lock:
            unfired = [r.to_json() for r in self._added if r.hits == 0]
            self._rules = []
            self._added = []
            return unfired
