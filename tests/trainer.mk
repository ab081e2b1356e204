# tests/trainer.mk — the trainer runtime's tests: a Check suite driving
# lg_main with a hand-written model (tests/trainer/fake_model.c), the same
# model as a program for the script tests, and the safetensors interop test.
TRAINER_TEST_SRCS := tests/trainer/fake_model.c
CHECK_PROGS   += $(BUILD)/tests/check_trainer
CHECK_SCRIPTS += tests/trainer/interop.sh

$(BUILD)/tests/check_trainer: tests/check_trainer.c $(TRAINER_TEST_SRCS) tests/trainer/capture.c tests/trainer/capture.h tests/trainer/fake_model.h \
                              $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/trainer -o $@ tests/check_trainer.c $(TRAINER_TEST_SRCS) tests/trainer/capture.c \
	    $(BUILD)/liblgen.a $(LDFLAGS) $(CHECK_LIBS) $(RUNTIME_LIBS)

$(BUILD)/tests/trainer_fake: tests/trainer/fake_main.c $(TRAINER_TEST_SRCS) tests/trainer/fake_model.h \
                             $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/trainer -o $@ tests/trainer/fake_main.c $(TRAINER_TEST_SRCS) \
	    $(BUILD)/liblgen.a $(LDFLAGS) $(RUNTIME_LIBS)

# The script tests run the fake trainer program.
check: $(BUILD)/tests/trainer_fake
