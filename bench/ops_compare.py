#!/usr/bin/env python3
"""ops_compare.py — lgen's CPU kernels beside PyTorch's, measured in one run.

For each case it runs build/bench/ops_bench (C, our kernels; conv both on its
default oneDNN path and with LGEN_CONV=im2col) and then PyTorch on the same shapes
with torch.set_num_threads(THREADS), alternating so both see the same machine
load: each case runs ROUNDS times (environment, default 5), lgen then torch,
and each side's best round counts, so a burst of load on this shared machine
during one side's turn does not decide the ratio. It prints the times and
ratio = torch / lgen (> 1: lgen is faster).
GEMM GFLOP/s is reported as a fraction of the 232 GFLOP/s FP32 peak of this
2-core machine. Usage: ops_compare.py BENCH_BINARY [THREADS].
"""
import os
import subprocess
import sys
import time

PEAK = 232.0  # replaced by the machine's measured peak (ops_bench's "peak" lines) when there is one
binary = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
env = dict(os.environ, OMP_NUM_THREADS=str(threads))
ROUNDS = max(1, int(os.environ.get("ROUNDS", "5")))

try:
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
except ImportError:
    torch = None
    print("ops_compare: torch is not installed; printing lgen's times only")


def run_c(*args, extra_env=None):
    out = subprocess.run([binary, str(threads), *args], env=dict(env, **(extra_env or {})), check=True,
                         capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) >= 4:
            rows[(f[1], f[2])] = (float(f[3]), f[4] if len(f) > 4 else "")
    return rows


def rounds(c_side, torch_side):
    """ROUNDS alternations of c_side() (a run_c result) and torch_side(that
    result) (a list of times; zeros without torch): the best time of each."""
    best_c, best_t = {}, None
    for _ in range(ROUNDS):
        r = c_side()
        for k, (ms, extra) in r.items():
            if k not in best_c or ms < best_c[k][0]:
                best_c[k] = (ms, extra)
        t = list(torch_side(r))
        best_t = t if best_t is None else [min(a, b) for a, b in zip(best_t, t)]
        sys.stdout.flush()
    return best_c, best_t


def time_ms(fn):
    fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    reps = 1 if once > 0.15 else int(0.15 / max(once, 1e-6)) + 1
    best = 1e30
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best * 1e3


CONVS = [
    ("lenet.conv1", 64, 1, 28, 28, 6, 5, 1, 2), ("lenet.conv2", 64, 6, 14, 14, 16, 5, 1, 0),
    ("resnet20.conv1", 128, 3, 32, 32, 16, 3, 1, 1), ("resnet20.s1", 128, 16, 32, 32, 16, 3, 1, 1),
    ("resnet20.s2down", 128, 16, 32, 32, 32, 3, 2, 1), ("resnet20.s2", 128, 32, 16, 16, 32, 3, 1, 1),
    ("resnet20.s3down", 128, 32, 16, 16, 64, 3, 2, 1), ("resnet20.s3", 128, 64, 8, 8, 64, 3, 1, 1),
    ("resnet18.conv1", 8, 3, 224, 224, 64, 7, 2, 3), ("resnet18.l1", 8, 64, 56, 56, 64, 3, 1, 1),
    ("resnet18.l2down", 8, 64, 56, 56, 128, 3, 2, 1), ("resnet18.l2ds", 8, 64, 56, 56, 128, 1, 2, 0),
    ("resnet18.l2", 8, 128, 28, 28, 128, 3, 1, 1), ("resnet18.l3down", 8, 128, 28, 28, 256, 3, 2, 1),
    ("resnet18.l3", 8, 256, 14, 14, 256, 3, 1, 1), ("resnet18.l4down", 8, 256, 14, 14, 512, 3, 2, 1),
    ("resnet18.l4", 8, 512, 7, 7, 512, 3, 1, 1),
]
LINEARS = [("mlp.fc1", 64, 784, 256), ("lenet.fc1", 64, 400, 120), ("resnet.fc", 128, 512, 1000),
           ("fc1024", 256, 1024, 1024)]


def torch_conv(n, ci, h, w, co, k, s, p):
    if torch is None:
        return [0, 0]
    x = torch.randn(n, ci, h, w, requires_grad=True)
    wt = torch.randn(co, ci, k, k, requires_grad=True)
    b = torch.randn(co, requires_grad=True)
    with torch.no_grad():
        fwd = time_ms(lambda: F.conv2d(x, wt, b, s, p))
    y = F.conv2d(x, wt, b, s, p)
    dy = torch.randn_like(y)
    bwd = time_ms(lambda: torch.autograd.grad(y, [x, wt, b], dy, retain_graph=True))
    return fwd, bwd


