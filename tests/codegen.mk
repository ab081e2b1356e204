# tests/codegen.mk — code generation tests: IR/autodiff/plan unit tests and
# the end-to-end scripts (compile a spec, build the trainer, train, compare).
CHECK_PROGS += $(BUILD)/tests/check_codegen_ir
CHECK_PROGS += $(BUILD)/tests/check_codegen_emit
CHECK_SCRIPTS += tests/e2e/gradcheck.sh
CHECK_SCRIPTS += tests/e2e/emitted.sh tests/e2e/lenet.sh
