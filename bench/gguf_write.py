"""GGUF v3 pieces shared by the random-weight writers (make_gguf_qwen2.py,
make_gguf_deepseek2.py): tensor type ids, length-prefixed strings, metadata key/values and
arrays, from the public format description."""
import struct

import numpy as np

T_F32, T_F16, T_Q4_0, T_Q8_0, T_BF16 = 0, 1, 2, 8, 30


def s(x):
    b = x.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, val):
    """One metadata entry; typ: 4 uint32, 6 float32, 7 bool, 8 string."""
    out = s(key) + struct.pack("<I", typ)
    if typ == 4:
        out += struct.pack("<I", val)
    elif typ == 6:
        out += struct.pack("<f", val)
    elif typ == 8:
        out += s(val)
    elif typ == 7:
        out += struct.pack("<?", val)
    return out


def arr(key, etyp, vals):
    """A metadata array; etyp: 5 int32, 8 string."""
    out = s(key) + struct.pack("<I", 9) + struct.pack("<IQ", etyp, len(vals))
    if etyp == 8:
        out += b"".join(s(v) for v in vals)
    elif etyp == 5:
        out += np.asarray(vals, dtype=np.int32).tobytes()
    return out
