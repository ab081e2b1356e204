#!/usr/bin/env python3
"""detect_bench.py — lgen's detection ops beside torchvision's, one iteration.

Runs build/bench/detect_bench (the C side) and the same ops in torchvision on
the same sizes — 2 images of 320x320, FPN strides 4 to 64 with 256 channels,
torchvision's training defaults (2000/2000 proposals, 256 sampled anchors,
512 RoIs per image, 21 classes) — and prints the median milliseconds side by
side. Both sides use 2 threads unless --threads says otherwise. Needs torch
and torchvision (bench only; `make check` never runs this).

    python3 bench/detect_bench.py [--threads N] [--bin build/bench/detect_bench]
"""
import argparse
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.models.detection.rpn import RegionProposalNetwork, concat_box_prediction_layers
from torchvision.ops import MultiScaleRoIAlign

IMG, BATCH, CH, CLASSES, GT, REPS = 320, 2, 256, 21, 5, 7


def timed(results, name, fn):
    times = []
    out = None
    for _ in range(REPS):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    results[name] = statistics.median(times)
    return out


def torch_side():
    torch.manual_seed(0)
    res = {}
    gen = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    images = ImageList(torch.zeros(BATCH, 3, IMG, IMG), [(IMG, IMG)] * BATCH)
    rpn_feats = [torch.zeros(BATCH, 1, IMG >> (l + 2), IMG >> (l + 2)) for l in range(5)]
    anchors = timed(res, "anchors", lambda: gen(images, rpn_feats))
    per_level = [f.shape[-1] * f.shape[-2] * 3 for f in rpn_feats]
    A = sum(per_level)
    targets = []
    for _ in range(BATCH):
        wh = torch.rand(GT, 2) * 150 + 30
        xy = torch.rand(GT, 2) * (IMG - wh)
        targets.append({"boxes": torch.cat([xy, xy + wh], 1),
                        "labels": torch.randint(1, CLASSES, (GT,))})
    obj = torch.randn(BATCH, A)
    deltas = torch.randn(BATCH, A, 4) * 0.1
    rpn = RegionProposalNetwork(gen, None, 0.7, 0.3, 256, 0.5, dict(training=2000, testing=1000),
                                dict(training=2000, testing=1000), 0.7)
    rpn.train()

    def rpn_forward():
        labels, matched = rpn.assign_targets_to_anchors(anchors, targets)
        reg = rpn.box_coder.encode(matched, anchors)
        o = obj.clone().reshape(-1, 1).requires_grad_()
        d = deltas.clone().reshape(-1, 4).requires_grad_()
        lo, lb = rpn.compute_loss(o, d, labels, reg)  # samples inside
        return lo + lb
    timed(res, "rpn_targets+loss", rpn_forward)

    def rpn_backward():
        loss = rpn_forward()
        t0 = time.perf_counter()
        loss.backward()
        return (time.perf_counter() - t0) * 1e3
    res["rpn_loss bwd"] = statistics.median(rpn_backward() for _ in range(REPS))

    def proposals():
        props = rpn.box_coder.decode(deltas.reshape(-1, 4), anchors).view(BATCH, -1, 4)
        return rpn.filter_proposals(props, obj, images.image_sizes, per_level)
    boxes, _ = timed(res, "proposals (top-n, NMS)", proposals)

    heads = RoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, None, 0.05, 0.5, 100)
    heads.train()
    rois, _, rlabels, rtargets = timed(res, "roi_sample",
                                       lambda: heads.select_training_samples(boxes, targets))

    feats = {str(l): torch.randn(BATCH, CH, IMG >> (l + 2), IMG >> (l + 2)) for l in range(4)}
    pool = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    req = {k: v.clone().requires_grad_() for k, v in feats.items()}
    out = timed(res, "roi_align fwd (1024 RoIs)",
                lambda: pool(req, rois, images.image_sizes))
    gout = torch.randn_like(out)

    def backward():
        for v in req.values():
            v.grad = None
        y = pool(req, rois, images.image_sizes)
        t0 = time.perf_counter()
        y.backward(gout)
        return (time.perf_counter() - t0) * 1e3
    res["roi_align bwd (1024 RoIs)"] = statistics.median(backward() for _ in range(REPS))

    K = sum(r.shape[0] for r in rois)
    logits = torch.randn(K, CLASSES)
    breg = torch.randn(K, CLASSES * 4) * 0.1

    def fr_loss():
        lz = logits.clone().requires_grad_()
        bz = breg.clone().requires_grad_()
        lc, lr = fastrcnn_loss(lz, bz, rlabels, rtargets)
        (lc + lr).backward()
    timed(res, "fastrcnn_loss fwd+bwd", fr_loss)
    heads.eval()
    n0 = rois[0].shape[0]
    timed(res, "detections (eval)",
          lambda: heads.postprocess_detections(logits, breg, list(rois), images.image_sizes))
    res["total"] = sum(res.values())
    return res


def c_side(binary, threads):
    out = subprocess.run([binary, str(threads)], capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        name, ms = line.rsplit(None, 1)
        res[name.strip()] = float(ms)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin", default="build/bench/detect_bench")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    c = c_side(args.bin, args.threads)
    t = torch_side()
    print(f"detection ops, one training iteration: {BATCH} images {IMG}x{IMG}, FPN, "
          f"{args.threads} threads (median of {REPS}, ms)")
    print(f"{'op':28s} {'lgen':>9s} {'torchvision':>12s} {'ratio':>7s}")
    for name in c:
        tv = t.get(name)
        ratio = f"{c[name] / tv:7.2f}" if tv else "      -"
        print(f"{name:28s} {c[name]:9.2f} {tv if tv is not None else float('nan'):12.2f} {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
