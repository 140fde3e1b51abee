"""Schemathesis hooks for Observian, loaded through schemathesis.toml (`hooks = ...`).

The OpenAPI document states every rule of a single value (types, ranges, patterns, enums).
A few rules tie values together or to the clock, which JSON Schema cannot state; the document
says them in prose. A *positive* case (one Schemathesis expects the server to accept) that
breaks one of them is repaired here so that it is valid, and stays a positive case; negative
cases are left alone. Each repair names the rule and where the server enforces it:

- GET /logs: offset and cursor exclude each other; a cursor is only valid as issued by the
  server (it carries a checksum); start_time is not after end_time (src/query/logs.ts,
  src/query/filters.ts).
- GET /logs/live-feed: start_time is not after end_time (src/live/feed.ts).
- GET /logs/summary: window excludes start_time/end_time; start_time is before end_time, at most
  31 days before it, and in the past when given alone; a step gives at most 1440 points
  (src/query/summary.ts).
- POST /control/*-toggle: the query's enable and the body's enabled agree when both are given
  (src/http/routes/control.ts).
- POST /logs: an event's timestamp lies within the retention window (RETENTION_DAYS back, one
  day ahead), and serialised attributes hold at most 8192 bytes, nested at most 16 deep
  (src/ingest/validate.ts).
- Alert definitions name things that must exist and tie fields together (src/alerts/): a rule's
  services and channels exist, its threshold fits its kind, its window is 1m-24h and its `for`
  0s-24h, its labels are not the reserved ones; an SLO's service exists, its name is unique per
  service, and latency_threshold_ms comes with a latency SLO only; a channel's name is unique, its
  URL parses, a Slack channel has no secret; a team's channel exists; a silence has a matcher, an
  existing service and rule, and ends within 30 days.
"""

from __future__ import annotations

import base64
import uuid
import json
import re
from datetime import datetime, timedelta, timezone

import schemathesis
from schemathesis import GenerationMode

try:
    # Beside `st` (../shared/tools/schemathesis): lets Schemathesis send application/x-ndjson.
    import ndjson_hooks  # noqa: F401
except ImportError as exc:  # pragma: no cover
    raise ImportError(
        "ndjson_hooks not found: put the directory of Schemathesis's `st` "
        "(../shared/tools/schemathesis) on PYTHONPATH"
    ) from exc

ISO = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})$"
)
EDGE_MIN = datetime(1, 1, 1, tzinfo=timezone.utc)
EDGE_MAX = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
DAY = timedelta(days=1)
# The server's defaults (RETENTION_DAYS=7); a margin keeps clear of the edges.
RETENTION = timedelta(days=7)
MAX_SPAN = timedelta(days=31)
MAX_POINTS = 1440
STEPS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
MAX_ATTRIBUTES_BYTES = 8192
MAX_ATTRIBUTES_DEPTH = 16


def parse_time(s: object) -> datetime | None:
    """The instant a time parameter names (clamped to years 1-9999, as the server does)."""
    if not isinstance(s, str):
        return None
    m = ISO.match(s)
    if not m:
        return None
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    sec = int(m.group(6) or 0)
    micro = int((m.group(7) or "").ljust(6, "0")[:6])
    zone = m.group(8)
    offset = timedelta(0)
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    try:
        local = datetime(y, mo, d, h, mi, sec, micro)
    except ValueError:
        return None
    # Python's datetime cannot leave years 1-9999 either; clamp as the server does.
    try:
        return (local - offset).replace(tzinfo=timezone.utc)
    except OverflowError:
        return EDGE_MIN if offset > timedelta(0) else EDGE_MAX


def shifted(t: datetime, by: timedelta) -> datetime:
    """t + by, held within years 1-9999."""
    try:
        return t + by
    except OverflowError:
        return EDGE_MIN if by < timedelta(0) else EDGE_MAX


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


