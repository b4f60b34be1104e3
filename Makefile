# affix — build, test, demo.
#
#   make              the library (build/libaffix.a), its f64 twin (build/f64/libaffix.a), build/affix
#   make test         builds and runs every test program; ends with "N passed, M failed"
#   make test SAN=1   the same under -fsanitize=address,undefined (use BUILD=... to keep apart)
#   make test OMP=0   without OpenMP
#   make WERROR=1     warnings are errors (CI)
#
# Requirements: a C11 compiler, libm, and cJSON (Debian libcjson-dev) for the JSON headers of
# safetensors/config files. OpenMP, OpenBLAS, nvcc and qemu-aarch64 are optional and probed.

CC      ?= cc
BUILD   ?= build
OMP     ?= auto
SAN     ?= 0
WERROR  ?= 0
OPT     ?= -O2

# ---- probes ---------------------------------------------------------------------------------
probe_cc     := $(shell printf 'int main(void){return 0;}' | $(CC) -x c -std=c11 - -o /dev/null 2>/dev/null && echo yes)
probe_omp    := $(shell printf '#include <omp.h>\nint main(void){return omp_get_max_threads()<1;}' | $(CC) -x c -fopenmp - -o /dev/null 2>/dev/null && echo yes)
probe_cjson  := $(shell printf '#include <cjson/cJSON.h>\nint main(void){cJSON_Delete(cJSON_Parse("1"));return 0;}' | $(CC) -x c - -lcjson -o /dev/null 2>/dev/null && echo yes)
probe_blas   := $(shell test -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so -o -e /usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so && echo yes)
probe_nvcc   := $(shell command -v nvcc >/dev/null 2>&1 && echo yes)
probe_qemu   := $(shell command -v qemu-aarch64 >/dev/null 2>&1 && echo yes)

ifeq ($(OMP),auto)
  OMP := $(if $(probe_omp),1,0)
endif

mark = $(if $(1),✓,✗)
ifeq ($(MAKELEVEL),0)
ifneq ($(filter clean,$(MAKECMDGOALS)),clean)
$(info affix toolchain: $(call mark,$(probe_cc)) $(CC) (C11)   $(call mark,$(probe_cjson)) cJSON   $(call mark,$(probe_omp)) OpenMP$(if $(filter 0,$(OMP)), (off))   $(call mark,$(probe_blas)) OpenBLAS-openmp (unused yet)   $(call mark,$(probe_nvcc)) nvcc (unused yet)   $(call mark,$(probe_qemu)) qemu-aarch64)
endif
endif
ifneq ($(probe_cc),yes)
  $(error $(CC) cannot compile C11; install a C compiler (apt-get install -y build-essential))
endif
ifneq ($(probe_cjson),yes)
  $(error cJSON not found: apt-get install -y libcjson-dev (the JSON library used for safetensors and config.json headers))
endif

# ---- flags ----------------------------------------------------------------------------------
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wno-unknown-pragmas
CFLAGS  := -std=c11 $(OPT) -g $(WARN) -Iref/core -Iref/adapters -Iref/io -Itools
LDLIBS  := -lcjson -lm
ifeq ($(WERROR),1)
  CFLAGS += -Werror
endif
ifeq ($(OMP),1)
  CFLAGS += -fopenmp
  LDFLAGS += -fopenmp
endif
ifeq ($(SAN),1)
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
endif

# ---- sources --------------------------------------------------------------------------------
CORE_SRC := $(wildcard ref/core/*.c) $(wildcard ref/adapters/*.c)
IO_SRC   := $(wildcard ref/io/*.c)
LIB_SRC  := $(CORE_SRC) $(IO_SRC)
TEST_COMMON := tests/golden_check.c

OBJ32 := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
OBJ64 := $(LIB_SRC:%.c=$(BUILD)/f64/obj/%.o)

LIB32 := $(BUILD)/libaffix.a
LIB64 := $(BUILD)/f64/libaffix.a

TESTS32 := $(BUILD)/test_core $(BUILD)/test_methods $(BUILD)/test_decode $(BUILD)/test_golden $(BUILD)/test_io $(BUILD)/test_params
TESTS64 := $(BUILD)/f64/test_core $(BUILD)/f64/test_methods $(BUILD)/f64/test_decode $(BUILD)/f64/test_golden $(BUILD)/f64/test_gradcheck

.PHONY: all test clean demo
.SECONDARY: # keep object files: make test ends with the test summary, and rebuilds are incremental
all: $(LIB32) $(LIB64) $(BUILD)/affix

$(BUILD)/obj/%.o: %.c $(wildcard ref/core/*.h ref/adapters/*.h ref/io/*.h tests/*.h tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/f64/obj/%.o: %.c $(wildcard ref/core/*.h ref/adapters/*.h ref/io/*.h tests/*.h tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DAFFIX_F64 -c $< -o $@

$(LIB32): $(OBJ32)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LIB64): $(OBJ64)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

TOOLS_SRC := $(wildcard tools/*.c)
$(BUILD)/affix: $(TOOLS_SRC:%.c=$(BUILD)/obj/%.o) $(LIB32)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/test_%: $(BUILD)/obj/tests/test_%.o $(BUILD)/obj/tests/golden_check.o $(LIB32)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/f64/test_%: $(BUILD)/f64/obj/tests/test_%.o $(BUILD)/f64/obj/tests/golden_check.o $(LIB64)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

test: $(TESTS32) $(TESTS64) $(BUILD)/affix
	@sh tests/run.sh $(TESTS32) $(TESTS64)

clean:
	rm -rf $(BUILD)
