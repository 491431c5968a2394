#!/usr/bin/env python3
"""Minimal safetensors reader/writer for the e2e tests (standard library only).

Usage as a module:  import st; hdr, data_off = st.read_header(path); st.load(path, name)
Command line helpers (used from the bash tests):
  st.py extract SRC DST NAME[=NEWNAME] ...   copy tensors (same dtype) into a new file
  st.py ids-csv SRC NAME                     print an I64 tensor as a comma list
  st.py write-ids DST NAME DTYPE SHAPE CSV   write one integer tensor (DTYPE I64/I32, SHAPE like 2x3)
  st.py compare GOLD OUT TOL_JSON [LABEL]    compare logits + hidden.layer{i} (see compare())
  st.py drop SRC DST NAME                    rewrite SRC without tensor NAME
  st.py reshape SRC DST NAME SHAPE           rewrite the header with NAME's shape changed (same bytes)
  st.py names SRC                            list tensor names
"""
import json
import struct
import sys

DTYPE_FMT = {
    "F32": ("f", 4), "F64": ("d", 8), "I64": ("q", 8), "I32": ("i", 4),
    "I16": ("h", 2), "I8": ("b", 1), "U8": ("B", 1), "BOOL": ("?", 1),
    "BF16": (None, 2), "F16": ("e", 2), "F8_E4M3": (None, 1),
}


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    return hdr, 8 + n


def read_raw(path):
    hdr, off = read_header(path)
    with open(path, "rb") as f:
        f.seek(off)
        data = f.read()
    meta = hdr.pop("__metadata__", None)
    raw = {}
    for k, v in hdr.items():
        b, e = v["data_offsets"]
        raw[k] = (v["dtype"], list(v["shape"]), data[b:e])
    return raw, meta


def decode(dtype, buf):
    if dtype == "BF16":
        n = len(buf) // 2
        u = struct.unpack("<%dH" % n, buf)
        return list(struct.unpack("<%df" % n, struct.pack("<%dI" % n, *[x << 16 for x in u])))
    fmt, size = DTYPE_FMT[dtype]
    if fmt is None:
        raise ValueError("cannot decode dtype " + dtype)
    return list(struct.unpack("<%d%s" % (len(buf) // size, fmt), buf))


def load(path, name):
    """Return (dtype, shape, flat list of values) of one tensor."""
    hdr, off = read_header(path)
    if name not in hdr:
        raise KeyError("%s: no tensor %r" % (path, name))
    v = hdr[name]
    b, e = v["data_offsets"]
    with open(path, "rb") as f:
        f.seek(off + b)
        buf = f.read(e - b)
    return v["dtype"], list(v["shape"]), decode(v["dtype"], buf)


def write_raw(path, tensors, meta=None, header_override=None):
    """tensors: ordered list/dict of name -> (dtype, shape, bytes).
    header_override: optional callable(header_dict) that edits the header before writing."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    hdr = {}
    if meta is not None:
        hdr["__metadata__"] = meta
    pos = 0
    for name, (dtype, shape, buf) in items:
        hdr[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + len(buf)]}
        pos += len(buf)
    if header_override:
        header_override(hdr)
    hj = json.dumps(hdr, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for _, (_, _, buf) in items:
            f.write(buf)


def pack_ints(dtype, values):
    fmt, _ = DTYPE_FMT[dtype]
    return struct.pack("<%d%s" % (len(values), fmt), *values)


def max_abs_diff(a, b):
    m = 0.0
    for x, y in zip(a, b):
        d = abs(x - y)
        if d > m or d != d:  # NaN counts as failure
            m = d if d == d else float("inf")
    return m


def compare(gold, out, tol, label=""):
    """Compare logits and every hidden.layer{i} of golden file `gold` with `out`.
    Returns the number of failures; prints one line per tensor."""
    ghdr, _ = read_header(gold)
    ohdr, _ = read_header(out)
    names = ["logits"] + sorted((k for k in ghdr if k.startswith("hidden.layer")),
                                key=lambda s: int(s[len("hidden.layer"):]))
    fails = 0
    for name in names:
        t = tol["logits_max_abs"] if name == "logits" else tol["hidden_max_abs"]
        if name not in ohdr:
            print("  FAIL %s %s: missing in output (has %s)" % (label, name, sorted(k for k in ohdr if k != "__metadata__")))
            fails += 1
            continue
        gd, gs, gv = load(gold, name)
        od, os_, ov = load(out, name)
        if od != "F32" or os_ != gs:
            print("  FAIL %s %s: output is %s %s, golden %s %s" % (label, name, od, os_, gd, gs))
            fails += 1
            continue
        d = max_abs_diff(gv, ov)
        ok = d <= t
        print("  %s %s %-16s max|diff| = %.3g (tol %g)" % ("ok  " if ok else "FAIL", label, name, d, t))
        if not ok:
            fails += 1
    extra = sorted(k for k in ohdr if k.startswith("hidden.layer") and k not in ghdr)
    if extra:
        print("  FAIL %s extra hidden tensors in output: %s" % (label, extra))
        fails += 1
    return fails


def parse_shape(s):
    return [int(x) for x in s.split("x")] if s else []


def main(argv):
    cmd = argv[1]
    if cmd == "extract":
        src, dst = argv[2], argv[3]
        raw, _ = read_raw(src)
        out = []
        for spec in argv[4:]:
            name, _, new = spec.partition("=")
            out.append((new or name, raw[name]))
        write_raw(dst, out)
    elif cmd == "ids-csv":
        _, _, vals = load(argv[2], argv[3])
        print(",".join(str(int(v)) for v in vals))
    elif cmd == "write-ids":
        dst, name, dtype, shape, csv = argv[2:7]
        vals = [int(x) for x in csv.split(",")] if csv else []
        write_raw(dst, [(name, (dtype, parse_shape(shape), pack_ints(dtype, vals)))])
    elif cmd == "compare":
        gold, out, tolfile = argv[2], argv[3], argv[4]
        label = argv[5] if len(argv) > 5 else ""
        tol = json.load(open(tolfile))["tolerance"]
        return 1 if compare(gold, out, tol, label) else 0
    elif cmd == "drop":
        src, dst, name = argv[2:5]
        raw, meta = read_raw(src)
        del raw[name]
        write_raw(dst, raw, meta)
    elif cmd == "reshape":
        src, dst, name, shape = argv[2:6]
        raw, meta = read_raw(src)
        new_shape = parse_shape(shape)
        dtype, old_shape, buf = raw[name]
        n_old = 1
        for s in old_shape:
            n_old *= s
        n_new = 1
        for s in new_shape:
            n_new *= s
        if n_old != n_new:
            raise SystemExit("reshape: element counts differ")
        raw[name] = (dtype, new_shape, buf)
        write_raw(dst, raw, meta)
    elif cmd == "names":
        hdr, _ = read_header(argv[2])
        for k in hdr:
            if k != "__metadata__":
                print(k)
    else:
        raise SystemExit("st.py: unknown command " + cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
