#!/usr/bin/env python3
"""ckpt_cmp.py A.ckpt B.ckpt — exit 0 when two checkpoints hold bit-identical
tensors (same names, dtypes, shapes and bytes), else print the first
difference and exit 1. Reads the safetensors layout with the standard
library only (8-byte little-endian header size, JSON header, raw data), so
`make check` needs no extra package for it."""
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n, = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], tuple(t["shape"]), data[a:b])
    return out, header.get("__metadata__", {})


def main():
    a, _ = load(sys.argv[1])
    b, _ = load(sys.argv[2])
    if sorted(a) != sorted(b):
        print("ckpt_cmp: tensor names differ: %s vs %s" % (sorted(a), sorted(b)))
        return 1
    for name in sorted(a):
        if a[name] != b[name]:
            print("ckpt_cmp: tensor %s differs" % name)
            return 1
    print("ckpt_cmp: %d tensors bit-identical" % len(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
