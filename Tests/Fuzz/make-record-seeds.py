#!/usr/bin/env python3
"""Writes the seed corpus of raw FastCGI connections for Sources/RecordFuzz into Tests/Fuzz/records:
what nginx sends, and each hostile record from issue 10. Rerun after changing it; the files are committed."""
import os
import struct

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "records")


def header(kind, content_length, request_id=1, padding=0, version=1):
    return struct.pack(">BBHHBB", version, kind, request_id, content_length, padding, 0)


def record(kind, content=b"", request_id=1, padding=0, version=1):
    return header(kind, len(content), request_id, padding, version) + content + b"\0" * padding


def begin(role=1, request_id=1, flags=0):
    return record(1, struct.pack(">HB5x", role, flags), request_id)


def length(n, long=False):
    return bytes([n]) if n < 128 and not long else struct.pack(">I", n | 0x80000000)


def pair(name, value):
    return length(len(name)) + length(len(value)) + name + value


def params(content, request_id=1):
    return record(4, content, request_id, padding=(8 - len(content) % 8) % 8)


def get_values(*names, padding=0):
    return record(9, b"".join(pair(name, b"") for name in names), request_id=0, padding=padding)


END = header(4, 0)
STDIN_END = header(5, 0)
NGINX = (pair(b"REQUEST_METHOD", b"POST") + pair(b"DOCUMENT_URI", b"/api/auth/logout")
         + pair(b"SCRIPT_NAME", b"/api/auth/logout") + pair(b"QUERY_STRING", b"")
         + pair(b"HTTP_COOKIE", b"a=b; crocante_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))

seeds = {
    "nginx-logout": begin(flags=1) + params(NGINX) + END + STDIN_END,
    "nginx-split-records": begin() + params(NGINX[:7]) + params(NGINX[7:40]) + params(NGINX[40:]) + END,
    "empty-params": begin() + END,
    "four-byte-lengths": begin() + params(length(4, True) + length(3, True) + b"NAMEval") + END,
    # Issue 10: libfcgi's allocation assertion (fcgiapp.c:75), SIGABRT.
    "attack-name-0x7ffffff0": begin() + header(4, 4096) + length(0x7FFFFFF0, True) + length(14) + b"A" * 64,
    # Issue 10: 2 GiB allocated per connection.
    "attack-name-0x40000000-value-0x3ffffffd": begin() + header(4, 4096) + length(0x40000000, True)
        + length(0x3FFFFFFD, True) + b"A" * 64,
    "attack-value-0x7fffffff": begin() + header(4, 4096) + length(4) + length(0x7FFFFFFF, True) + b"NAME",
    "attack-authorizer-role": begin(role=2) + params(NGINX) + END,
    "attack-filter-role": begin(role=3) + params(NGINX) + END,
    "attack-get-values": record(9, pair(b"FCGI_MAX_CONNS", b"") + pair(b"FCGI_MPXS_CONNS", b""), request_id=0),
    "attack-get-values-huge": record(9, length(0x7FFFFFF0, True) + length(1), request_id=0),
    "attack-second-begin": begin() + begin(request_id=2) + params(NGINX) + END,
    "attack-other-request-id": begin() + params(NGINX, request_id=2) + END,
    "attack-stdin-before-params-end": begin() + params(NGINX) + record(5, b"x") + END,
    "attack-version-2": begin()[:0] + record(1, struct.pack(">HB5x", 1, 0), version=2) + END,
    "attack-truncated-pair": begin() + params(b"\x05\x05AB") + END,
    "attack-padding-flood": begin() + b"".join(record(4, b"\0", padding=255) for _ in range(40)),
    "attack-abort": begin() + record(2) + END,
    # HAProxy 2.6 `option get-values`: FCGI_GET_VALUES first, answered and consumed by the gate.
    "haproxy-get-values-then-logout": get_values(b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS") + begin() + params(NGINX) + END + STDIN_END,
    "get-values-padded-all-three-then-logout": get_values(b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS", padding=7)
        + begin() + params(NGINX) + END,
    "unknown-management-type-then-logout": record(12, b"", request_id=0) + record(12, b"abc", request_id=0, padding=5)
        + begin() + params(NGINX) + END,
    # libfcgi answers each variable asked into a 64-byte stack buffer: five overflow it.
    "attack-get-values-repeated": get_values(*[b"FCGI_MAX_REQS"] * 5) + begin() + params(NGINX) + END,
    "attack-management-flood": get_values(b"FCGI_MPXS_CONNS") * 9 + begin() + params(NGINX) + END,
    "attack-get-values-after-begin": begin() + get_values(b"FCGI_MPXS_CONNS") + params(NGINX) + END,
}

os.makedirs(here, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {here}")
