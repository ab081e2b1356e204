# compiler/: the lgen front end (lexer, parser, sema, shapes, fmt, graph,
# summary) and, from the code-generation part, ir/autodiff/plan/emit.
# Generated parser and lexer go to $(BUILD)/gen and are never committed.

FRONT_SRCS := compiler/arena.c compiler/diag.c compiler/ast.c compiler/parse.c compiler/front.c \
              compiler/optab.c compiler/eval.c compiler/sema.c compiler/shapes.c compiler/fmt.c \
              compiler/graph.c compiler/summary.c compiler/strmap.c compiler/opsdoc.c
LGEN_SRCS += $(FRONT_SRCS) compiler/main.c

BISON ?= bison
FLEX  ?= flex

LGEN_GEN_OBJS += $(BUILD)/obj/gen/parser.o $(BUILD)/obj/gen/lexer.o

$(BUILD)/gen/parser.h: $(BUILD)/gen/parser.c ;
$(BUILD)/gen/parser.c: compiler/parser.y
	@mkdir -p $(BUILD)/gen
	$(BISON) -Wall -Werror --defines=$(BUILD)/gen/parser.h -o $(BUILD)/gen/parser.c $<

$(BUILD)/gen/lexer.c: compiler/lexer.l
	@mkdir -p $(BUILD)/gen
	$(FLEX) -o $@ $<

# Generated code gets the same flags minus the warnings flex/bison output trips.
GEN_CFLAGS = $(filter-out -Wmissing-prototypes -Wshadow,$(ALL_CFLAGS)) -Wno-unused-function -Wno-sign-compare -Icompiler

$(BUILD)/obj/gen/parser.o: $(BUILD)/gen/parser.c $(BUILD)/gen/parser.h
	@mkdir -p $(dir $@)
	$(CC) $(GEN_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/gen/lexer.o: $(BUILD)/gen/lexer.c $(BUILD)/gen/parser.h
	@mkdir -p $(dir $@)
	$(CC) $(GEN_CFLAGS) -MMD -MP -c $< -o $@

# Compiler sources that include the generated header wait for it.
$(BUILD)/obj/compiler/parse.o: $(BUILD)/gen/parser.h

-include $(BUILD)/obj/gen/parser.d $(BUILD)/obj/gen/lexer.d

# parser.h (in $(BUILD)/gen) includes ast.h and lex.h from compiler/.
$(BUILD)/obj/compiler/%.o: ALL_CFLAGS += -Icompiler
