"""Compliance events shaped unlike `strata gen`'s, for the storage benchmark.

    python storage_gen.py SHAPE EVENTS SEED OUT.ndjson

Shapes (see benches/README.md):
- `wide`: 20 tenants over a year; UUID event and session ids, free-text
  messages built from many templates with paths, numbers and quoted errors,
  attribute keys per event out of 27 (some in most events, some rare, three
  as unknown top-level keys), RFC 3339 times with offsets and microseconds
  (text only, so that DuckDB's `read_json_auto` reads `ts` as a timestamp).
- `long`: three tenants over four months, so each month partition holds many
  rows; a small vocabulary, hex ids, a few attribute keys.

Both keep the vocabulary the benchmark's audit queries filter on (access
`login_failed`, data_usage `export`, `denied` in messages, resources), so the
same queries run on every data set. Deterministic for a seed.
"""

import datetime
import json
import random
import sys
import uuid

FAMILIES = {
    "access": (0.45, ["login", "login", "login", "logout", "login_failed", "vpn_connect", "vpn_disconnect",
                      "privilege_grant", "privilege_use", "session_start", "session_end", "password_change"]),
    "data_usage": (0.35, ["read", "read", "read", "query", "query", "export", "transfer", "update", "delete",
                          "print", "download"]),
    "technical": (0.20, ["error", "warning_raised", "incident_open", "incident_resolved", "config_change",
                         "deploy", "restart", "alert", "scan", "backup"]),
}
OUTCOMES = ["success"] * 8 + ["failure", "unknown"]
SEVERITIES = ["debug", "info", "info", "info", "notice", "warning", "error", "critical"]
ROLES = ["agent", "agent", "agent", "supervisor", "analyst", "admin", "contractor", "auditor"]
FIRST = ["ana", "bruno", "chen", "dara", "emeka", "fatima", "gita", "hugo", "ines", "jonas", "kiri", "leila",
         "mateo", "nadia", "omar", "priya", "quinn", "rosa", "sven", "tariq", "uma", "vera", "wei", "yusuf"]
LAST = ["silva", "okafor", "nguyen", "schmidt", "kowalski", "haddad", "tanaka", "garcia", "moreau", "ivanova",
        "mensah", "rossi", "lindqvist", "patel", "cohen", "obi", "santos", "kim"]
APPS = ["crm", "ticketing", "payroll", "claims-portal", "kyc-check", "dialer", "wfm", "sso", "vpn-gw",
        "sftp-gw", "warehouse", "bi-reports", "mail-relay", "k8s-api"]
RESOURCE_KINDS = {
    "s3_object": lambda r: f"s3://{r.choice(['exports', 'raw-intake', 'archive-2025'])}/{r.choice(['in', 'out', 'tmp'])}/"
                           f"{r.randrange(10**6):06d}-{r.choice(['batch', 'report', 'dump'])}.{r.choice(['csv', 'parquet', 'json.gz'])}",
    "db_table": lambda r: f"{r.choice(['crm', 'billing', 'hr', 'claims'])}.{r.choice(['customers', 'invoices', 'payments', 'cases', 'notes'])}",
    "record": lambda r: f"{r.choice(['case', 'customer', 'policy', 'ticket'])}:{r.randrange(10**7)}",
    "file": lambda r: f"/srv/share/{r.choice(FIRST)}/{r.choice(['q1', 'q2', 'contracts', 'scans'])}/doc-{r.randrange(99999)}.pdf",
}
MESSAGES = [
    "{user} signed in to {app} using {method} from {ip}",
    "Failed login for {user} on {app}: {reason}",
    "access denied to {resource} for {user} (policy {policy})",
    "{user} exported {records} rows from {resource} to {dest}",
    "query on {resource} returned {records} rows in {ms} ms",
    "Transfer of {bytes} bytes to {dest} completed with checksum {hex}",
    "{app} raised {code}: \"{error}\" at {path}:{line}",
    "Incident {ticket} opened by {user}: {error}",
    "Incident {ticket} resolved after {minutes} minutes; root cause: {cause}",
    "Configuration key {key} changed from '{old}' to '{new}' by {user}",
    "Deploy of {app} version {version} finished on {host}",
    "Session {session} for {user} ended after {minutes} min idle",
    "Privilege {privilege} granted to {user} by {admin} until {until}",
    "Scan found {records} issues in {resource}; worst severity {severity}",
    "Permission denied: {user} may not {verb} {resource}",
    "Backup of {resource} ({bytes} bytes) stored at {dest}",
]
REASONS = ["bad password", "account locked", "MFA timeout", "unknown user", "expired token", "IP not allowed"]
ERRORS = ["connection reset by peer", "timeout after 30s waiting for upstream", "NullPointerException in "
          "CaseService.load", "disk quota exceeded on /var", "TLS handshake failed: certificate expired",
          "deadlock detected", "out of memory (killed by oom-killer)", "HTTP 503 from payments-api"]
CAUSES = ["expired certificate", "misconfigured firewall rule", "full disk", "bad deploy", "upstream outage",
          "credential rotation", "memory leak"]
