# tests/frontend.mk — the front end's tests (issue 2): Check unit tests,
# golden diagnostics (tests/diag), command-line and fmt tests, large and
# deeply nested inputs, and the fuzz target.
CHECK_PROGS   += $(BUILD)/tests/check_frontend
CHECK_SCRIPTS += tests/diag/run.sh tests/frontend/cli.sh tests/frontend/big.sh
