#!/bin/sh
# tests/fuzz/quick.sh — the brief fuzz run of make check (15 s).
exec tests/fuzz/run.sh 15
