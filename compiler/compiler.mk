# compiler/: the lgen front end and code generator (filled in by the compiler work).
LGEN_SRCS += compiler/main.c
