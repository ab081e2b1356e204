"""interop.py — lgen checkpoints vs Python's safetensors package.

Trains the fake model (build/tests/trainer_fake, tests/trainer/fake_model.c)
for two epochs, opens last.ckpt with safetensors and compares every tensor
name, dtype, shape and value, and the metadata, with what the C reader
reports (`trainer_fake dump FILE`). Then the other way: files written by
safetensors.numpy are read by the C side, and a dtype lgen does not handle
is refused with a message. The run's TensorBoard event file is read back
(record CRCs, Event protos; with tensorboard's own reader when installed)
and must hold exactly metrics.csv's values. Exit 0 when all checks pass.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

FAKE = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def fields(b):
    """(field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def read_events(path):
    """TFRecords of Event protos: checks both CRCs and the file_version
    header, returns [(tag, step, simple_value)]."""
    raw = open(path, "rb").read()
    i, out, first = 0, [], True
    while i < len(raw):
        head = raw[i:i + 8]
        n = int.from_bytes(head, "little")
        check(int.from_bytes(raw[i + 8:i + 12], "little") == masked(crc32c(head)), "length CRC")
        data = raw[i + 12:i + 12 + n]
        check(int.from_bytes(raw[i + 12 + n:i + 16 + n], "little") == masked(crc32c(data)), "data CRC")
        i += 16 + n
        ev = list(fields(data))
        step = next((v for num, _, v in ev if num == 2), 0)
        if first:
            check(any(num == 3 and v == b"brain.Event:2" for num, _, v in ev), "file_version first")
            first = False
            continue
        for num, _, summary in ev:
            if num != 5:
                continue
            for snum, _, value in fields(summary):
                tag = val = None
                for vnum, _, x in fields(value):
                    if vnum == 1:
                        tag = x.decode()
                    elif vnum == 2:
                        val = float(np.frombuffer(x, dtype="<f4")[0])
                out.append((tag, step, val))
    return out


def dump(path):
    r = subprocess.run([FAKE, "dump", path], capture_output=True, text=True)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else None), r.stderr


