# tests/init_from.mk — --init_from / --init_prefix (runtime/trainer/init_from.c)
# on the trainer tests' fake model, with safetensors files written by Python
# (tests/fixtures/gen_init_from.py, committed under tests/fixtures/init_from/),
# and examples/convert_resnet.py checked against a generated trainer.
CHECK_PROGS   += $(BUILD)/tests/check_init_from
CHECK_SCRIPTS += tests/e2e/init_from.sh

$(BUILD)/tests/check_init_from: tests/check_init_from.c tests/trainer/fake_model.c tests/trainer/fake_model.h tests/trainer/capture.c tests/trainer/capture.h \
                                $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/trainer -o $@ tests/check_init_from.c tests/trainer/fake_model.c tests/trainer/capture.c \
	    $(BUILD)/liblgen.a $(LDFLAGS) $(CHECK_LIBS) $(RUNTIME_LIBS)
