# bench/detect_train.mk — `make bench-frcnn`: one Faster R-CNN training
# iteration (ResNet-50-FPN, 2 images of 320x320, random init), the generated
# trainer beside torchvision's fasterrcnn_resnet50_fpn, time and peak RSS
# (bench/detect_train.py; figures in bench/README.md). It takes minutes on 2
# cores, so it is not part of `make bench`. Without torch only lgen's side is
# measured; without a detector lgen can generate, only torchvision's.
.PHONY: bench-frcnn
bench-frcnn: $(LGEN) $(LIBLGEN) $(BUILD)/vocgen
	$(PYTHON) bench/detect_train.py --lgen $(LGEN) --vocgen $(BUILD)/vocgen --build $(BUILD)/bench/frcnn