ATTR_KEYS = [  # (key, probability, value maker)
    ("http.method", 0.7, lambda r: r.choice(["GET", "GET", "GET", "POST", "PUT", "DELETE"])),
    ("http.status_code", 0.7, lambda r: r.choice([200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 500, 503])),
    ("user_agent", 0.6, lambda r: r.choice([
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "curl/8.5.0", "python-requests/2.32.3", "okhttp/4.12.0", "Go-http-client/2.0"])),
    ("geo.country", 0.8, lambda r: r.choice(["PH", "PH", "IN", "IN", "US", "GB", "PL", "MX", "ZA", "EG"])),
    ("geo.city", 0.5, lambda r: r.choice(["Manila", "Cebu", "Pune", "Bengaluru", "Austin", "Leeds", "Krakow",
                                          "Monterrey", "Cape Town", "Cairo"])),
    ("device.os", 0.5, lambda r: r.choice(["windows 11", "windows 10", "macos 14", "ubuntu 22.04", "ios 18"])),
    ("trace_id", 0.1, lambda r: f"{r.getrandbits(128):032x}"),
    ("span_id", 0.05, lambda r: f"{r.getrandbits(64):016x}"),
    ("mfa", 0.4, lambda r: r.choice([True, True, True, False])),
    ("auth.method", 0.35, lambda r: r.choice(["password", "saml", "oidc", "smartcard", "api_key"])),
    ("k8s.namespace", 0.2, lambda r: r.choice(["prod", "prod", "staging", "batch"])),
    ("k8s.pod", 0.2, lambda r: f"{r.choice(APPS)}-{r.getrandbits(40):010x}"[:30]),
    ("process.pid", 0.25, lambda r: r.choice([412, 1337, 2231, 4096, 8812])),
    ("error.code", 0.15, lambda r: r.choice(["E1001", "E2040", "ECONNRESET", "ETIMEDOUT", "SQL-40001"])),
    ("ticket", 0.1, lambda r: f"INC{r.randrange(10**6):07d}"),
    ("dlp.label", 0.15, lambda r: r.choice(["public", "internal", "confidential", "restricted", "pci", "phi"])),
    ("query.rows", 0.2, lambda r: int(r.expovariate(1 / 200))),
    ("file.sha256", 0.02, lambda r: f"{r.getrandbits(256):064x}"),
    ("client.version", 0.3, lambda r: f"{r.randrange(1, 9)}.{r.randrange(30)}.{r.randrange(200)}"),
    ("campaign", 0.3, lambda r: r.choice(["retention", "collections", "onboarding", "support-tier1", "claims"])),
    ("queue", 0.25, lambda r: r.choice(["voice-en", "voice-es", "chat-en", "email", "backoffice"])),
    ("shift", 0.25, lambda r: r.choice(["day", "night", "swing"])),
    ("latency_ms", 0.3, lambda r: round(r.expovariate(1 / 120), 1)),
    ("risk_score", 0.1, lambda r: round(r.random(), 2)),
]
TOP_LEVEL_EXTRAS = [  # unknown top-level keys: folded into attrs by strata
    ("correlation_id", 0.1, lambda r: str(uuid.UUID(int=r.getrandbits(128), version=4))),
    ("region", 0.4, lambda r: r.choice(["ap-southeast-1", "ap-south-1", "us-east-1", "eu-west-2"])),
    ("retries", 0.05, lambda r: r.randrange(1, 6)),
]
WORDS = ("the a request for account case customer record batch nightly job upstream cache token policy "
         "queue agent supervisor escalation review approved rejected pending retry timeout export archive "
         "report payment refund chargeback invoice ledger audit trail").split()


def tenants_of(shape, rng):
    if shape == "long":
        return ["northwind-bpo", "globex-care", "initech-claims"], [0.5, 0.3, 0.2]
    names = [f"{rng.choice(['acme', 'umbrella', 'stark', 'wayne', 'tyrell', 'cyberdyne', 'oscorp', 'soylent'])}-"
             f"{rng.choice(['health', 'bank', 'telco', 'retail', 'insure', 'energy'])}-{i:02d}" for i in range(20)]
    return names, [1 / (i + 1) for i in range(20)]


