#!/usr/bin/env python3
"""Write the seed inputs of fuzz_request into tests/fuzz/corpus/request/.

usage: python3 tests/fuzz/gen_request_corpus.py [OUT_DIR]

Each seed is one fuzz_request input: a flags byte (see fuzz_request.c), then
either frame bodies separated by c1 c1, or c1 c2 for a sync point (the harness
adds the headers, and waits for the answers at a sync point; job ids after one
are relative: 1 is the input's first job), or, with FZ_RAW, the byte stream as
is. It also writes the regress-* inputs of the findings made by hand (REGRESS
below). Stale seed-* files are removed; other files (the fuzzer's findings,
kept as they came) are left alone. Standard library only: a small msgpack
encoder is below.
"""
import os
import struct
import sys

RAW, AUTH, LISTENER, TRICKLE, HANGUP, LINGER, SMALLDB = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40
SEP = b"\xc1\xc1"
SYNC_SEP = b"\xc1\xc2"
TOKEN = "fuzz-token"


def pack(v):
    """msgpack, smallest encodings; bytes are bin, str is str, dict keeps its order."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 0x80:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            for fmt, tag in (("B", 0xCC), ("H", 0xCD), ("I", 0xCE), ("Q", 0xCF)):
                if v < 1 << (8 * struct.calcsize(fmt)):
                    return bytes([tag]) + struct.pack(">" + fmt, v)
            raise ValueError(v)
        for fmt, tag in (("b", 0xD0), ("h", 0xD1), ("i", 0xD2), ("q", 0xD3)):
            if v >= -(1 << (8 * struct.calcsize(fmt) - 1)):
                return bytes([tag]) + struct.pack(">" + fmt, v)
        raise ValueError(v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, (bytes, bytearray)):
        if len(v) < 256:
            return b"\xc4" + bytes([len(v)]) + bytes(v)
        return b"\xc5" + struct.pack(">H", len(v)) + bytes(v)
    if isinstance(v, (list, tuple)):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        head = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


def req(op, rid, **fields):
    m = {"op": op, "rid": rid}
    m.update(fields)
    return pack(m)


SYNC = object()  # in framed(): the client waits for the answers so far


def framed(flags, *bodies):
    """Bodies separated by c1 c1, or by c1 c2 where SYNC stands between two."""
    out, sep, n = b"", SEP, 0
    for b in bodies:
        if b is SYNC:
            sep = SYNC_SEP
            continue
        assert SEP not in b and SYNC_SEP not in b, "a body may not contain a separator"
        if n > 0:
            out += sep
        out += b
        sep, n = SEP, n + 1
    return bytes([flags]) + out


def raw(flags, *chunks):
    return bytes([flags | RAW]) + b"".join(chunks)


def frame(body):
    return struct.pack(">I", len(body)) + body


HELLO = req("hello", 1, version=1, client="fuzz")

SEEDS = {
    # One request per op.
    "seed-hello": framed(0, HELLO),
    "seed-hello-bad-version": framed(0, req("hello", 1, version=2)),
    "seed-ping": framed(0, req("ping", 7)),
    "seed-submit-minimal": framed(0, req("submit", 1, task="echo", payload=b"hi")),
    "seed-submit-full": framed(0, req("submit", 2, task="upper", payload=b"hello", queue="q1",
                                      priority=-5, delay_ms=0, timeout_ms=1000, max_retries=2,
                                      unique_key="k1")),
    "seed-submit-unknown-task": framed(0, req("submit", 3, task="nope", payload=b"")),
    "seed-submit-too-big": framed(0, req("submit", 4, task="echo", payload=b"x" * 1100)),
    "seed-wait": framed(0, req("submit", 1, task="echo", payload=b"w"), SYNC,
                        req("wait", 2, id=1)),
    "seed-wait-pipelined": framed(0, req("submit", 1, task="echo", payload=b"w"),
                                  req("wait", 2, id=1)),
    "seed-wait-timeout0": framed(0, req("submit", 1, task="sleep", payload=b"30"), SYNC,
                                 req("wait", 2, id=1, timeout_ms=0)),
    "seed-wait-timeout": framed(0, req("submit", 1, task="sleep", payload=b"50"), SYNC,
                                req("wait", 2, id=1, timeout_ms=5)),
    "seed-wait-unknown": framed(0, req("wait", 9, id=123456789, timeout_ms=0)),
    "seed-status": framed(0, req("submit", 1, task="echo", payload=b"s"), SYNC,
                          req("status", 2, id=1), req("wait", 3, id=1), SYNC,
                          req("status", 4, id=1)),
    "seed-cancel-scheduled": framed(0, req("submit", 1, task="echo", payload=b"c",
                                           delay_ms=60000), SYNC,
                                    req("cancel", 2, id=1), req("cancel", 3, id=1), SYNC,
                                    req("wait", 4, id=1, timeout_ms=0)),
    "seed-cancel-running": framed(0, req("submit", 1, task="sleep", payload=b"1000"), SYNC,
                                  req("wait", 2, id=1, timeout_ms=5), SYNC,
                                  req("cancel", 3, id=1, running=True),
                                  req("wait", 4, id=1)),
    "seed-cancel-not-running-flag": framed(0, req("submit", 1, task="sleep", payload=b"50"),
                                           SYNC, req("wait", 2, id=1, timeout_ms=5), SYNC,
                                           req("cancel", 3, id=1)),
    "seed-cancel-finished": framed(0, req("submit", 1, task="echo", payload=b"f"), SYNC,
                                   req("wait", 2, id=1), SYNC, req("cancel", 3, id=1)),
    "seed-stats": framed(0, req("stats", 5)),
    "seed-watch": framed(0, req("submit", 1, task="echo", payload=b"a"),
                         req("submit", 2, task="fail", payload=b"oops"), SYNC,
                         req("watch", 3, ids=[1, 2, 99999], timeout_ms=100)),
    "seed-watch-unwatch": framed(0, req("submit", 1, task="sleep", payload=b"100"), SYNC,
                                 req("watch", 2, ids=[1]), req("unwatch", 3, watch=2),
                                 req("unwatch", 4, watch=77)),
    "seed-watch-timeout": framed(0, req("submit", 1, task="sleep", payload=b"100"), SYNC,
                                 req("watch", 2, ids=[1, 1], timeout_ms=5)),
    "seed-watch-timeout0": framed(0, req("watch", 1, ids=[1, 2, 3], timeout_ms=0)),
    "seed-watch-many": framed(0, req("submit", 1, task="echo", payload=b"m" * 8), SYNC,
                              req("watch", 2, ids=[1] * 300 + [2, 3], timeout_ms=50)),
    "seed-queue-info": framed(0, req("queue", 1, queue="default", action="info")),
    "seed-queue-pause-resume": framed(0, req("queue", 1, queue="qp", action="pause"),
                                      req("submit", 2, task="echo", payload=b"p", queue="qp"),
                                      SYNC, req("join", 3, queue="qp", timeout_ms=0),
                                      req("queue", 4, queue="qp", action="resume"),
                                      req("join", 5, queue="qp", timeout_ms=200)),
    "seed-queue-set": framed(0, req("queue", 1, queue="qs", action="set", limit=2, order="lifo"),
                             req("queue", 2, queue="qs", action="set"),
                             req("queue", 3, queue="qs", action="bogus"),
                             req("queue", 4, queue="qs", action="set", order="fifo", limit=0)),
    "seed-join": framed(0, req("submit", 1, task="echo", payload=b"j", queue="qj"),
                        req("join", 2, queue="qj", timeout_ms=200),
                        req("join", 3, queue="nosuch")),
    # Job control.
    "seed-retries": framed(0, req("submit", 1, task="fail", payload=b"again", max_retries=2),
                           SYNC, req("wait", 2, id=1, timeout_ms=200)),
    "seed-job-timeout": framed(0, req("submit", 1, task="sleep", payload=b"1000", timeout_ms=5),
                               SYNC, req("wait", 2, id=1, timeout_ms=300)),
    "seed-unique-key": framed(0, req("submit", 1, task="sleep", payload=b"20", unique_key="u"),
                              SYNC, req("submit", 2, task="echo", payload=b"dup", unique_key="u"),
                              SYNC, req("wait", 3, id=1, timeout_ms=200), SYNC,
                              req("submit", 4, task="echo", payload=b"new", unique_key="u")),
    # A full, paused queue (max_queued 16): one SUBMIT gives up after 20 ms, one
    # waits and gets in when the queue resumes, one leaves with the connection.
    "seed-submit-block": framed(0, req("queue", 1, queue="qb", action="pause"),
                                *[req("submit", 2 + i, task="echo", payload=b"f", queue="qb")
                                  for i in range(16)], SYNC,
                                req("submit", 30, task="echo", payload=b"t", queue="qb",
                                    block_ms=20),
                                req("submit", 31, task="echo", payload=b"w", queue="qb",
                                    block_ms=60000),
                                req("stats", 32),
                                req("queue", 33, queue="qb", action="resume"), SYNC,
                                req("queue", 34, queue="qb", action="pause"),
                                *[req("submit", 40 + i, task="echo", payload=b"g", queue="qb",
                                      block_ms=60000) for i in range(6)],
                                req("queue", 50, queue="qb", action="info")),
    # Submit-and-wait: answered with the result, after its 20 ms on a paused
    # queue (id alone), and dropped with the connection while it waits.
    "seed-submit-wait": framed(0, req("submit", 1, task="upper", payload=b"abc", wait_ms=60000),
                               req("submit", 2, task="fail", payload=b"", wait_ms=60000),
                               req("queue", 3, queue="qw", action="pause"), SYNC,
                               req("submit", 4, task="echo", payload=b"t", queue="qw",
                                   wait_ms=20),
                               req("submit", 5, task="echo", payload=b"w", queue="qw",
                                   wait_ms=60000)),
    "seed-result-too-big": framed(0, req("submit", 1, task="echo", payload=b"r" * 600), SYNC,
                                  req("wait", 2, id=1, timeout_ms=200)),
    "seed-fib": framed(0, req("submit", 1, task="fib", payload=b"20"), SYNC,
                       req("wait", 2, id=1, timeout_ms=200)),
    "seed-alloc": framed(0, req("submit", 1, task="alloc", payload=b"1"), SYNC,
                         req("wait", 2, id=1, timeout_ms=200)),
    "seed-bad-payloads": framed(0, req("submit", 1, task="sleep", payload=b"-1"),
                                req("submit", 2, task="fib", payload=b"99"),
                                req("submit", 3, task="fib", payload=b""),
                                req("submit", 4, task="fail", payload=b""),
                                req("submit", 5, task="upper", payload="h\u00e9llo"), SYNC,
                                req("watch", 6, ids=[1, 2, 3, 4, 5], timeout_ms=100)),
    "seed-priority-queues": framed(0, req("queue", 1, queue="one", action="info"),
                                   req("submit", 2, task="echo", payload=b"1", queue="one",
                                       priority=3),
                                   req("submit", 3, task="echo", payload=b"2", queue="lifo",
                                       priority=-3),
                                   req("submit", 4, task="echo", payload=b"3", queue="paused"),
                                   req("stats", 5)),
    "seed-pipeline-inflight": framed(0, req("submit", 1, task="echo", payload=b"d",
                                            delay_ms=60000), SYNC,
                                     *[req("wait", 10 + i, id=1, timeout_ms=30) for i in range(10)],
                                     req("ping", 99)),
    # result_cache is 4: once 7 jobs have finished, the first ones are read back from the store.
    "seed-expired-lookup": framed(0, req("submit", 1, task="echo", payload=b"old"),
                                  *[req("submit", 2 + i, task="echo", payload=b"n")
                                    for i in range(6)], SYNC,
                                  req("watch", 10, ids=[1, 2, 3, 4, 5, 6, 7], timeout_ms=100),
                                  SYNC, req("watch", 11, ids=[1, 2, 3, 99], timeout_ms=100),
                                  req("status", 12, id=1), req("wait", 13, id=1),
                                  req("cancel", 14, id=1), req("cancel", 15, id=2, running=True)),
    "seed-hangup-pending": framed(HANGUP, req("submit", 1, task="echo", payload=b"a"),
                                  req("submit", 2, task="sleep", payload=b"5"),
                                  req("join", 3, queue="default"), req("wait", 4, id=1)),
    "seed-join-paused": framed(0, req("submit", 1, task="echo", payload=b"p", queue="paused"),
                               req("join", 2, queue="paused", timeout_ms=5),
                               req("join", 3, queue="paused", timeout_ms=0), SYNC,
                               req("cancel", 4, id=1), req("join", 5, queue="paused")),
    "seed-queue-limit": framed(0, req("submit", 1, task="sleep", payload=b"10", queue="one"),
                               req("submit", 2, task="echo", payload=b"2", queue="one"),
                               req("submit", 3, task="echo", payload=b"3", queue="lifo",
                                   priority=1),
                               req("submit", 4, task="echo", payload=b"4", queue="lifo",
                                   priority=1), SYNC,
                               req("queue", 5, queue="one", action="info"),
                               req("watch", 6, ids=[1, 2, 3, 4], timeout_ms=200)),
    # The server with the nearly full store: the rows of 14 jobs fill it; their
    # outcomes cannot be stored (storage), nor can a new job.
    "seed-smalldb-full": framed(SMALLDB, *[req("submit", 1 + i, task="echo", payload=b"x" * 400,
                                               queue="q%d" % (i % 2)) for i in range(14)], SYNC,
                                req("watch", 20, ids=list(range(1, 15)), timeout_ms=100), SYNC,
                                req("status", 21, id=1), req("wait", 22, id=2, timeout_ms=0),
                                req("cancel", 23, id=3), req("wait", 24, id=4, timeout_ms=5),
                                req("submit", 25, task="echo", payload=b"y")),
    "seed-smalldb-ping": framed(SMALLDB, req("ping", 1), req("stats", 2)),
    # Connection modes.
    "seed-auth-hello": framed(AUTH, req("hello", 1, version=1, token=TOKEN),
                              req("submit", 2, task="echo", payload=b"x"), req("stats", 3)),
    "seed-auth-wrong-token": framed(AUTH, req("hello", 1, version=1, token="nope"),
                                    req("ping", 2)),
    "seed-auth-no-hello": framed(AUTH, req("ping", 1), req("stats", 2)),
    "seed-auth-handshake-timeout": framed(AUTH | LINGER, req("ping", 1)),
    "seed-listener": framed(LISTENER, HELLO, req("ping", 2)),
    "seed-trickle": framed(TRICKLE, req("submit", 1, task="echo", payload=b"t" * 40), SYNC,
                           req("wait", 2, id=1, timeout_ms=100)),
    "seed-hangup": framed(HANGUP, req("submit", 1, task="echo", payload=b"h"), SYNC,
                          req("wait", 2, id=1)),
    "seed-raw-stream": raw(TRICKLE, frame(req("ping", 1)), frame(req("stats", 2))),
    "seed-raw-partial-linger": raw(LINGER, frame(req("ping", 1)), b"\x00\x00\x00\x10\x82"),
    # Malformed.
    "seed-bad-zero-length": raw(0, b"\x00\x00\x00\x00"),
    "seed-bad-too-big": raw(0, b"\x00\x10\x00\x00" + b"\x80" * 8),
    "seed-bad-too-big-before-auth": raw(AUTH, b"\x00\x00\x13\x88" + b"\x80" * 8),
    "seed-bad-not-a-map": framed(0, pack([1, 2, 3]), req("ping", 1)),
    "seed-bad-truncated": framed(0, req("ping", 1)[:-1]),
    "seed-bad-unknown-op": framed(0, req("frobnicate", 3), req("ping", 4)),
    "seed-bad-types": framed(0, pack({"op": "wait", "rid": 5, "id": "x"}),
                             pack({"op": "submit", "rid": 6, "task": "bad name!", "payload": b""}),
                             pack({"op": "ping"}), pack({"op": "ping", "rid": 7, "rid ": 1}),
                             req("ping", 8)),
    "seed-bad-dup-rid": framed(0, b"\x83\xa2op\xa4ping\xa3rid\x01\xa3rid\x02", req("ping", 9)),
    "seed-bad-array32": framed(0, b"\x82\xa2op\xa4ping\xa3rid\xdd\xff\xff\xff\xff"),
    "seed-bad-deep": framed(0, b"\x82\xa2op\xa4ping\xa1x" + b"\x91" * 12 + b"\x00"),
}


# Findings made by hand (the fuzzer's own are kept as they came, regress-*).
REGRESS = {
    # Over max_frame (2048), under CONN_HELLO_FRAME_MAX (4096): conn.c reads it before auth.
    "regress-preauth-frame-over-max-frame": raw(AUTH, frame(pack({"op": "hello", "rid": 1,
                                                                  "version": 1, "token": TOKEN,
                                                                  "pad": "p" * 2800}))),
    # max_inflight (8) WAITs that never end, then the client leaves: the paused
    # connection does not notice.
    "regress-paused-conn-ignores-hangup": framed(0, req("submit", 1, task="echo", payload=b"d",
                                                        delay_ms=60000), SYNC,
                                                 *[req("wait", 10 + i, id=1) for i in range(8)]),
    # A harness bug the fuzzer found: a WATCH event with a job also decodes as a
    # WAIT answer (without `more`), so events were counted as last answers.
    "regress-harness-watch-wait-same-rid": framed(0, req("submit", 1, task="echo", payload=b"e"),
                                                  SYNC, req("wait", 2, id=1), SYNC,
                                                  req("watch", 10, ids=[1, 1]),
                                                  req("wait", 10, id=1)),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "request")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.startswith("seed-") and name not in SEEDS:
            os.remove(os.path.join(out, name))
    for name, data in sorted(list(SEEDS.items()) + list(REGRESS.items())):
        if len(data) > 8192:
            raise SystemExit(f"{name}: {len(data)} bytes, over -max_len=8192")
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds and {len(REGRESS)} hand-made regression inputs in {out}")


if __name__ == "__main__":
    main()
