# compiler/: the lgen front end (lexer, parser, sema, shapes, fmt, graph,
# summary) and, from the code-generation part, ir/autodiff/plan/emit.
# Generated parser and lexer go to $(BUILD)/gen and are never committed.

FRONT_SRCS := compiler/arena.c compiler/diag.c compiler/ast.c
LGEN_SRCS += $(FRONT_SRCS) compiler/main.c
