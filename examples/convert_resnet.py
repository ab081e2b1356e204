#!/usr/bin/env python3
"""convert_resnet.py — torchvision's ImageNet ResNet weights as a safetensors
file that a generated lgen trainer loads with --init_from.

lgen's ResNets (specs/resnet.lmod, and the backbone of specs/faster_rcnn.lmod)
use torchvision's parameter names, so the conversion keeps every name as it
is (conv1.weight, bn1.running_mean, layer1.0.conv1.weight, ...,
layer2.0.downsample.1.num_batches_tracked), writes float32 tensors as F32 and
the batch-norm counters as I64, and drops the classifier (fc.weight,
fc.bias) unless --keep-fc is given: ImageNet's 1000-class head fits no VOC or
CIFAR model. The trainer adds a prefix at load time:

    ./faster_rcnn fit --init_from resnet50.safetensors --init_prefix backbone.body.

Sources (one of):
    --weights NAME   torchvision downloads them (needs the network once;
                     DEFAULT, IMAGENET1K_V1 or IMAGENET1K_V2)
    --pth FILE       a state_dict saved with torch.save (torchvision's
                     resnet50-0676ba61.pth, or your own fine-tuned model;
                     a checkpoint dict with "state_dict"/"model" and
                     DataParallel's "module." prefix are accepted)
    --random SEED    a randomly initialised model (tests, no download)

Examples:
    python3 examples/convert_resnet.py --arch resnet50 --weights DEFAULT -o resnet50.safetensors
    python3 examples/convert_resnet.py --arch resnet18 --pth resnet18-f37072fd.pth -o resnet18.safetensors

Needs torch, torchvision and safetensors (pip install torch torchvision safetensors).
"""
import argparse
import sys

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def fail(msg):
    sys.stderr.write("convert_resnet.py: error: %s\n" % msg)
    sys.exit(1)


def load_state_dict(args, torch, torchvision):
    build = getattr(torchvision.models, args.arch)
    if args.pth:
        try:
            sd = torch.load(args.pth, map_location="cpu", weights_only=True)
        except Exception as e:  # a pickle that is not a plain state_dict, or not a .pth at all
            fail("cannot read '%s' as a state_dict: %s" % (args.pth, e))
        for key in ("state_dict", "model"):
            if isinstance(sd, dict) and isinstance(sd.get(key), dict):
                sd = sd[key]
        if not isinstance(sd, dict):
            fail("'%s' holds a %s, not a state_dict" % (args.pth, type(sd).__name__))
        return {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}, args.pth
    if args.random is not None:
        torch.manual_seed(args.random)
        model = build(weights=None, num_classes=args.num_classes)
        return model.state_dict(), "random init (seed %d)" % args.random
    enum = getattr(torchvision.models, {"resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights",
                                        "resnet50": "ResNet50_Weights", "resnet101": "ResNet101_Weights",
                                        "resnet152": "ResNet152_Weights"}[args.arch])
    try:
        weights = enum[args.weights]
    except KeyError:
        fail("--weights %s: %s has %s" % (args.weights, enum.__name__,
                                         ", ".join(["DEFAULT"] + [w.name for w in enum])))
    model = build(weights=weights)
    return model.state_dict(), "torchvision %s.%s" % (enum.__name__, weights.name)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=ARCHS, default="resnet50", help="the ResNet (default resnet50)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", metavar="NAME", help="torchvision weights to download: DEFAULT, IMAGENET1K_V1, ...")
    src.add_argument("--pth", metavar="FILE", help="a state_dict file saved with torch.save")
    src.add_argument("--random", metavar="SEED", type=int, help="random initialisation (no download)")
    p.add_argument("--num-classes", type=int, default=1000, help="classes of the --random model's fc (default 1000)")
    p.add_argument("--keep-fc", action="store_true", help="keep the classifier fc.weight/fc.bias")
    p.add_argument("-o", "--output", required=True, help="the safetensors file to write")
    args = p.parse_args()
    try:
        import torch
        import torchvision
        from safetensors.torch import save_file
    except ImportError as e:
        fail("%s (pip install torch torchvision safetensors)" % e)

    sd, source = load_state_dict(args, torch, torchvision)
    # The names must be exactly torchvision's for this arch: a typo or another
    # model's file is caught here rather than as "not in the file" at load time.
    expect = torchvision.models.__dict__[args.arch](weights=None).state_dict()
    unknown = sorted(set(sd) - set(expect))
    missing = sorted(set(expect) - set(sd))
    if unknown or missing:
        parts = ["%d %s missing (%s)" % (len(missing), "is" if len(missing) == 1 else "are", ", ".join(missing[:4]))]
        parts += ["%d %s unknown (%s)" % (len(unknown), "is" if len(unknown) == 1 else "are", ", ".join(unknown[:4]))]
        fail("'%s' is not a torchvision %s state_dict: of its tensor names, %s" % (
            source, args.arch, " and ".join(p for p, n in zip(parts, (missing, unknown)) if n)))
    out = {}
    for name, t in sd.items():
        if name.startswith("fc.") and not args.keep_fc:
            continue
        if name.endswith("num_batches_tracked"):
            t = t.to(torch.int64)
        elif t.dtype != torch.float32:
            t = t.to(torch.float32)  # half-precision exports: lgen trains in float32
        if t.shape != expect[name].shape and not name.startswith("fc."):
            fail("%s has shape %s, torchvision's %s has %s" % (name, list(t.shape), args.arch,
                                                                list(expect[name].shape)))
        out[name] = t.detach().contiguous()
    save_file(out, args.output, metadata={"source": source, "arch": args.arch, "converter": "lgen examples/convert_resnet.py"})
    n = sum(t.numel() for t in out.values())
    print("wrote %s: %d tensors, %.1fM values, from %s%s" % (
        args.output, len(out), n / 1e6, source, "" if args.keep_fc else " (fc dropped)"))


if __name__ == "__main__":
    main()