def torch_linear(rows, fin, fout):
    if torch is None:
        return [0, 0]
    x = torch.randn(rows, fin, requires_grad=True)
    wt = torch.randn(fout, fin, requires_grad=True)
    b = torch.randn(fout, requires_grad=True)
    with torch.no_grad():
        fwd = time_ms(lambda: F.linear(x, wt, b))
    y = F.linear(x, wt, b)
    dy = torch.randn_like(y)
    bwd = time_ms(lambda: torch.autograd.grad(y, [x, wt, b], dy, retain_graph=True))
    return fwd, bwd


def torch_optim(name):
    if torch is None:
        return [0, 0]
    try:
        import torchvision
        shapes = [p.shape for p in torchvision.models.resnet18().parameters()]
    except ImportError:
        shapes = [(11689512 // 62,)] * 62
    ps = [torch.randn(s, requires_grad=True) for s in shapes]
    for p in ps:
        p.grad = torch.randn(s) if False else torch.randn(p.shape)
    if name == "sgd_momentum":
        opt = torch.optim.SGD(ps, lr=1e-6, momentum=0.9, weight_decay=5e-4)
    elif name == "adam":
        opt = torch.optim.Adam(ps, lr=1e-6)
    else:
        opt = torch.optim.AdamW(ps, lr=1e-6, weight_decay=1e-2)
    res = [time_ms(opt.step)]
    for foreach in (True,):  # PyTorch's faster multi-tensor path, for reference
        opt2 = type(opt)(ps, **{k: v for k, v in opt.defaults.items() if k in ("lr", "momentum", "weight_decay")},
                         foreach=foreach)
        res.append(time_ms(opt2.step))
    return res


def torch_best(fn):
    """fn's time with PyTorch on the bench's threads or on one thread,
    whichever is less: on the Sapphire Rapids machine of Dec 4 its 2-thread
    pool sat for whole runs at 5-7x its one-thread time on elementwise ops
    (gelu 8.7-10.2 ms against 1.3), which would flatter lgen's ratio."""
    t = time_ms(fn)
    torch.set_num_threads(1)
    try:
        return min(t, time_ms(fn))
    finally:
        torch.set_num_threads(threads)


def torch_elementwise(name):
    """PyTorch's forward and backward time of one elementwise op over the
    bench's [128, 64, 32, 32] activation (softmax: rows of 1000), on its
    best thread count (torch_best)."""
    if torch is None:
        return [0, 0]
    x = torch.randn(128, 64, 32, 32)
    b = torch.randn_like(x)
    if name == "softmax":
        x = x.view(-1)[: x.numel() // 1000 * 1000].view(-1, 1000).clone()
    x.requires_grad_(True)
    w, bias = torch.randn(64, requires_grad=True), torch.randn(64, requires_grad=True)
    rm, rv = torch.zeros(64), torch.ones(64)
    fns = {"relu": F.relu, "sigmoid": torch.sigmoid, "gelu": F.gelu, "silu": F.silu,
           "add": lambda t: t + b, "mul": lambda t: t * b, "softmax": lambda t: torch.softmax(t, -1),
           "batch_norm": lambda t: F.batch_norm(t, rm, rv, w, bias, training=True)}
    fn = fns[name]
    with torch.no_grad():
        fwd = torch_best(lambda: fn(x))
    if name in ("add", "mul"):
        return fwd, 0
    y = fn(x)
    dy = torch.randn_like(y)
    ins = [x, w, bias] if name == "batch_norm" else [x]
    bwd = torch_best(lambda: torch.autograd.grad(y, ins, dy, retain_graph=True))
    return fwd, bwd


def line(kind, name, what, lg, th, extra=""):
    ratio = f"{th / lg:6.2f}x" if th else "     -"
    ths = f"{th:9.3f}" if th else "        -"
    print(f"{kind:7s} {name:17s} {what:5s} lgen {lg:9.3f} ms  torch {ths} ms  ratio {ratio}  {extra}")


cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
print(f"lgen CPU kernels vs PyTorch {torch.__version__ if torch else '(absent)'}, {threads} threads on {cpu}, "
      f"best of {ROUNDS} alternating rounds; ratio = torch time / lgen time (>= 1 means lgen is at least as fast)")
pk = run_c("peak")
if pk:
    PEAK = max(float(e.split()[0]) for _, e in pk.values())
    widths = ", ".join(f"{n} {float(e.split()[0]):.1f}" for (n, _), (_, e) in pk.items())
    print(f"peak    float32 FMA chains on {threads} threads: {widths} GFLOP/s; '% of peak' below divides by {PEAK:.0f}")
g = run_c("gemm")
ms, extra = g[("sgemm4096", "fwd")]
gf = float(extra.split()[0])
print(f"gemm    sgemm 4096^2 (OpenBLAS, 1 thread) {ms:9.3f} ms  {gf:6.1f} GFLOP/s = {gf / (PEAK / threads):.0%} of one "
      f"core's {PEAK / threads:.0f} GFLOP/s peak")
if ("pool4096", "fwd") in g:
    ms, extra = g[("pool4096", "fwd")]
    gf = float(extra.split()[0])
    print(f"gemm    the same, tiled on our pool ({threads} threads) {ms:9.3f} ms  {gf:6.1f} GFLOP/s = {gf / PEAK:.0%} of peak")
if torch:
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    tm = time_ms(lambda: a @ b)
    tg = 2 * 4096 ** 3 / tm / 1e6
    print(f"gemm    torch matmul 4096^2       {tm:9.3f} ms  {tg:6.1f} GFLOP/s = {tg / PEAK:.0%} of peak")

print("\n-- conv2d forward / backward (dx, dweight, dbias): lgen's default path (oneDNN, runtime/ops/conv_dnnl.c)"
      "\n   against torch; im2col = the same kernel with LGEN_CONV=im2col (the fallback)")
wins = {"fwd": 0, "bwd": 0}
for c in CONVS:
    r, (tf, tb) = rounds(lambda: run_c("conv", c[0], extra_env={"LG_BENCH_NO_DNNL": "1"}),
                         lambda _: torch_conv(*c[1:]))
    ri = run_c("conv", c[0], extra_env={"LG_BENCH_NO_DNNL": "1", "LGEN_CONV": "im2col"})
    for what, t in (("fwd", tf), ("bwd", tb)):
        lg, e = r[(c[0], what)]
        li = ri[(c[0], what)][0]
        wins[what] += bool(t) and lg <= t
        line("conv", c[0], what, lg, t, f"{e} ({float(e.split()[0]) / PEAK:.0%} of peak)  im2col {li:.3f} ms")
    sys.stdout.flush()
if torch:
    print(f"conv: lgen at least as fast as torch on {wins['fwd']}/{len(CONVS)} forward and "
          f"{wins['bwd']}/{len(CONVS)} backward shapes (target: all)")

print("\n-- linear forward / backward (dx, dweight, dbias)")
for c in LINEARS:
    r, (tf, tb) = rounds(lambda: run_c("linear", c[0]), lambda _: torch_linear(*c[1:]))
    lf, ef = r[(c[0], "fwd")]
    lb, eb = r[(c[0], "bwd")]
    line("linear", c[0], "fwd", lf, tf, ef)
    line("linear", c[0], "bwd", lb, tb, eb)

print("\n-- optimizer step over ResNet-18's 11.7M parameters (fused single pass)")
OPTIMS = ("sgd_momentum", "adam", "adamw")
r, ts_all = rounds(lambda: run_c("optim"), lambda _: [t for n in OPTIMS for t in torch_optim(n)])
tri = r.get(("triad", "fwd"))
if tri:
    print(f"memory  triad a = a*s + b (2 threads)  {tri[0]:9.3f} ms  {tri[1]}")
for i, name in enumerate(OPTIMS):
    lg, extra = r[(name, "step")]
    ts = ts_all[2 * i:2 * i + 2]
    line("optim", name, "step", lg, ts[0], f"{extra}; torch foreach {ts[1]:.3f} ms")

print("\n-- elementwise ops over a [128, 64, 32, 32] float activation (32 MiB; softmax: rows of 1000);")
print("   GB/s counts the bytes each op has to move at least (forward: read x, write y; backward: + dy);")
print(f"   torch: the better of {threads} threads and 1 (its pool sometimes stalls on elementwise ops)")
def names_of(rows):  # the ops in ops_bench's order
    return list(dict.fromkeys(name for name, _ in rows))


r, te = rounds(lambda: run_c("elementwise"), lambda rows: [t for n in names_of(rows) for t in torch_elementwise(n)])
names = names_of(r)
for i, name in enumerate(names):
    tf, tb = te[2 * i:2 * i + 2]
    for w, t in (("fwd", tf), ("bwd", tb)):
        if (name, w) in r:
            lg, extra = r[(name, w)]
            frac = f" = {float(extra.split()[0]) / float(tri[1].split()[0]):.0%} of triad" if tri else ""
            line("eltwise", name, w, lg, t, extra + frac)
