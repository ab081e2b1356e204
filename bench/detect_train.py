#!/usr/bin/env python3
"""detect_train.py — `make bench-frcnn`: one Faster R-CNN training iteration,
lgen's generated trainer beside torchvision's fasterrcnn_resnet50_fpn.

Both sides: ResNet-50-FPN, random initialisation, 2 images of 320x320 per
iteration, 21 classes, torchvision's training sizes (2000/2000 proposals, 256
sampled anchors and 512 sampled RoIs per image), SGD with momentum, on
THREADS threads (default 2), measured in one run of this script so that both
see the same machine load.

  torchvision: a child process (`detect_train.py --torch-child`) builds
      fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None,
      num_classes=21, min_size=320, max_size=320), trains on two random
      images with three boxes each, and times each iteration (forward, the
      four losses, backward, optimizer step) after WARMUP untimed ones; the
      median is the figure, the better of two runs with OMP_WAIT_POLICY unset
      and PASSIVE. Peak RSS is the child's ru_maxrss (wait4).
  lgen: specs/faster_rcnn.lmod with its dataset block pointed at a VOC-layout
      tar that tools/vocgen writes (the real VOC is not fetched), compiled
      with `lgen -D image_size=320 -D arch=resnet50 -D fpn_channels=256
      -D rois=512`; `fit --max_steps S1` and `--max_steps S2`
      runs (no validation, no checkpoints, no gradient clipping: torchvision's
      loop has none) and the difference of their wall times over S2 - S1 is
      the time per iteration (start-up, data preparation and exit cancel).
      Peak RSS is the S2 run's ru_maxrss (wait4).

If lgen cannot generate the detector yet, the torchvision side is reported
alone with lgen's first error. Prints the figures, then the ratios against the
issue's targets (time <= 1.0x torchvision's, peak RSS below it).

    python3 bench/detect_train.py [--lgen build/lgen] [--build build/bench/frcnn]
                                  [--threads 2] [--iters 3] [--steps 1 4] [--rounds 2]
                                  [--no-torch] [--env NAME=VALUE ...]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
IMG, BATCH, CLASSES = 320, 2, 21
VOCGEN_CLASSES = ("circle", "square", "triangle", "diamond", "cross")


# ---- torchvision (child process) ---------------------------------------------

def torch_child(args):
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=CLASSES, min_size=IMG, max_size=IMG)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = [torch.rand(3, IMG, IMG) for _ in range(BATCH)]
    targets = [{"boxes": torch.tensor([[20.0, 30.0, 120.0, 150.0], [150.0, 60.0, 300.0, 200.0],
                                       [40.0, 200.0, 140.0, 310.0]]),
                "labels": torch.tensor([1, 2, 3])} for _ in range(BATCH)]
    times, cpu = [], []
    for it in range(args.warmup + args.iters):
        t0, c0 = time.perf_counter(), time.process_time()
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    print(json.dumps({"times": times, "cpu": cpu, "loss": float(loss), "torch": torch.__version__,
                      "torchvision": torchvision.__version__}))


def run_rss(cmd, env=None, cwd=None, log=None):
    """Runs cmd; returns (wall seconds, peak RSS MiB, CPU seconds (user + system,
    all threads) of that process, stdout)."""
    out_path = os.path.join(cwd or ".", ".bench_stdout")
    err_path = log or os.devnull
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            if cwd:
                os.chdir(cwd)
            os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
            os.dup2(os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
            os.execvpe(cmd[0], cmd, env or os.environ)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - start
    with open(out_path) as f:
        out = f.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = ""
        if log and os.path.exists(log):
            with open(log) as f:
                tail = "".join(f.readlines()[-15:])
        raise RuntimeError("%s exited %d\n%s%s" % (" ".join(cmd), code, out[-2000:], tail))
    return wall, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime, out


def torch_side(args, work):
    """torchvision under OMP_WAIT_POLICY unset and PASSIVE; the faster one counts
    (on a shared, oversubscribed box OpenMP's spinning barriers can halve
    torch's speed, which would flatter lgen)."""
    best = None
    for wait in (None, "PASSIVE"):
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        env.pop("OMP_WAIT_POLICY", None)
        if wait:
            env["OMP_WAIT_POLICY"] = wait
        cmd = [sys.executable, os.path.abspath(__file__), "--torch-child", "--threads", str(args.threads),
               "--iters", str(args.iters), "--warmup", str(args.warmup)]
        _, rss, _, out = run_rss(cmd, env=env, cwd=work, log=os.path.join(work, "torch.log"))
        r = json.loads(out.strip().splitlines()[-1])
        r["s_per_iter"] = statistics.median(r["times"])
        r["cpu_per_iter"] = statistics.median(r["cpu"])
        r["rss_mib"] = rss
        r["omp_wait_policy"] = wait or "unset"
        if best is None or r["s_per_iter"] < best["s_per_iter"]:
            best = r
    return best


# ---- lgen ----------------------------------------------------------------------

def vocgen_spec(args, work):
    """specs/faster_rcnn.lmod with its dataset block on a vocgen tar."""
    data = os.path.join(work, "www")
    os.makedirs(data, exist_ok=True)
    tar = os.path.join(data, "voc.tar")
    out = subprocess.check_output([args.vocgen, "--seed", "1", "--images", "32", "--size", str(IMG),
                                   "--out", tar], text=True)
    sha = out.split()[0]
    with open(os.path.join(ROOT, "specs", "faster_rcnn.lmod")) as f:
        text = f.read()
    block = ('dataset voc {\n'
             '    "tools/vocgen: 32 images of 320x320 in the VOC 2007 layout (bench/detect_train.py)"\n'
             '    mirror "file://%s/"\n'
             '    archive "voc.tar" sha256 "%s"\n'
             '    format voc(classes: (%s), max_boxes: 64, skip_difficult: false)\n'
             '    split trainval("VOCdevkit/VOC2007", set: "trainval")\n'
             '    split test("VOCdevkit/VOC2007", set: "test")\n'
             '}') % (data, sha, ", ".join('"%s"' % c for c in VOCGEN_CLASSES))
    new, n = re.subn(r"^dataset voc \{.*?^\}", block, text, count=1, flags=re.S | re.M)
    if n != 1:
        raise RuntimeError("cannot find the 'dataset voc { ... }' block in specs/faster_rcnn.lmod")
    spec = os.path.join(work, "faster_rcnn.lmod")
    with open(spec, "w") as f:
        f.write(new)
    return spec


def lgen_build(args, work):
    """Generates and builds the detector; returns the trainer or {"error": ...}."""
    spec = vocgen_spec(args, work)
    gen = os.path.join(work, "gen")
    # torchvision's sizes, named even where they are the spec's defaults, so
    # that a change of default cannot change what is compared
    defs = ["image_size=%d" % IMG, "arch=resnet50", "fpn_channels=256", "rois=512"]
    p = subprocess.run([args.lgen, "-I", os.path.join(ROOT, "specs")] + sum((["-D", d] for d in defs), []) +
                       [spec, "-o", gen], capture_output=True, text=True)
    if p.returncode != 0:
        errs = [l for l in p.stderr.splitlines() if ": error: " in l]
        return {"error": "lgen cannot generate the detector yet: " + (errs[0] if errs else p.stderr.strip()[:300]),
                "n_errors": len(errs)}
    subprocess.check_call(["make", "-s", "-C", gen], stdout=subprocess.DEVNULL)
    return os.path.join(gen, "faster_rcnn")


def lgen_side(args, work, exe):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS="1")
    env.update(kv.split("=", 1) for kv in args.env)
    common = ["--batch_size", str(BATCH), "--num_threads", str(args.threads), "--num_workers", "1",
              "--limit_val_batches", "0", "--num_sanity_val_steps", "0", "--enable_checkpointing", "false",
              "--gradient_clip_val", "0", "--enable_progress_bar", "false", "--enable_model_summary", "false",
              "--data_dir", os.path.join(work, "cache"), "--default_root_dir", work]

    def fit(steps):
        return run_rss([exe, "fit", "--max_steps", str(steps)] + common, env=env, cwd=work,
                       log=os.path.join(work, "lgen_fit_%d.log" % steps))
    s1, s2 = args.steps
    w1, _, c1, _ = fit(s1)
    w2, rss, c2, _ = fit(s2)
    return {"s_per_iter": (w2 - w1) / (s2 - s1), "cpu_per_iter": (c2 - c1) / (s2 - s1), "rss_mib": rss,
            "wall": {s1: w1, s2: w2}}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lgen", default=os.path.join(ROOT, "build", "lgen"))
    p.add_argument("--vocgen", default=os.path.join(ROOT, "build", "vocgen"))
    p.add_argument("--build", default=os.path.join(ROOT, "build", "bench", "frcnn"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=3, help="timed torchvision iterations")
    p.add_argument("--warmup", type=int, default=1, help="untimed torchvision iterations first")
    p.add_argument("--steps", type=int, nargs=2, default=[1, 4], metavar=("S1", "S2"),
                   help="lgen runs of S1 and S2 steps (their difference is timed)")
    p.add_argument("--rounds", type=int, default=2, help="torchvision/lgen rounds, alternated")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment of lgen's runs (e.g. LGEN_CONV=im2col); repeatable")
    p.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-torch", action="store_true", help="lgen side only")
    args = p.parse_args()
    if args.torch_child:
        return torch_child(args)
    work = os.path.abspath(args.build)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    print("Faster R-CNN ResNet-50-FPN, one training iteration: %d images of %dx%d, %d classes, "
          "%d threads%s" % (BATCH, IMG, IMG, CLASSES, args.threads,
                            "; lgen with " + " ".join(args.env) if args.env else ""))
    have_torch = False
    if not args.no_torch:
        # Asked in a subprocess: torch imported here would inflate the forked
        # children's ru_maxrss (their pages before exec count).
        have_torch = subprocess.run([sys.executable, "-c", "import torch, torchvision"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        if not have_torch:
            print("torchvision: not installed (pip install torch torchvision); lgen side only")
    exe = lgen_build(args, work)
    if isinstance(exe, dict):
        print("lgen: " + exe["error"] + (" (and %d more)" % (exe["n_errors"] - 1) if exe["n_errors"] > 1 else ""))
        print("lgen: no figures; torchvision's side stands alone")
    else:
        run_rss([exe, "fit", "--max_steps", "1", "--batch_size", str(BATCH), "--limit_val_batches", "0",
                 "--num_sanity_val_steps", "0", "--enable_checkpointing", "false", "--enable_progress_bar", "false",
                 "--data_dir", os.path.join(work, "cache"), "--default_root_dir", work],
                cwd=work, log=os.path.join(work, "lgen_prepare.log"))  # data set: copy, verify, extract once
    # Rounds alternate the two sides, so that both see the same load; the
    # load average is printed with each round (2 cores shared with others).
    rows = []
    s1, s2 = args.steps
    for r in range(args.rounds):
        tv = lg = None
        if have_torch:
            tv = torch_side(args, work)
            print("round %d  torchvision %s (torch %s, OMP_WAIT_POLICY %s): %.3f s/iteration wall, %.3f s CPU "
                  "(median of %d: %s), peak RSS %.0f MiB" % (r + 1, tv["torchvision"], tv["torch"],
                                                            tv["omp_wait_policy"], tv["s_per_iter"],
                                                            tv["cpu_per_iter"], len(tv["times"]),
                                         " ".join("%.2f" % t for t in tv["times"]), tv["rss_mib"]))
        if not isinstance(exe, dict):
            lg = lgen_side(args, work, exe)
            print("round %d  lgen: %.3f s/iteration wall, %.3f s CPU (fit --max_steps %d: %.2f s, %d: %.2f s), "
                  "peak RSS %.0f MiB" % (r + 1, lg["s_per_iter"], lg["cpu_per_iter"], s1, lg["wall"][s1], s2,
                                         lg["wall"][s2], lg["rss_mib"]))
        print("round %d  load average %s" % (r + 1, " ".join("%.2f" % x for x in os.getloadavg())))
        rows.append((tv, lg))
    if not have_torch or isinstance(exe, dict):
        return 0
    for r, (tv, lg) in enumerate(rows):
        print("round %d: time lgen/torchvision = %.2fx wall, %.2fx CPU; peak RSS %.0f / %.0f MiB = %.2fx" % (
            r + 1, lg["s_per_iter"] / tv["s_per_iter"], lg["cpu_per_iter"] / tv["cpu_per_iter"],
            lg["rss_mib"], tv["rss_mib"], lg["rss_mib"] / tv["rss_mib"]))
    wall = statistics.median(lg["s_per_iter"] / tv["s_per_iter"] for tv, lg in rows)
    cpu = statistics.median(lg["cpu_per_iter"] / tv["cpu_per_iter"] for tv, lg in rows)
    rss = max(lg["rss_mib"] for _, lg in rows) / min(tv["rss_mib"] for tv, _ in rows)
    print("time: lgen/torchvision = %.2fx wall, %.2fx CPU (target <= 1.0x: %s)" % (
        wall, cpu, "met" if max(wall, cpu) <= 1.0 else "NOT met"))
    print("peak RSS: lgen/torchvision = %.2fx (target < 1.0x: %s)" % (rss, "met" if rss < 1.0 else "NOT met"))
    return 0

if __name__ == "__main__":
    sys.exit(main())
