# tests/codegen.mk — code generation tests: IR/autodiff/plan unit tests and
# the end-to-end scripts (compile a spec, build the trainer, train, compare).
CHECK_PROGS += $(BUILD)/tests/check_codegen_ir
CHECK_PROGS += $(BUILD)/tests/check_codegen_emit
CHECK_SCRIPTS += tests/e2e/gradcheck.sh
CHECK_SCRIPTS += tests/e2e/emitted.sh tests/e2e/lenet.sh tests/e2e/mlp.sh tests/e2e/install.sh

# `make demo`: the README's first command on a fresh Debian machine.
DEMO_DIR := $(BUILD)/demo
demo:
	scripts/install-deps.sh
	$(MAKE) all
	$(LGEN) specs/lenet.lmod -o $(DEMO_DIR)/lenet
	$(MAKE) -C $(DEMO_DIR)/lenet
	cd $(DEMO_DIR) && ./lenet/lenet fit --max_epochs 2 --enable_progress_bar true
	cd $(DEMO_DIR) && ./lenet/lenet test --ckpt_path last
