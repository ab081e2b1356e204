# tests/data.mk: the data pipeline's Check suites (issue 5).
CHECK_PROGS += build/tests/check_data
CHECK_PROGS += build/tests/check_data_formats
CHECK_PROGS += build/tests/check_data_net
# The VOC end-to-end test runs tools/vocgen (built by tests/detect.mk).
$(BUILD)/tests/check_data_net: $(BUILD)/vocgen
