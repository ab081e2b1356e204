#!/usr/bin/env python3
"""init_from_ref.py OUTDIR — the PyTorch side of tests/e2e/init_from.sh.

Writes into OUTDIR:
  rand.pth  the state_dict of a randomly initialised torchvision resnet18
            (10 classes), its batch-norm affine parameters and running
            statistics randomised too, so that every tensor matters;
  img.png   a random 224x224 RGB image;
  ref.csv   torchvision's softmax probabilities for that image in eval mode,
            after the test transform of specs/resnet.lmod (x / 255, then
            ImageNet's mean and std).
"""
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(123)
        model.fc.weight.mul_(0.05)  # keep the probabilities away from 0 and 1: differences show
    torch.save(model.state_dict(), os.path.join(out, "rand.pth"))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    Image.fromarray(img).save(os.path.join(out, "img.png"))
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    model.eval()
    with torch.no_grad():
        p = torch.softmax(model(((x - mean) / std)[None]), dim=1)[0]
    with open(os.path.join(out, "ref.csv"), "w") as f:
        f.write(",".join("%.8f" % v for v in p.tolist()) + "\n")


if __name__ == "__main__":
    main()
