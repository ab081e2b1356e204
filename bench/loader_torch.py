#!/usr/bin/env python3
"""torchvision side of the loader benchmark: ImageFolder + RandomCrop(64,
padding=4) + RandomHorizontalFlip + ToTensor + Normalize, DataLoader with
batch_size 64, shuffle, num_workers WORKERS, on the files loader_bench wrote.
Prints "torchvision: N images/s" (best epoch after a warm-up one)."""
import sys
import time

import torch
import torchvision
import torchvision.transforms as T


def main():
    root, workers, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    tf = T.Compose([T.RandomCrop(64, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])
    ds = torchvision.datasets.ImageFolder(root + "/train", transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=workers,
                                     persistent_workers=workers > 0)
    import resource
    best = 0.0
    c0 = time.process_time()
    for e in range(epochs + 1):
        t0 = time.perf_counter()
        n = 0
        for x, y in dl:
            n += x.shape[0]
        rate = n / (time.perf_counter() - t0)
        if e > 0:
            best = max(best, rate)
    del dl  # joins the persistent workers, so their CPU time is counted below
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + kids.ru_utime + kids.ru_stime
    print(f"torchvision {torchvision.__version__}: {best:.0f} images/s "
          f"(best of {epochs} epochs of {len(ds)} images, {workers} workers)")
    print(f"torchvision cpu: {(epochs + 1) * len(ds) / cpu:.0f} images per CPU-second")


if __name__ == "__main__":
    main()
