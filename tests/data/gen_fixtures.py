#!/usr/bin/env python3
"""Writes tests/fixtures/data/transforms.txt: torch/torchvision reference
outputs for the deterministic transforms of runtime/data/transform.c.

Run by hand (needs torch + torchvision); `make check` only reads the output.
The input is a 3x5x7 image with x[c, y, x] = ((c*35 + y*7 + x) * 37 % 255) / 255.
Each block is "name C H W" followed by C*H*W floats.
"""
import os
import torch
import torchvision.transforms.functional as F

def image():
    x = torch.zeros(3, 5, 7)
    for c in range(3):
        for y in range(5):
            for xx in range(7):
                x[c, y, xx] = ((c * 35 + y * 7 + xx) * 37 % 255) / 255.0
    return x

def main():
    x = image()
    out = []
    def add(name, t):
        t = t.contiguous()
        out.append(f"{name} {t.shape[0]} {t.shape[1]} {t.shape[2]}")
        out.append(" ".join(f"{v:.9g}" for v in t.flatten().tolist()))
    add("input", x)
    r = torch.nn.functional.interpolate(x[None], size=(3, 4), mode="bilinear",
                                        align_corners=False, antialias=False)[0]
    add("resize_3_4", r)
    r = torch.nn.functional.interpolate(x[None], size=(9, 11), mode="bilinear",
                                        align_corners=False, antialias=False)[0]
    add("resize_9_11", r)
    add("resize_aa_3_4", F.resize(x, [3, 4], antialias=True))
    add("resize_aa_9_11", F.resize(x, [9, 11], antialias=True))
    add("resize_aa_2_9", F.resize(x, [2, 9], antialias=True))
    add("center_crop_3_3", F.center_crop(x, [3, 3]))
    add("grayscale_1", F.rgb_to_grayscale(x, 1))
    add("brightness_1.3", F.adjust_brightness(x, 1.3))
    add("contrast_0.5", F.adjust_contrast(x, 0.5))
    add("saturation_1.5", F.adjust_saturation(x, 1.5))
    add("hue_0.1", F.adjust_hue(x, 0.1))
    add("hue_-0.3", F.adjust_hue(x, -0.3))
    add("normalize", F.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
    # A JPEG (4:2:0, quality 85) and a PNG with PIL's decoding of them, as
    # torchvision's ImageFolder/VOC loaders see them (PIL -> ToTensor).
    import io
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:20, 0:28]
    arr = np.stack([(xx * 9 + yy * 3) % 256, (yy * 11) % 256, (xx * yy) % 256], -1)
    arr = np.clip(arr + rng.integers(-20, 21, arr.shape), 0, 255).astype(np.uint8)
    fixdir = os.path.join(os.path.dirname(__file__), "..", "fixtures", "data")
    Image.fromarray(arr).save(os.path.join(fixdir, "pil.jpg"), quality=85, subsampling=2)
    Image.fromarray(arr).save(os.path.join(fixdir, "pil.png"))
    for name in ("pil.jpg", "pil.png"):
        img = Image.open(os.path.join(fixdir, name)).convert("RGB")
        t = F.to_tensor(img)
        add(name, t)
        g = F.to_tensor(Image.open(os.path.join(fixdir, name)).convert("L"))
        add(name + ".L", g)
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "data", "transforms.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")

if __name__ == "__main__":
    main()
