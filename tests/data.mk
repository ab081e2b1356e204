# tests/data.mk: the data pipeline's tests (issue 5): Check suites for the
# loader path, the formats/transforms/extraction and the HTTP downloads, and a
# script that runs a generated trainer with --data_dir and --mirror.
CHECK_PROGS += $(BUILD)/tests/check_data $(BUILD)/tests/check_data_formats \
               $(BUILD)/tests/check_data_net
CHECK_SCRIPTS += tests/data/trainer_mirror.sh
# The VOC end-to-end test runs tools/vocgen (built by tests/detect.mk).
$(BUILD)/tests/check_data_net: $(BUILD)/vocgen
