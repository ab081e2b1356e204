# tests/detect.mk: the detection ops' tests (fixtures from torchvision in
# tests/fixtures/detect/), and tools/vocgen, the generator of the small
# VOC-layout data set (build/vocgen), with its test.
CHECK_PROGS += $(BUILD)/tests/check_detect $(BUILD)/tests/check_detect_vocgen

VOCGEN := $(BUILD)/vocgen

$(VOCGEN): tools/vocgen/vocgen.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LDFLAGS) -larchive -ljpeg -lcrypto -lm

# The vocgen test runs the program.
$(BUILD)/tests/check_detect_vocgen: $(VOCGEN)
