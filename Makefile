# ds4 build. `make` builds every binary for the CPU, plus the CUDA backend when
# nvcc is found (`make cuda` insists on it). `make test` builds and runs all
# tests; `make asan-test` does the same under ASan+UBSan in build-asan/.
#
# Sources are picked up by wildcard: every src/<module>/**.c goes into one
# static library, every src/bin/NAME.c becomes the binary ./NAME, and every
# tests/unit/test_*.c becomes one test executable. Adding a file needs no edit
# here.

BUILD   ?= build
CC      ?= cc
NVCC    ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
OPT     ?= -O2
# Strict IEEE: the CPU backend is the bit-exact reference (design.md).
CFLAGS_STRICT = -fno-fast-math -ffp-contract=off -fno-math-errno
WARN    = -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g $(CFLAGS_STRICT) $(WARN) -pthread -Isrc -MMD -MP
LDLIBS  += -lmicrohttpd -ljansson -lpcre2-8 -lcurl -lxxhash -ledit -lm -lpthread

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC  := $(shell find src -name '*.c' ! -path 'src/bin/*' | sort)
BIN_SRC  := $(sort $(wildcard src/bin/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
CU_SRC   := $(shell find src -name '*.cu' 2>/dev/null | sort)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
BIN_NAMES:= $(notdir $(BIN_SRC:.c=))
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# Binaries land in the repository root for the default build (the handbook runs
# ./ds4-server), inside the build dir otherwise.
ifeq ($(BUILD),build)
BINDIR := .
else
BINDIR := $(BUILD)/bin
endif
BINS := $(BIN_NAMES:%=$(BINDIR)/%)

# CUDA: compiled when nvcc exists (or CUDA=1), skipped with CUDA=0.
ifeq ($(CUDA),)
CUDA := $(if $(and $(NVCC),$(CU_SRC)),1,0)
endif
ifeq ($(CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CU_ARCHS  ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
             -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_120,code=sm_120
NVFLAGS   ?= -O3 -std=c++17 $(CU_ARCHS) -Xcompiler -Wall,-Wextra,-Werror -Isrc --fmad=false
CU_OBJ    := $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
CFLAGS    += -DDS4_HAVE_CUDA=1
LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas -lstdc++
else
CU_OBJ    :=
endif

.PHONY: all test asan-test cuda clean deps fuzz
all: $(BINS) $(TEST_BIN)

cuda:
	@if [ -z "$(NVCC)" ]; then echo "make cuda: nvcc not found. Install the CUDA toolkit (Debian: nvidia-cuda-toolkit) or put nvcc on PATH." >&2; exit 1; fi
	$(MAKE) CUDA=1 all

# Short lines by default (V=1 shows full commands).
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-5s %s\n' $(1) $(2)
endif

$(BUILD)/libds4.a: $(LIB_OBJ) $(CU_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(call say,NVCC,$<)
	$(Q)$(NVCC) $(NVFLAGS) -c $< -o $@

$(BINDIR)/%: $(BUILD)/obj/src/bin/%.o $(BUILD)/libds4.a
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $< $(BUILD)/libds4.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libds4.a
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $< $(BUILD)/libds4.a $(LDLIBS)

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c tests/harness.h
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -Itests -c $< -o $@

test: all
	@tests/run.sh $(BUILD)

asan-test:
	$(MAKE) BUILD=build-asan SAN=1 CUDA=0 OPT=-O1 all
	@DS4_TEST_QUICK=1 tests/run.sh build-asan

# libFuzzer targets (clang): tests/fuzz/fuzz_*.c, each run for FUZZ_SECONDS.
# The library is compiled once with clang (fuzzer-no-link instrumentation) and
# every target links against it.
FUZZ_SECONDS ?= 20
FUZZ_SRC ?= $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_SRC ?= $(LIB_SRC)
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=fuzzer-no-link,address,undefined
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,FUZZCC,$<)
	$(Q)clang $(FUZZ_CFLAGS) -c $< -o $@
build-fuzz/libfuzz.a: $(FUZZ_LIB_SRC:%.c=build-fuzz/obj/%.o)
	$(Q)rm -f $@ && ar rcs $@ $^
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libfuzz.a
	$(call say,LINK,$@)
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $< build-fuzz/libfuzz.a -o $@ $(LDLIBS)
fuzz: $(FUZZ_BINS)
	@for n in $(notdir $(FUZZ_BINS)); do \
	  mkdir -p build-fuzz/corpus-$$n; \
	  seeds=tests/fuzz/seeds/$$n; [ -d $$seeds ] || seeds=; \
	  ./build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=0 build-fuzz/corpus-$$n $$seeds >build-fuzz/$$n.log 2>&1 \
	    || { tail -n 40 build-fuzz/$$n.log; echo "fuzz target $$n FAILED"; exit 1; }; \
	  echo "fuzz target $$n: no crash in $(FUZZ_SECONDS)s"; \
	done

deps:
	scripts/install-deps.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz $(addprefix ./,$(BIN_NAMES))

-include $(LIB_OBJ:.o=.d) $(TEST_SRC:tests/unit/%.c=$(BUILD)/obj/tests/unit/%.d) $(BIN_SRC:%.c=$(BUILD)/obj/%.d)

# Micro-benchmarks: bench/NAME.c -> $(BUILD)/bench/NAME, linked with libds4.a.
# `make bench` only builds them; run e.g. build/bench/matvec (see bench/RESULTS.md).
BENCH_SRC := $(sort $(wildcard bench/*.c))
.PHONY: bench
bench: $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: bench/%.c $(BUILD)/libds4.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -pthread -o $@ $< $(BUILD)/libds4.a $(LDLIBS)

# The handbook's frontends (Codex CLI, Claude Code, OpenClaw, pi) driven headless
# against ds4-server; installs the pinned clients from npm. Not part of `make test`.
.PHONY: test-clients
test-clients: all
	@tests/clients/run.sh $(BUILD)

# CUPTI kernel profiler for replayed CUDA graphs (bench/kprof/kprof.c), loaded
# through CUDA_INJECTION64_PATH; built with the CUDA backend when CUPTI's
# header and library are installed (Debian: libcupti-dev).
ifeq ($(CUDA),1)
KPROF := $(if $(and $(wildcard $(CUDA_HOME)/include/cupti.h),$(wildcard $(CUDA_HOME)/lib*/libcupti.so)),$(BUILD)/lib/libds4kprof.so)
all: $(KPROF)
$(BUILD)/lib/libds4kprof.so: bench/kprof/kprof.c
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)
	$(Q)$(CC) -std=c11 -O2 $(WARN) -shared -fPIC -I$(CUDA_HOME)/include -o $@ $< \
	    -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib -lcupti -lstdc++
endif