def fnv1a(s: str) -> str:
    h = 0x811C9DC5
    for ch in s:
        h ^= ord(ch)
        h = (h * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def issued_cursor(s: object) -> bool:
    """A cursor as the server issues it: base64url of "ts|id|checksum" (src/query/logs.ts)."""
    if not isinstance(s, str):
        return False
    try:
        text = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode("latin-1")
    except Exception:
        return False
    parts = text.split("|")
    return len(parts) == 3 and parts[2] == fnv1a(f"{parts[0]}|{parts[1]}")


def order_times(query: dict, strict: bool) -> None:
    """start_time before (strict) or not after end_time: swap them, or drop start_time."""
    start, end = parse_time(query.get("start_time")), parse_time(query.get("end_time"))
    if start is None or end is None:
        return
    if start > end or (strict and start == end):
        if start == end:
            del query["start_time"]
        else:
            query["start_time"], query["end_time"] = query["end_time"], query["start_time"]


@schemathesis.hook("map_case").apply_to(path="/logs", method="GET")
def logs_query(ctx, case):
    if positive(case) and case.query:
        if "cursor" in case.query and ("offset" in case.query or not issued_cursor(case.query["cursor"])):
            del case.query["cursor"]
        order_times(case.query, strict=False)
    return case


@schemathesis.hook("map_case").apply_to(path="/logs/live-feed", method="GET")
def live_query(ctx, case):
    if positive(case) and case.query:
        order_times(case.query, strict=False)
    return case


@schemathesis.hook("map_case").apply_to(path="/logs/summary", method="GET")
def summary_query(ctx, case):
    q = case.query
    if not positive(case) or not q:
        return case
    if "window" in q and ("start_time" in q or "end_time" in q):
        del q["window"]
    order_times(q, strict=True)
    now = datetime.now(timezone.utc)
    start, end = parse_time(q.get("start_time")), parse_time(q.get("end_time"))
    if start is not None and end is None and start >= now - timedelta(minutes=1):
        del q["start_time"]
        start = None
    if end is not None and start is None and end <= EDGE_MIN + timedelta(minutes=1):
        del q["end_time"]  # nothing lies before the first instant of year 1
        end = None
    if start is not None or end is not None:
        end = end or now
        start = start or shifted(end, -DAY)
        if end - start > MAX_SPAN:
            start = shifted(end, timedelta(hours=1) - MAX_SPAN)
            q["start_time"] = iso(start)
            if start >= end:  # at the very edge of the calendar
                q.pop("start_time", None)
                q.pop("end_time", None)
                start, end = now - DAY, now
    else:
        start, end = now - {"15m": 900, "1h": 3600, "24h": 86400, "7d": 604800, "30d": 2592000}[
            q.get("window", "24h")
        ] * timedelta(seconds=1), now
    step = q.get("step")
    if step in STEPS and (end - start).total_seconds() / STEPS[step] > MAX_POINTS - 2:
        del q["step"]
    return case


@schemathesis.hook("map_case").apply_to(path_regex="^/control/(ingestor|pruner)-toggle$")
def toggle(ctx, case):
    if positive(case) and case.query and "enable" in case.query and isinstance(case.body, dict):
        if "enabled" in case.body:
            del case.query["enable"]
    return case


def attributes_fit(attrs: object) -> bool:
    if not isinstance(attrs, dict):
        return True
    size = len(json.dumps(attrs, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    if size > MAX_ATTRIBUTES_BYTES:
        return False
    stack = [(attrs, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > MAX_ATTRIBUTES_DEPTH:
                return False
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return True


def fit_event(event: object, now: datetime) -> None:
    if not isinstance(event, dict):
        return
    t = parse_time(event.get("timestamp"))
    if t is not None and not (now - RETENTION + timedelta(hours=1) <= t <= now + timedelta(hours=23)):
        event["timestamp"] = iso(now - timedelta(minutes=1))
    if not attributes_fit(event.get("attributes")):
        event["attributes"] = {"trimmed": True}


@schemathesis.hook("map_case").apply_to(path="/logs", method="POST")
def ingest_body(ctx, case):
    if positive(case):
        now = datetime.now(timezone.utc)
        for event in case.body if isinstance(case.body, list) else [case.body]:
            fit_event(event, now)
    return case


# ---- alert definitions (src/alerts/) ---------------------------------------------------------

SEEDED_SERVICES = {"auth-service", "checkout-service", "inventory-service"}
RESERVED_LABELS = {"alertname", "service", "team", "severity", "rule_id"}
LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DURATION = re.compile(r"^([0-9]{1,6})(s|m|h)$")
PLAIN_URL = re.compile(r"^https?://[A-Za-z0-9.-]{1,200}(:[0-9]{1,4})?(/[A-Za-z0-9._~/-]{0,500})?$")
THRESHOLD = {
    "error_rate": lambda t: 0 <= t <= 100,
    "latency_p95": lambda t: 0 < t <= 3_600_000,
    "latency_p99": lambda t: 0 < t <= 3_600_000,
    "no_traffic": lambda t: t == 0,
    "volume_drop": lambda t: 0 < t <= 1,
}
FITTING = {"error_rate": 5, "latency_p95": 500, "latency_p99": 900, "no_traffic": 0, "volume_drop": 0.5}


def seconds(d: object) -> int | None:
    m = DURATION.match(d) if isinstance(d, str) else None
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)] if m else None


def is_op(case, method: str, path: str) -> bool:
    """Whether the case is for this operation (checked here too, besides apply_to)."""
    return case.method.upper() == method and re.fullmatch(path, case.operation.path) is not None


def unique(name: str, limit: int) -> str:
    return (name[: limit - 9] + "-" + uuid.uuid4().hex[:8]) if name else uuid.uuid4().hex[:8]


@schemathesis.hook("map_case").apply_to(path_regex="^/alerts/rules(/\\{id\\})?$")
def alert_rule_body(ctx, case):
    b = case.body
    if not is_op(case, case.method.upper(), r"/alerts/rules(/\{id\})?") or not positive(case) or not isinstance(b, dict) or "kind" not in b:
        return case
    if isinstance(b.get("services"), list):
        b["services"] = [s for s in b["services"] if s in SEEDED_SERVICES]
    b.pop("channels", None)
    t = b.get("threshold")
    if not isinstance(t, (int, float)) or not THRESHOLD[b["kind"]](t):
        b["threshold"] = FITTING[b["kind"]]
    w = seconds(b.get("window"))
    if w is None or not 60 <= w <= 86400:
        b["window"] = "5m"
    f = seconds(b.get("for"))
    if f is None or f > 86400:
        b["for"] = "0s"
    if isinstance(b.get("labels"), dict):
        b["labels"] = {k: v for k, v in b["labels"].items() if LABEL.match(k) and k not in RESERVED_LABELS}
    return case


@schemathesis.hook("map_case").apply_to(path="/slos", method="POST")
def slo_body(ctx, case):
    b = case.body
    if not is_op(case, "POST", "/slos") or not positive(case) or not isinstance(b, dict):
        return case
    b["service"] = "checkout-service"
    if isinstance(b.get("name"), str):
        b["name"] = unique(b["name"], 200)
    if b.get("indicator") == "latency":
        b.setdefault("latency_threshold_ms", 300)
    else:
        b.pop("latency_threshold_ms", None)
    return case


@schemathesis.hook("map_case").apply_to(path="/alerts/channels", method="POST")
def channel_body(ctx, case):
    b = case.body
    if not is_op(case, "POST", "/alerts/channels") or not positive(case) or not isinstance(b, dict):
        return case
    if isinstance(b.get("name"), str):
        b["name"] = unique(b["name"], 64)
    if not isinstance(b.get("url"), str) or not PLAIN_URL.match(b["url"]):
        b["url"] = "https://alerts.example.com/hook"
    if b.get("type") != "webhook":
        b.pop("secret", None)
    return case


@schemathesis.hook("map_case").apply_to(path="/teams/{team}", method="PUT")
def team_body(ctx, case):
    if is_op(case, "PUT", r"/teams/\{team\}") and positive(case) and isinstance(case.body, dict):
        case.body["channel"] = None
    return case


@schemathesis.hook("map_case").apply_to(path="/alerts/silences", method="POST")
def silence_body(ctx, case):
    b = case.body
    if not is_op(case, "POST", "/alerts/silences") or not positive(case) or not isinstance(b, dict):
        return case
    m = b.get("matchers") if isinstance(b.get("matchers"), dict) else {}
    m.pop("rule", None)
    if "service" in m:
        m["service"] = "checkout-service"
    if not m:
        m["team"] = "Payments Team"
    b["matchers"] = m
    b["ends_at"] = iso(datetime.now(timezone.utc) + timedelta(hours=1))
    return case
