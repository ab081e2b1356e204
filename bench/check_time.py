"""Times `lgen check SPEC`: wall clock and CPU time (user + system, from
the kernel's accounting of the child, so a busy machine inflates only the
wall figures). Usage: python3 bench/check_time.py [--lgen build/lgen] SPEC [RUNS]
Prints min/median wall time and median CPU time in ms, and whether the
target is met (CPU median under 20 ms, the issue's figure for faster_rcnn)."""
import argparse
import resource
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--lgen", default="build/lgen")
ap.add_argument("--target-ms", type=float, default=20.0)
ap.add_argument("spec", nargs="?", default="specs/faster_rcnn.lmod")
ap.add_argument("runs", nargs="?", type=int, default=50)
a = ap.parse_args()

if subprocess.run([a.lgen, "check", a.spec]).returncode != 0:
    sys.exit(f"check_time: {a.spec} does not check")
wall, cpu = [], []
for _ in range(a.runs):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([a.lgen, "check", a.spec], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall.append((t1 - t0) * 1e3)
    cpu.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1e3)
med_cpu = statistics.median(cpu)
print(f"lgen check {a.spec}: wall min {min(wall):.2f} ms, median {statistics.median(wall):.2f} ms; "
      f"cpu median {med_cpu:.2f} ms, max {max(cpu):.2f} ms over {a.runs} runs "
      f"(target {a.target_ms:g} ms: {'met' if med_cpu < a.target_ms else 'NOT met'})")
