#!/bin/sh
# mlp.sh — lenet.sh's end-to-end checks on specs/mlp.lmod (dropout, Adam).
SPEC=specs/mlp.lmod exec tests/e2e/lenet.sh
