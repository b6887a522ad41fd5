#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
lbus --decode/--encode against an oracle nobody here wrote: Debian's
python3-protobuf (google.protobuf.json_format).

Run by meson as: /usr/bin/python3 pbjson-oracle.py PBTEST.desc, with LBUSD
and LBUS_CLI in the environment. It starts a real lbusd on a socket in a
fresh temporary directory and drives the lbus CLI end to end:

  decode   random messages of every field type, and of the well-known
           types with a JSON form of their own (seeded, LBUS_ORACLE_SEED to
           replay), plus concatenations of two (protobuf's merge rules: last
           value wins, messages merge, a later oneof member clears the
           earlier, repeated fields append), published as binary; `lbus sub
           --decode` must print exactly what MessageToJson prints (both
           parsed as JSON) and json_format.Parse of its line must give the
           message back.
  encode   MessageToJson of each message, also with proto field names and
           enum numbers, and 64-bit integers as JSON numbers, through `lbus
           pub --encode -l`; the bytes received parse (in python) to the
           same message.
  call     `lbus call --encode/--decode` against `lbus serve` running a
           python responder that parses the request and builds the reply.
  errors   truncated, wrong wire type, bad UTF-8: one error line each on
           stderr naming the topic, and the subscription goes on.
  map      --decode-map picks the type per topic; monitor and listen decode.

