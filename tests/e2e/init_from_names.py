#!/usr/bin/env python3
"""init_from_names.py TRAINER.c FILE.safetensors PREFIX — would --init_from
FILE --init_prefix PREFIX fill every model tensor under PREFIX?

Reads the parameter table that lgen wrote into the generated C file
({"name", ndim, {shape}, numel, OFFSET, LG_PARAM_*, group, LG_INIT_*, fan_in,
is_int64}) and the file's header (with the safetensors package), and checks
that each file tensor lands on a model tensor of the same shape and dtype
(I64 for the int64 buffers, F32 otherwise) and that no model tensor under
PREFIX is left out. Prints the counts; exit status 1 with the differences.
Used by tests/e2e/init_from.sh on specs/faster_rcnn.lmod, whose trainer
takes minutes to build, so the table is checked without building it.
"""
import re
import sys

from safetensors import safe_open

ROW = re.compile(r'^\s*\{"([^"]+)", (\d+), \{([^}]*)\}, \d+, \w+, LG_PARAM_(?:TRAIN|BUFFER), '
                 r'\d+, \w+, \d+, ([01])\},\s*$')


def main():
    c_file, st_file, prefix = sys.argv[1:4]
    model = {}
    with open(c_file) as f:
        for line in f:
            m = ROW.match(line)
            if m:
                ndim = int(m.group(2))
                dims = [int(x) for x in m.group(3).split(",") if x.strip()][:ndim]
                model[m.group(1)] = (dims, "I64" if m.group(4) == "1" else "F32")
    if not model:
        sys.exit("init_from_names.py: no parameter table in %s" % c_file)
    bad = []
    n = 0
    with safe_open(st_file, "np") as f:
        names = list(f.keys())
        for name in names:
            t = f.get_tensor(name)
            dtype = "I64" if t.dtype.name == "int64" else "F32" if t.dtype.name == "float32" else t.dtype.name
            want = model.get(prefix + name)
            if want is None:
                bad.append("%s%s: not a model tensor" % (prefix, name))
            elif (list(t.shape), dtype) != (want[0], want[1]):
                bad.append("%s%s: file %s %s, model %s %s" % (prefix, name, list(t.shape), dtype, want[0], want[1]))
            else:
                n += 1
    left = sorted(k for k in model if k.startswith(prefix) and k[len(prefix):] not in set(names))
    bad += ["%s: under the prefix but not in the file" % k for k in left]
    print("init_from_names: %d of %d file tensors land on %s* (%d model tensors there, %d in all)"
          % (n, len(names), prefix, sum(k.startswith(prefix) for k in model), len(model)))
    if bad:
        print("\n".join(bad[:20]))
        sys.exit(1)


if __name__ == "__main__":
    main()
