#!/usr/bin/env python3
"""train.py — `make bench`: the generated trainers against PyTorch, one run.

For specs/mlp.lmod (784-512-256-10, batch 128) and specs/lenet.lmod (batch
64) it compiles the spec with lgen, builds the trainer, and measures with the
same clock and the same rusage:
  - samples/s in steady state: two runs with --max_steps S1 and S2; the
    difference of their wall times covers S2 - S1 optimizer steps (the best
    of three such pairs);
  - time from process start to the end of the first step: a run with
    --max_steps 1 (the whole process, exit included: an upper bound);
  - peak RSS (wait4's ru_maxrss) of the longer run.
PyTorch (bench/train_torch.py) runs with torch.set_num_threads(THREADS) under
each of its threading settings (OMP_WAIT_POLICY unset/PASSIVE/ACTIVE, times
OPENBLAS_NUM_THREADS unset/1); its best figure of each kind is the reference.
Prints every measurement, then the ratios against the targets (MLP >= 1.2x,
LeNet >= 3x samples/s; peak RSS <= 0.25x; first step <= 1/20), met or not.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MODELS = {"mlp": {"batch": 128, "target": 1.2}, "lenet": {"batch": 64, "target": 3.0}}


def run_rss(cmd, env=None, cwd=None):
    """Runs cmd: (wall seconds, peak RSS MiB of that one process via wait4, stdout, start)."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            if cwd:
                os.chdir(cwd)
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 2)
            out = os.open(os.path.join(cwd or ".", ".bench_stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1)
            os.execvpe(cmd[0], cmd, env or os.environ)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("bench: %s failed (status %d)" % (" ".join(cmd), os.waitstatus_to_exitcode(status)))
    with open(os.path.join(cwd or ".", ".bench_stdout")) as f:
        out = f.read()
    return wall, ru.ru_maxrss / 1024.0, out, start


def lgen_side(args, name, work):
    spec = os.path.join(ROOT, "specs", name + ".lmod")
    gen = os.path.join(args.build, name)
    subprocess.check_call([args.lgen, spec, "-o", gen])
    subprocess.check_call(["make", "-s", "-C", gen], stdout=subprocess.DEVNULL)
    exe = os.path.join(gen, name)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
    common = ["--limit_val_batches", "0", "--num_sanity_val_steps", "0", "--enable_progress_bar", "false",
              "--default_root_dir", work, "--num_threads", str(args.threads)]
    def fit(steps):
        return run_rss([exe, "fit", "--max_steps", str(steps)] + common, env=env, cwd=work)
    fit(1)  # warm the data cache (first run copies and verifies the files)
    first = min(fit(1)[0] for _ in range(3))
    bs = MODELS[name]["batch"]
    # best of 3 pairs: PyTorch gets the best of its 6 settings, each one run,
    # and a burst of load on this shared machine halved single measurements
    sps, rss = 0, 0
    for _ in range(3):
        w1, _, _, _ = fit(args.steps1)
        w2, r, _, _ = fit(args.steps2)
        sps, rss = max(sps, (args.steps2 - args.steps1) * bs / max(w2 - w1, 1e-9)), max(rss, r)
    return {"samples_per_s": sps, "first_step_s": first, "rss_mib": rss}


def torch_side(args, name, work):
    best = None
    rows = []
    for wait in [None, "PASSIVE", "ACTIVE"]:
        for ob in [None, "1"]:
            env = dict(os.environ)
            env.pop("OMP_WAIT_POLICY", None)
            env.pop("OPENBLAS_NUM_THREADS", None)
            if wait:
                env["OMP_WAIT_POLICY"] = wait
            if ob:
                env["OPENBLAS_NUM_THREADS"] = ob
            cmd = [sys.executable, os.path.join(HERE, "train_torch.py"), "--model", name,
                   "--steps", str(args.torch_steps), "--threads", str(args.threads)]
            wall, rss, out, start = run_rss(cmd, env=env, cwd=work)
            r = json.loads(out.strip().splitlines()[-1])
            r["first_step_s"] = r["first_step_end"] - start
            r["rss_mib"] = rss
            r["setting"] = "OMP_WAIT_POLICY=%s OPENBLAS_NUM_THREADS=%s" % (wait or "-", ob or "-")
            rows.append(r)
            print("  torch %-5s %-45s %9.0f samples/s  first step %.2f s  peak RSS %.0f MiB"
                  % (name, r["setting"], r["samples_per_s"], r["first_step_s"], rss), flush=True)
    best = {"samples_per_s": max(r["samples_per_s"] for r in rows),
            "first_step_s": min(r["first_step_s"] for r in rows),
            "rss_mib": min(r["rss_mib"] for r in rows)}
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lgen", default=os.path.join(ROOT, "build", "lgen"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps1", type=int, default=20)
    ap.add_argument("--steps2", type=int, default=220)
    ap.add_argument("--torch-steps", type=int, default=200)
    ap.add_argument("--models", default="mlp,lenet")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.lgen = os.path.abspath(args.lgen)
    # find it without importing it: the runs are forked from this process and
    # wait4's ru_maxrss counts the pages a child had before its exec
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        raise SystemExit("bench: PyTorch is not installed (python3 -m pip install torch)")
    os.makedirs(args.build, exist_ok=True)
    results = {}
    for name in args.models.split(","):
        work = tempfile.mkdtemp(prefix="lgen-bench-")
        try:
            print("== %s" % name, flush=True)
            t = torch_side(args, name, work)
            l = lgen_side(args, name, work)
            print("  lgen  %-5s %-45s %9.0f samples/s  first step %.2f s  peak RSS %.0f MiB"
                  % (name, "generated trainer", l["samples_per_s"], l["first_step_s"], l["rss_mib"]), flush=True)
            results[name] = (l, t)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print("\n%-6s %12s %12s %10s %14s %12s" % ("model", "speed", "target", "RSS", "first step", ""))
    ok = True
    for name, (l, t) in results.items():
        speed = l["samples_per_s"] / t["samples_per_s"]
        rss = l["rss_mib"] / t["rss_mib"]
        first = l["first_step_s"] / t["first_step_s"]
        tgt = MODELS[name]["target"]
        met = speed >= tgt and rss <= 0.25 and first <= 0.05
        ok &= met
        print("%-6s %11.2fx %11.1fx %9.3fx %13.3fx %12s" % (name, speed, tgt, rss, first,
                                                          "met" if met else "MISSED"))
    print("(speed: lgen/PyTorch samples/s; RSS and first step: lgen/PyTorch, targets <= 0.25 and <= 0.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
