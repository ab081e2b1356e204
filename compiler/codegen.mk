# compiler/codegen.mk — the code generator's sources: IR, autodiff, memory
# plan and C emission (owned by the code generation work; compiler.mk is the
# front end's).
LGEN_SRCS += compiler/ir.c compiler/autodiff.c compiler/plan.c compiler/emit.c compiler/emit_c.c \
             compiler/emit_tables.c compiler/emit_cuda.c compiler/emit_cuda_detect.c

# lgen records its source tree, so generated Makefiles find the runtime
# headers and liblgen.a when lgen runs from build/ (see compiler/emit.c).
$(BUILD)/obj/compiler/emit.o: ALL_CFLAGS += -DLGEN_SRCDIR='"$(CURDIR)"' \
    -DLGEN_BUILDDIR='"$(abspath $(BUILD))"' \
    -DLGEN_RUNTIME_LIBS='"$(RUNTIME_LIBS)"'
