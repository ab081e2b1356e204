"""interop.py — lgen checkpoints vs Python's safetensors package.

Trains the fake model (build/tests/trainer_fake, tests/trainer/fake_model.c)
for two epochs, opens last.ckpt with safetensors and compares every tensor
name, dtype, shape and value, and the metadata, with what the C reader
reports (`trainer_fake dump FILE`). Then the other way: files written by
safetensors.numpy are read by the C side, and a dtype lgen does not handle
is refused with a message. Exit status 0 when all checks pass.
"""
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
