# tests/frontend.mk — the front end's tests (issue 2): Check unit tests,
# golden diagnostics (tests/diag), command-line and fmt tests, large and
# deeply nested inputs, and the fuzz target.
CHECK_PROGS   += $(BUILD)/tests/check_frontend
CHECK_SCRIPTS += tests/diag/run.sh tests/frontend/cli.sh tests/frontend/big.sh tests/frontend/opsdoc.sh
CHECK_SCRIPTS += tests/fuzz/quick.sh

# The fuzz target: the front end built with clang's libFuzzer, ASan and UBSan.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_SRCS    := $(FRONT_SRCS) $(BUILD)/gen/parser.c $(BUILD)/gen/lexer.c tests/fuzz/fuzz_frontend.c
$(BUILD)/fuzz/fuzz_frontend: $(FUZZ_SRCS) $(BUILD)/gen/parser.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -Iruntime/include -Icompiler -I$(BUILD)/gen -Wno-unused-function -o $@ $(FUZZ_SRCS) -lm

fuzz: $(BUILD)/fuzz/fuzz_frontend
	FUZZ_SECONDS=$(FUZZ_SECONDS) BUILD=$(BUILD) tests/fuzz/run.sh