with tempfile.TemporaryDirectory() as tmp:
    r = subprocess.run([FAKE, "fit", "--max_epochs", "2", "--default_root_dir", tmp,
                        "--enable_progress_bar", "false"], capture_output=True, text=True)
    check(r.returncode == 0, "fit exits 0 (%d: %s)" % (r.returncode, r.stderr))
    ckpt = os.path.join(tmp, "lightning_logs", "version_0", "checkpoints", "last.ckpt")

    # --- C wrote, Python reads ----------------------------------------------
    rc, c_side, _ = dump(ckpt)
    check(rc == 0, "the C reader opens its own checkpoint")
    with safe_open(ckpt, framework="numpy") as f:
        names = sorted(f.keys())
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in names}
    check(names == sorted(c_side["tensors"]), "same tensor names: %s" % names)
    expected = {
        "fc.weight": ((3, 4), np.float32),
        "fc.bias": ((3,), np.float32),
        "stats.running_mean": ((4,), np.float32),
        "stats.num_batches_tracked": ((), np.int64),
        "optimizer.state.fc.weight.momentum_buffer": ((3, 4), np.float32),
        "optimizer.state.fc.bias.momentum_buffer": ((3,), np.float32),
    }
    check(set(expected) == set(names), "PyTorch names and optimizer state present")
    for name, (shape, dtype) in expected.items():
        t = tensors.get(name)
        if t is None:
            continue
        check(t.shape == shape, "%s shape %s == %s" % (name, t.shape, shape))
        check(t.dtype == dtype, "%s dtype %s == %s" % (name, t.dtype, dtype))
        c = c_side["tensors"][name]
        check(list(t.shape) == c["shape"], "%s: C shape %s" % (name, c["shape"]))
        cv = np.array(c["values"], dtype=dtype).reshape(shape)
        check(np.array_equal(t, cv), "%s: values equal bit for bit" % name)
    check(int(tensors["stats.num_batches_tracked"]) == 14, "num_batches_tracked is 14 (2 x 7 steps)")
    check(np.all(np.isfinite(tensors["fc.weight"])) and np.abs(tensors["fc.weight"]).sum() > 0,
          "trained weights are finite and non-zero")
    check(meta == c_side["metadata"], "same metadata on both sides")
    check(meta.get("format") == "lgen.checkpoint/1", "format tag")
    check(meta.get("epoch") == "1" and meta.get("global_step") == "14", "epoch 1, step 14")
    check(meta.get("spec_hash", "").startswith("f00d"), "spec hash recorded")
    for key in ("hparams", "optimizer", "lr_schedulers", "rng", "loop", "callbacks"):
        try:
            json.loads(meta[key])
        except (KeyError, ValueError):
            check(False, "metadata %s holds JSON" % key)
    check(json.loads(meta["hparams"]).get("lr") == "0.1", "hparams lr 0.1")
    check(json.loads(meta["optimizer"]).get("type") == "SGD", "optimizer SGD")
    with open(ckpt, "rb") as fp:
        raw = fp.read()
    n = int.from_bytes(raw[:8], "little")
    check(n % 8 == 0 and raw[8:9] == b"{", "header: 8-byte LE size, JSON, padded to 8")

    # --- TensorBoard event file ----------------------------------------------
    vdir = os.path.join(tmp, "lightning_logs", "version_0")
    events = [f for f in os.listdir(vdir) if f.startswith("events.out.tfevents.")]
    check(len(events) == 1, "one TensorBoard event file: %s" % events)
    if events:
        scalars = read_events(os.path.join(vdir, events[0]))
        with open(os.path.join(vdir, "metrics.csv")) as fp:
            rows = list(csv.DictReader(fp))
        want = {}
        for row in rows:
            for k, v in row.items():
                if k not in ("epoch", "step") and v != "":
                    want[(k, int(row["step"]))] = float(np.float32(float(v)))
        got = {(tag, step): v for tag, step, v in scalars if tag != "epoch"}
        check(set(want) == set(got), "event scalars match metrics.csv rows (%d vs %d)" % (len(got), len(want)))
        check(all(abs(got[k] - want[k]) <= 1e-6 * max(1.0, abs(want[k])) for k in want if k in got),
              "event values equal metrics.csv values")
        try:
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            acc = EventAccumulator(vdir)
            acc.Reload()
            check("train_loss" in acc.Tags()["scalars"], "TensorBoard reads the event file")
        except ImportError:
            print("note: tensorboard is not installed; event file checked with the reader here")

    # --- Python wrote, C reads ----------------------------------------------
    w = (np.arange(6, dtype=np.float32) / 7).reshape(2, 3)
    py = os.path.join(tmp, "py.safetensors")
    save_file({"layer.weight": w, "count": np.array(5, dtype=np.int64),
               "d": np.array([1.5, -2.25], dtype=np.float64)}, py, metadata={"k": "v"})
    rc, c_side, err = dump(py)
    check(rc == 0, "the C reader opens a file written by safetensors (%s)" % err)
    if rc == 0:
        t = c_side["tensors"]
        check(t["layer.weight"]["shape"] == [2, 3] and t["layer.weight"]["dtype"] == "F32",
              "layer.weight F32 [2, 3]")
        check(np.array_equal(np.array(t["layer.weight"]["values"], dtype=np.float32).reshape(2, 3), w),
              "layer.weight values")
        check(t["count"]["values"] == [5] and t["count"]["shape"] == [], "count I64 scalar 5")
        check(t["d"]["values"] == [1.5, -2.25], "F64 values")
        check(c_side["metadata"] == {"k": "v"}, "metadata read")
    half = os.path.join(tmp, "half.safetensors")
    save_file({"h": np.ones(3, dtype=np.float16)}, half)
    rc, _, err = dump(half)
    check(rc != 0 and "unsupported dtype 'F16'" in err, "F16 refused with a message: %r" % err)

if failures:
    print("%d interop check(s) failed" % len(failures))
    sys.exit(1)
print("interop: checkpoints agree with Python's safetensors")