Exits 77 (skipped) when python3-protobuf is missing.
"""
import base64
import json
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

try:
    from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, json_format, message_factory
except ImportError:
    print("SKIP: python3-protobuf is not installed (apt-get install python3-protobuf)")
    sys.exit(77)

FD = descriptor.FieldDescriptor
N_RANDOM = 150

DESC = os.path.abspath(sys.argv[1])
LBUSD = os.environ["LBUSD"]
LBUS = os.environ["LBUS_CLI"]
SEED = int(os.environ.get("LBUS_ORACLE_SEED", "0")) or random.randrange(1, 1 << 31)
print(f"seed {SEED} (LBUS_ORACLE_SEED={SEED} replays it)")
rng = random.Random(SEED)

with open(DESC, "rb") as f:
    fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
pool = descriptor_pool.DescriptorPool()
for fd in fds.file:
    pool.Add(fd)
factory = message_factory.MessageFactory(pool)


def msg_class(name):
    d = pool.FindMessageTypeByName(name)
    get = getattr(message_factory, "GetMessageClass", None)
    return get(d) if get else factory.GetPrototype(d)


ALL = msg_class("lbustest.All")

# ---- random messages ------------------------------------------------------

STRINGS = ["", "plain", "héllo wörld", "日本語のテキスト", "emoji 😀🎉", 'quote " backslash \\ slash /',
           "ctl \x00\x01\x1f\x7f\t\n\r", "\u2028\u2029 separators", "<>&'", "x" * 300]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def rand_int(bits, signed):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return rng.choice([0, 1, lo, hi, hi - 1, lo + 1 if signed else 2, rng.randint(lo, hi), rng.randint(-300, 300)
                       if signed else rng.randint(0, 300)])


def rand_scalar(field):
    t = field.type
    if t == FD.TYPE_DOUBLE:
        return rng.choice([0.0, -0.0, 0.1, 1.5, -2.5e-300, 1.7976931348623157e308, 5e-324, float("nan"),
                           float("inf"), float("-inf"), rng.uniform(-1e9, 1e9), 1e21, 123456789.0])
    if t == FD.TYPE_FLOAT:
        # not FLT_MAX: MessageToJson writes it as 3.4028235e+38, which
        # json_format.Parse then refuses as too large
        return f32(rng.choice([0.0, 0.1, -1.25, 3.4e38, 1e-45, float("nan"), float("inf"),
                               float("-inf"), rng.uniform(-1e6, 1e6), 16777217.0, 1e20]))
    if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return rand_int(32, True)
    if t in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return rand_int(64, True)
    if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return rand_int(32, False)
    if t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return rand_int(64, False)
    if t == FD.TYPE_BOOL:
        return rng.random() < 0.5
    if t == FD.TYPE_STRING:
        s = rng.choice(STRINGS)
        if rng.random() < 0.3:
            s += "".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0xd7ff),
                                         rng.randint(0xe000, 0x10ffff)])) for _ in range(rng.randint(1, 8)))
        return s
    if t == FD.TYPE_BYTES:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))
    if t == FD.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        if field.enum_type.file.syntax == "proto3" and rng.random() < 0.15:
            return 77  # unknown to the schema: printed as a number
        return rng.choice(numbers)
    raise AssertionError(f"type {t}")


def is_map(field):
    return field.type == FD.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def fill(msg, depth=0):
    for field in msg.DESCRIPTOR.fields:
        if rng.random() < 0.35:
            continue
        if is_map(field):
            kf, vf = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            m = getattr(msg, field.name)
            for _ in range(rng.randint(0, 4)):
                k = rand_scalar(kf)
                if isinstance(k, str):
                    k = k.replace("\0", "")  # json-c's keys are C strings: no U+0000 in --encode
                if vf.type == FD.TYPE_MESSAGE:
                    if depth < 3:
                        fill(m[k], depth + 1)
                else:
                    m[k] = rand_scalar(vf)
        elif field.label == FD.LABEL_REPEATED:
            r = getattr(msg, field.name)
            for _ in range(rng.randint(0, 4)):
                if field.type == FD.TYPE_MESSAGE:
                    if depth < 3:
                        fill(r.add(), depth + 1)
                else:
                    r.append(rand_scalar(field))
        elif field.type == FD.TYPE_MESSAGE:
            if depth < 3:
                sub = getattr(msg, field.name)
                sub.SetInParent()
                fill(sub, depth + 1)
        else:
            setattr(msg, field.name, rand_scalar(field))
    return msg


STAMPED = msg_class("lbustest.Stamped")


def rand_seconds_nanos(lo, hi, signed):
    seconds = rng.choice([0, lo, hi, rng.randint(lo, hi)])
    nanos = rng.choice([0, 1000000 * rng.randint(0, 999), 1000 * rng.randint(0, 999999), rng.randint(0, 999999999)])
    if signed and (seconds < 0 or (seconds == 0 and rng.random() < 0.5)):
        nanos = -nanos
    return seconds, nanos


def fill_stamped():
    """A Stamped with valid values (MessageToJson refuses the others)."""
    m = STAMPED()
    for ts in [m.at] + [m.history.add() for _ in range(rng.randint(0, 3))]:
        ts.seconds, ts.nanos = rand_seconds_nanos(-62135596800, 253402300799, False)
    if rng.random() < 0.7:
        m.took.seconds, m.took.nanos = rand_seconds_nanos(-315576000000, 315576000000, True)
    for _ in range(rng.randint(0, 3)):
        d = m.durations[rng.choice(STRINGS).replace("\0", "")]
        d.seconds, d.nanos = rand_seconds_nanos(-315576000000, 315576000000, True)
    for name in ("i64", "u32", "text", "blob", "flag", "dbl", "flt", "i32", "u64"):
        if rng.random() < 0.7:
            wrapper = getattr(m, name)
            wrapper.SetInParent()
            if rng.random() < 0.8:
                wrapper.value = rand_scalar(wrapper.DESCRIPTOR.fields_by_name["value"])
    if rng.random() < 0.7:
        m.mask.paths.extend(rng.sample(["a", "foo_bar", "foo_bar.baz_qux", "x1.y"], rng.randint(0, 3)))
    if rng.random() < 0.5:
        m.what = rng.choice(STRINGS)
    return m


def to_json(msg, **kw):
    return json.loads(json_format.MessageToJson(msg, indent=None, **kw))


def numbers_for_int64(value, msg_desc):
    """The JSON of a message with every 64-bit integer as a JSON number."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        field = {f.json_name: f for f in msg_desc.fields}.get(key) or msg_desc.fields_by_name.get(key)
        if is_map(field):
            vf = field.message_type.fields_by_name["value"]
            out[key] = {k: convert(vf, x) for k, x in v.items()}
        elif isinstance(v, list):
            out[key] = [convert(field, x) for x in v]
        else:
            out[key] = convert(field, v)
    return out


def convert(field, v):
    if field.type == FD.TYPE_MESSAGE:
        return numbers_for_int64(v, field.message_type)
    if field.type in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64, FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return int(v)
    return v


# ---- the bus ----------------------------------------------------------------

TMP = tempfile.mkdtemp(prefix="lbus-oracle-")
os.chmod(TMP, 0o700)
SOCK = os.path.join(TMP, "bus.sock")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def lbus(*args, stdin=None, timeout=30):
    return subprocess.run([LBUS, "-S", SOCK, *args], input=stdin, capture_output=True, timeout=timeout)


