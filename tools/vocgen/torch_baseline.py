#!/usr/bin/env python3
"""torch_baseline.py — how hard is vocgen's data set? A torchvision reference.

Trains torchvision's Faster R-CNN from scratch (ResNet-18 trunk, one feature
map of stride 16 or an FPN, BatchNorm not frozen, anchors sized for small
images) on a vocgen data set on the CPU for a fixed time, then reports VOC
mAP@0.5 on the val split with tests/fixtures/voc_eval_ref.py's devkit
evaluation. It tells the spec author which settings reach the issue's mAP
0.5 within a CI-sized budget; lgen's trainer is measured against the same
numbers. Needs torch and torchvision; not part of `make check`.

    build/vocgen --seed 1 --images 400 --size 128 --dir /tmp/voc --out /tmp/voc.tar
    python3 tools/vocgen/torch_baseline.py /tmp/voc/VOCdevkit/VOC2007 --minutes 4

Measured on the 2-core development machine while it was busy (load 5-10,
this at nice 5): `vocgen --seed 2 --images 300 --size 128 --objects 2`, the
stride-16 ResNet-18 variant, batch 4, lr 0.02 with 100 warm-up steps: val
mAP@0.5 0.26 after 74 iterations, 0.62 after 111, 0.70 after 123 (565 s
wall clock here; far less on idle cores).
"""
import argparse
import os
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import torch
import torchvision
from torchvision.io import read_image
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "fixtures"))
from voc_eval_ref import voc_eval  # noqa: E402

CLASSES = ["circle", "square", "triangle", "diamond", "cross"]


def load(root, split):
    ids = open(os.path.join(root, "ImageSets", "Main", split + ".txt")).read().split()
    data = []
    for i in ids:
        img = read_image(os.path.join(root, "JPEGImages", i + ".jpg")).float() / 255
        objs = []
        for o in ET.parse(os.path.join(root, "Annotations", i + ".xml")).findall("object"):
            b = o.find("bndbox")
            box = [float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
            box[0] -= 1
            box[1] -= 1
            objs.append((CLASSES.index(o.find("name").text) + 1, int(o.find("difficult").text), box))
        data.append((img, objs))
    return data


def model(size, fpn):
    trunk = torchvision.models.resnet18(weights=None)
    if fpn:
        from torchvision.models.detection.backbone_utils import BackboneWithFPN
        body = BackboneWithFPN(trunk, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                               [64, 128, 256, 512], 128)
        anchors = AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 5)
        pool = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
        backbone = body
    else:
        backbone = torch.nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool,
                                       trunk.layer1, trunk.layer2, trunk.layer3)
        backbone.out_channels = 256
        anchors = AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),))
        pool = MultiScaleRoIAlign(["0"], 7, 2)
    return FasterRCNN(backbone, num_classes=len(CLASSES) + 1, rpn_anchor_generator=anchors,
                      box_roi_pool=pool, min_size=size, max_size=size,
                      image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25],
                      rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
                      rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150,
                      box_batch_size_per_image=128)


def evaluate(net, val):
    net.eval()
    dets = {c: [] for c in range(1, len(CLASSES) + 1)}
    gts = {}
    with torch.no_grad():
        for k in range(0, len(val), 8):
            chunk = val[k:k + 8]
            outs = net([img for img, _ in chunk])
            for j, ((_, objs), out) in enumerate(zip(chunk, outs)):
                image = k + j
                gts[image] = [(lbl, diff, np.array(box)) for lbl, diff, box in objs]
                for box, score, lbl in zip(out["boxes"], out["scores"], out["labels"]):
                    dets[int(lbl)].append((image, float(score), box.numpy().astype(np.float64)))
    aps = [voc_eval(dets[c], gts, c, 0.5, False, 0.0) for c in dets]
    net.train()
    return float(np.nanmean(aps)), aps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", help="VOCdevkit/VOC2007 of a vocgen data set")
    ap.add_argument("--minutes", type=float, default=4)
    ap.add_argument("--batch_size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--fpn", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    train, val = load(args.root, "train"), load(args.root, "val")
    size = train[0][0].shape[-1]
    net = model(size, args.fpn)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
    t0, it, epoch = time.time(), 0, 0
    net.train()
    while time.time() - t0 < args.minutes * 60:
        order = torch.randperm(len(train))
        for k in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = [train[i] for i in order[k:k + args.batch_size]]
            imgs, targets = [], []
            for img, objs in batch:
                boxes = torch.tensor([o[2] for o in objs], dtype=torch.float32).reshape(-1, 4)
                labels = torch.tensor([o[0] for o in objs], dtype=torch.int64)
                if torch.rand(()) < 0.5:
                    img = img.flip(-1)
                    boxes = torch.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0],
                                         boxes[:, 3]], 1)
                imgs.append(img)
                targets.append({"boxes": boxes, "labels": labels})
            warm = min(1.0, (it + 1) / 100)
            for g in opt.param_groups:
                g["lr"] = args.lr * warm
            losses = net(imgs, targets)
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            it += 1
            if it % 50 == 0:
                print(f"it {it} {time.time() - t0:.0f}s loss {loss.item():.3f} " +
                      " ".join(f"{k} {v.item():.3f}" for k, v in losses.items()), flush=True)
            if time.time() - t0 > args.minutes * 60:
                break
        epoch += 1
        m, _ = evaluate(net, val)
        print(f"epoch {epoch} it {it} {time.time() - t0:.0f}s val mAP@0.5 {m:.3f}", flush=True)
    m, aps = evaluate(net, val)
    print(f"final: {it} iterations in {time.time() - t0:.0f}s, val mAP@0.5 {m:.3f}, per class " +
          " ".join(f"{c} {a:.3f}" for c, a in zip(CLASSES, aps)))


if __name__ == "__main__":
    main()