def ip(rng):
    roll = rng.random()
    if roll < 0.1:
        return f"2001:db8:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
    if roll < 0.6:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def ts_text(moment, rng, shape):
    offset = datetime.timedelta(minutes=rng.choice([0, 0, 0, 330, 480, -300, 60]) if shape == "wide" else 0)
    local = moment.astimezone(datetime.timezone(offset))
    if shape == "wide":
        return local.isoformat(timespec="microseconds")
    return local.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message(rng, fields):
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 6)))
    values = {
        "user": fields["user"], "app": fields["app"], "ip": fields.get("src_ip", "unknown"),
        "method": rng.choice(["password", "SAML", "OIDC", "smartcard"]), "reason": rng.choice(REASONS),
        "resource": fields.get("resource", "n/a"), "policy": f"P-{rng.randrange(400)}",
        "records": rng.randrange(1, 100000), "dest": rng.choice(["sftp://partner.example/in", "s3://exports/out",
                                                                 "usb:E:", "mail:ext-recipient"]),
        "ms": rng.randrange(1, 9000), "bytes": rng.randrange(10**3, 10**10), "hex": f"{rng.getrandbits(64):016x}",
        "code": rng.choice(["E1001", "E2040", "ECONNRESET"]), "error": rng.choice(ERRORS),
        "path": rng.choice(["src/main/java/CaseService.java", "/opt/app/lib/db.py", "handlers/export.go"]),
        "line": rng.randrange(1, 3000), "ticket": f"INC{rng.randrange(10**6):07d}",
        "minutes": rng.randrange(1, 600), "cause": rng.choice(CAUSES), "key": rng.choice(
            ["max_sessions", "mfa.required", "export.limit", "tls.min_version"]),
        "old": rng.randrange(100), "new": rng.randrange(100), "version": f"{rng.randrange(1, 5)}.{rng.randrange(40)}",
        "host": fields.get("host", "unknown"), "session": fields.get("session_id", "none"),
        "privilege": rng.choice(["db_admin", "export_bulk", "root", "pii_unmask"]), "admin": "it-admin@corp",
        "until": "2026-01-01", "severity": rng.choice(SEVERITIES), "verb": rng.choice(["read", "export", "delete"]),
    }
    text = rng.choice(MESSAGES).format(**values)
    return f"{text} {words}".strip() if words else text


PERSONAL_KEYS = ("user_agent", "geo.country", "geo.city", "device.os", "client.version", "queue", "shift")


def actor(rng, tenant, shape):
    """A user with the host, address, device and place most of their events share."""
    return {
        "user": f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(40)}@{tenant}.example",
        "role": rng.choice(ROLES),
        "host": rng.choice([f"ip-10-0-{rng.randrange(64)}-{rng.randrange(256)}.ec2.internal",
                            f"DESKTOP-{rng.getrandbits(28):07X}"]),
        "src_ip": ip(rng),
        "attrs": {key: make(rng) for key, _, make in ATTR_KEYS if key in PERSONAL_KEYS},
        "session": new_session(rng, shape),
    }


def new_session(rng, shape):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)) if shape == "wide" else f"{rng.getrandbits(64):016x}"


def event(rng, shape, tenants, actors, start, span_seconds, index, total):
    family = rng.choices(list(FAMILIES), [w for w, _ in FAMILIES.values()])[0]
    names, weights = tenants
    tenant = rng.choices(names, weights)[0]
    moment = start + datetime.timedelta(seconds=span_seconds * index / total + rng.random())
    people = actors.setdefault(tenant, [actor(rng, tenant, shape) for _ in range(150)])
    who = people[min(int(rng.expovariate(1 / 30)), len(people) - 1)]
    if rng.random() < 0.05:
        who["session"] = new_session(rng, shape)
    fields = {
        "ts": ts_text(moment, rng, shape), "tenant": tenant, "family": family,
        "action": rng.choice(FAMILIES[family][1]), "outcome": rng.choice(OUTCOMES),
        "severity": rng.choice(SEVERITIES), "user": who["user"], "role": who["role"],
        "host": who["host"], "app": rng.choice(APPS),
    }
    if family != "access" or rng.random() < 0.3:
        kind = rng.choice(list(RESOURCE_KINDS))
        fields["resource"], fields["resource_type"] = RESOURCE_KINDS[kind](rng), kind
    fields["session_id"] = who["session"]
    if rng.random() < 0.9:
        fields["src_ip"] = who["src_ip"] if rng.random() < 0.9 else ip(rng)
    fields["message"] = message(rng, fields)
    if family == "data_usage":
        fields["bytes"], fields["records"] = rng.randrange(10**9), rng.randrange(10**5)
    fields["duration_ms"] = round(rng.expovariate(1 / 300), 1)
    fields["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if shape == "wide" else f"ev{index:010x}"
    keys = ATTR_KEYS if shape == "wide" else ATTR_KEYS[:4]
    attrs = {key: who["attrs"].get(key) or make(rng) for key, chance, make in keys if rng.random() < chance}
    if attrs:
        fields["attrs"] = attrs
    if shape == "wide":
        for key, chance, make in TOP_LEVEL_EXTRAS:
            if rng.random() < chance:
                fields[key] = make(rng)
    return fields


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("wide", "long"):
        sys.exit("usage: storage_gen.py wide|long EVENTS SEED OUT.ndjson")
    shape, events, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rng = random.Random(seed)
    tenants, actors = tenants_of(shape, rng), {}
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    days = 365 if shape == "wide" else 120
    with open(out, "w") as sink:
        for index in range(events):
            sink.write(json.dumps(event(rng, shape, tenants, actors, start, days * 86400, index, events),
                                  separators=(",", ":")))
            sink.write("\n")


if __name__ == "__main__":
    main()
