# compiler/codegen.mk — the code generator's sources: IR, autodiff, memory
# plan and C emission (owned by the code generation work; compiler.mk is the
# front end's).
LGEN_SRCS += compiler/ir.c compiler/autodiff.c compiler/plan.c