def spawn(*args):
    return subprocess.Popen([LBUS, "-S", SOCK, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def wait_for(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def subscribed(pattern):
    r = lbus("list", "--json")
    if r.returncode != 0:
        return False
    return any(s["pattern"] == pattern for c in json.loads(r.stdout)["clients"] for s in c["subscriptions"])


def start_sub(pattern, *args):
    p = spawn("sub", pattern, *args)
    wait_for(lambda: subscribed(pattern), f"sub {pattern}")
    return p


def finish(p, what, timeout=30):
    out, err = p.communicate(timeout=timeout)
    check(p.returncode == 0, f"{what}: status {p.returncode}, stderr {err.decode(errors='replace')}")
    return out.decode(), err.decode()


def publish(topic, payload):
    path = os.path.join(TMP, "payload.bin")
    with open(path, "wb") as f:
        f.write(payload)
    r = lbus("pub", topic, "-f", path)
    assert r.returncode == 0, r.stderr


# ---- the tests ------------------------------------------------------------------


def differences(a, b, path="$"):
    """Where JSON values a (lbus) and b (the oracle) differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: {'missing in lbus' if k not in a else 'only in lbus'}")
            else:
                out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: lbus {json.dumps(a)[:200]} oracle {json.dumps(b)[:200]}"]


def test_decode(cls, msgs, topic, merges):
    desc_type = f"{DESC}:{cls.DESCRIPTOR.full_name}"
    payloads = [m.SerializeToString() for m in msgs]
    for _ in range(merges):  # concatenations: protobuf's merge rules
        payloads.append(rng.choice(payloads) + rng.choice(payloads))
    sub = start_sub(topic, "--decode", desc_type, "-n", str(len(payloads)))
    for p in payloads:
        publish(topic, p)
    out, _ = finish(sub, "sub --decode")
    lines = out.split("\n")[:-1]  # not splitlines(): U+2028 is inside lines
    check(len(lines) == len(payloads), f"decode: {len(lines)} lines for {len(payloads)} payloads")
    for i, (p, line) in enumerate(zip(payloads, lines)):
        expected = to_json(cls.FromString(p))
        got = json.loads(line)
        if not check(got == expected, f"decode #{i}: payload {p.hex()}"):
            print("  differences:", "; ".join(differences(got, expected)))
            continue
        try:  # the reverse: python reads lbus's JSON
            back = to_json(json_format.Parse(line, cls()))
        except json_format.ParseError as e:
            back = f"ParseError {e}"
        if not check(back == expected, f"decode #{i}: json_format.Parse of lbus's line"):
            print("  differences:", "; ".join(differences(back, expected)) if isinstance(back, dict) else back)
    print(f"decode {cls.DESCRIPTOR.full_name}: {len(payloads)} payloads compared")


def test_encode(cls, msgs, topic):
    variants = []
    for m in msgs:
        variants.append((m, to_json(m)))
        variants.append((m, to_json(m, preserving_proto_field_name=True, use_integers_for_enums=True)))
        variants.append((m, numbers_for_int64(to_json(m), cls.DESCRIPTOR)))
    text = "".join(json.dumps(v, ensure_ascii=rng.random() < 0.5) + "\n" for _, v in variants)
    sub = start_sub(topic, "--json", "-n", str(len(variants)))
    r = lbus("pub", topic, "--encode", f"{DESC}:{cls.DESCRIPTOR.full_name}", "-l", stdin=text.encode())
    check(r.returncode == 0, f"pub --encode -l: status {r.returncode}: {r.stderr.decode()}")
    out, _ = finish(sub, "sub --json")
    lines = out.split("\n")[:-1]
    check(len(lines) == len(variants), f"encode: {len(lines)} messages for {len(variants)} lines")
    for i, ((m, v), line) in enumerate(zip(variants, lines)):
        obj = json.loads(line)
        data = base64.b64decode(obj["payload_base64"]) if "payload_base64" in obj else obj["payload"].encode()
        got = to_json(cls.FromString(data))
        if not check(got == to_json(m), f"encode #{i}: {json.dumps(v)[:300]}"):
            print("  differences:", "; ".join(differences(got, to_json(m))))


def test_call():
    responder = (
        "import sys\n"
        "from google.protobuf import descriptor_pb2, descriptor_pool, message_factory\n"
        "fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], 'rb').read())\n"
        "pool = descriptor_pool.DescriptorPool()\n"
        "[pool.Add(f) for f in fds.file]\n"
        "f = message_factory.MessageFactory(pool)\n"
        "cls = lambda n: f.GetPrototype(pool.FindMessageTypeByName(n))\n"
        "req = cls('lbustest.Request').FromString(sys.stdin.buffer.read())\n"
        "rep = cls('lbustest.Reply')(greeting='hello ' + req.name, echoes=[req.name] * req.count)\n"
        "sys.stdout.buffer.write(rep.SerializeToString())\n")
    serve = spawn("serve", "greeter", "--", sys.executable, "-c", responder, DESC)
    try:
        r = lbus("wait", "greeter", "-t", "10")
        check(r.returncode == 0, "serve greeter is up")
        r = lbus("call", "greeter", "--encode", f"{DESC}:lbustest.Request", "--decode", f"{DESC}:lbustest.Reply",
                 '{"name": "wörld", "count": "3"}')
        check(r.returncode == 0, f"call --encode --decode: status {r.returncode}: {r.stderr.decode()}")
        check(json.loads(r.stdout) == {"greeting": "hello wörld", "echoes": ["wörld"] * 3},
              f"call reply: {r.stdout.decode()}")
        r = lbus("call", "greeter", "--encode", f"{DESC}:lbustest.Request", '{"nmae": "x"}')
        check(r.returncode == 1 and b'no field "nmae"' in r.stderr, f"call with a bad field: {r.stderr}")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=10)
    print("call: ok")


def test_errors():
    good = ALL(names=["still here"]).SerializeToString()
    bad = {
        "truncated": ALL(names=["truncated"]).SerializeToString()[:-3],
        "wrong wire type": bytes([0x10, 0x05, 0x0a, 0x02, 0x08, 0x01]) + bytes([0x62, 0x01, 0x05]),
        "bad utf-8": bytes([0x4a, 0x02, 0xc3, 0x28]),
    }
    sub = start_sub("oracle/bad/#", "--decode", f"{DESC}:lbustest.All", "-n", str(len(bad) + 1), "-v")
    for name, payload in bad.items():
        publish("oracle/bad/" + name.replace(" ", "-"), payload)
    publish("oracle/bad/good", good)
    out, err = finish(sub, "sub --decode with bad payloads")
    check(out == 'oracle/bad/good {"names":["still here"]}\n', f"after errors: {out!r}")
    errs = err.splitlines()
    check(len(errs) == 3, f"three error lines: {err!r}")
    for line, name in zip(errs, bad):
        check(line.startswith(f"lbus: oracle/bad/{name.replace(' ', '-')}: cannot decode lbustest.All: "),
              f"error line names the topic: {line!r}")
    print("errors:\n  " + "\n  ".join(errs))


def test_map_monitor_listen():
    mapfile = os.path.join(TMP, "types.map")
    with open(mapfile, "w") as f:
        f.write("# lbus --decode-map\n\nsensors/+/req = lbustest.Request\n  sensors/# = lbustest.Reply  \n")
    req = msg_class("lbustest.Request")(name="n", count=2).SerializeToString()
    rep = msg_class("lbustest.Reply")(greeting="g").SerializeToString()
    sub = start_sub("#", "--decode", DESC, "--decode-map", mapfile, "-n", "3", "-v")
    mon = spawn("monitor", "--decode", DESC, "--decode-map", mapfile, "-n", "3", "--json")
    wait_for(lambda: any(c["monitor"] for c in json.loads(lbus("list", "--json").stdout)["clients"]), "monitor")
    publish("sensors/a/req", req)
    publish("sensors/b", rep)
    publish("other", b"plain text")
    out, _ = finish(sub, "sub --decode-map")
    check(out == 'sensors/a/req {"name":"n","count":2}\nsensors/b {"greeting":"g"}\nother plain text\n',
          f"--decode-map: {out!r}")
    out, _ = finish(mon, "monitor --decode-map --json")
    events = [json.loads(line) for line in out.splitlines()]
    check([e.get("message") for e in events] == [{"name": "n", "count": 2}, {"greeting": "g"}, None]
          and events[2].get("payload") == "plain text", f"monitor --json: {out!r}")
    lis = spawn("listen", "svc", "--decode", f"{DESC}:lbustest.Request", "-n", "1", "--json")
    check(lbus("wait", "svc", "-t", "10").returncode == 0, "listen svc is up")
    path = os.path.join(TMP, "req.bin")
    with open(path, "wb") as f:
        f.write(req)
    check(lbus("send", "svc", "-f", path).returncode == 0, "send to svc")
    out, _ = finish(lis, "listen --decode --json")
    check(json.loads(out)["message"] == {"name": "n", "count": 2}, f"listen --decode --json: {out!r}")
    print("map, monitor, listen: ok")


def main():
    broker = subprocess.Popen([LBUSD, "-S", SOCK], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: lbus("list").returncode == 0, "lbusd")
        msgs = [fill(ALL()) for _ in range(N_RANDOM)]
        msgs.append(ALL())  # the empty message: {}
        t0 = time.monotonic()
        test_decode(ALL, msgs, "oracle/dec", 30)
        test_encode(ALL, msgs, "oracle/enc")
        stamped = [fill_stamped() for _ in range(N_RANDOM)] + [STAMPED()]
        # no merges: two Durations may merge into one MessageToJson refuses
        test_decode(STAMPED, stamped, "oracle/dec-wkt", 0)
        test_encode(STAMPED, stamped, "oracle/enc-wkt")
        test_call()
        test_errors()
        test_map_monitor_listen()
        print(f"{time.monotonic() - t0:.2f} s")
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=10)
        shutil.rmtree(TMP, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failures (seed {SEED})")
        sys.exit(1)
    print("all passed")


main()
