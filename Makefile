# aurora.h - build, test, benchmark.
#   make            library tests, tools and examples (CPU)
#   make test       every CPU test, plain and under ASan+UBSan; last line "N passed, N failed"
#   make demo       the end-to-end CPU fine-tuning demo (Aurora)
#   make demo-surya Surya's 1D and 2D heads on a synthetic Sun
#   make demo-weather  NetCDF files in, fine-tuning, a forecast as CF NetCDF with maps and WeatherBench2 scores out
#   make bench      CPU matrix-product GFLOP/s against OpenBLAS and the machine's peak
#   make bench-data    windows per second from a NetCDF series beside the small model's training step
#   make bench-memory  memory and time of training steps at the real architectures (BASE=rev: beside that commit)
#   make cuda       the CUDA build (compiles without a GPU); make test-cuda runs it
#                   (make test also runs the CUDA paths on the CPU through tests/cuda_emu.h)
#   make asan       only the sanitizer runs; make fuzz builds the libFuzzer targets
#   make deps       installs missing Debian packages (libcjson-dev, libstb-dev, libnetcdf-dev, libeccodes-dev, libyaml-dev, libzip-dev,
#                   the HDF5 filter plugins for compressed SDO files)
#   make headers    joins src/ into aurora.h, surya.h, lora.h, kernels.cuh (the library is
#                   written in src/; the headers are generated and committed). LINES=1 adds
#                   #line directives so errors point into src/ (do not commit those)

CC ?= cc
CXX ?= g++
NVCC ?= nvcc
CFLAGS ?= -O3 -march=native
STD = -std=c11
WARN = -Wall -Wextra
ifndef NO_OMP
OMP := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp)
endif
# AUR_NETCDF: weather NetCDF/Zarr files (AUR_GRIB: and GRIB, through ecCodes), and Surya's SDO data in the reference's layout (NetCDF through libnetcdf,
#             scalers YAML through libyaml)
# AUR_TORCH_CKPT: PyTorch's zip checkpoints (.ckpt, .pt) through libzip
BASE_FLAGS = $(STD) $(WARN) -ffp-contract=fast $(OMP) -DAUR_NETCDF -DAUR_GRIB -DAUR_TORCH_CKPT -I.
LIBS = -lcjson -lnetcdf -leccodes -lyaml -lzip -lm
# the sanitizer builds also fill freed tensor bytes with NaN, so a tensor read after its bytes went shows
ASAN = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DAUR_POISON_FREED
HEADERS = aurora.h surya.h lora.h kernels.cuh tests/aur_test.h tests/train_data.h examples/synth_weather.h

TESTS = test_grad test_ops test_autograd test_safetensors test_model test_optim test_aurora test_train test_surya test_surya_train test_threads
# the file readers' tests build only under ASan+UBSan: they check formats and errors, where the sanitizers matter and speed does not
ASAN_ONLY_TESTS = test_sdo test_ckpt test_weather test_forecast
# libFuzzer targets for the readers of untrusted input (make test runs each briefly from its seed corpus: tests/fuzz.sh)
FUZZERS = fuzz_safetensors fuzz_run_config fuzz_trainer_state fuzz_lora_config fuzz_sdo_tables fuzz_torch_pickle
FUZZ_BINS = $(addprefix build/fuzz/,$(FUZZERS))
TOOLS = build/aurora-inspect build/aurora-convert build/aurora-forecast build/aurora-train build/aurora-compare build/refcheck build/test_crash build/asan/aurora-train
EXAMPLES = build/finetune_tiny build/finetune_aurora build/finetune_surya_1d build/finetune_surya_2d
BINS = $(addprefix build/,$(TESTS)) $(addprefix build/asan/,$(TESTS) $(ASAN_ONLY_TESTS)) $(TOOLS) build/asan/refcheck $(EXAMPLES) build/tsan/test_threads \
       build/test_cuda_emu build/refcheck_cuda_emu build/bench_cuda_emu build/test_train_cuda_emu

.PHONY: all binaries headers test asan tsan demo demo-surya demo-weather bench bench-data bench-memory cuda test-cuda bench-cuda fuzz deps deps-bench deps-fuzz clean
# the binaries build in parallel (about 30 translation units of the whole header)
NPROC := $(shell nproc 2>/dev/null || echo 2)
all: deps deps-fuzz
	@$(MAKE) --no-print-directory -j$(NPROC) binaries
binaries: $(BINS) $(FUZZ_BINS)

build build/asan:
	@mkdir -p $@

# test_grad runs in double precision (finite differences need it)
build/test_grad: tests/test_grad.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) -DAUR_REAL_DOUBLE $< -o $@ $(LIBS)
build/asan/test_grad: tests/test_grad.c $(HEADERS) | build/asan
	$(CC) $(BASE_FLAGS) $(ASAN) -DAUR_REAL_DOUBLE $< -o $@ $(LIBS)
build/test_%: tests/test_%.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
build/asan/test_%: tests/test_%.c $(HEADERS) | build/asan
	$(CC) $(BASE_FLAGS) $(ASAN) $< -o $@ $(LIBS)
build/refcheck: tests/refcheck.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
build/asan/refcheck: tests/refcheck.c $(HEADERS) | build/asan
	$(CC) $(BASE_FLAGS) $(ASAN) $< -o $@ $(LIBS)
# the CUDA paths compiled by g++ and run on the CPU by tests/cuda_emu.h (no GPU needed)
# (the emulator is a test tool: the build injects it before the program's first line; the library never includes it)
EMU = -std=c++17 -x c++ -DAURORA_CUDA -include tests/cuda_emu.h $(WARN) $(OMP) -I.
build/test_cuda_emu: tests/test_cuda.cu tests/cuda_emu.h $(HEADERS) | build
	$(CXX) $(EMU) -O1 -g $< -o $@ $(LIBS)
build/refcheck_cuda_emu: tests/refcheck.c tests/cuda_emu.h $(HEADERS) | build
	$(CXX) $(EMU) -O1 -g $< -o $@ $(LIBS)
build/test_train_cuda_emu: tests/test_train.c tests/cuda_emu.h $(HEADERS) | build
	$(CXX) $(EMU) -O1 -g $< -o $@ $(LIBS)
# the GPU benchmark's program, checked on the CPU: build/bench_cuda_emu --tiny
build/bench_cuda_emu: bench/bench_cuda.cu tests/cuda_emu.h $(HEADERS) | build
	$(CXX) $(EMU) -O1 -g $< -o $@ $(LIBS)
build/aurora-inspect: tools/aurora_inspect.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
build/aurora-convert: tools/aurora_convert.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
build/aurora-forecast: tools/aurora_forecast.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
build/aurora-train: tools/aurora_train.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
build/aurora-compare: tools/aurora_compare.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
build/asan/aurora-train: tools/aurora_train.c $(HEADERS) | build/asan
	$(CC) $(BASE_FLAGS) $(ASAN) $< -o $@ $(LIBS)
# kill -9 at random points, then --resume (tests/test_crash.c runs the tool: build/test_crash build/asan/aurora-train)
build/test_crash: tests/test_crash.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
# ThreadSanitizer (gcc's libtsan comes with gcc): two trainers and concurrent presets, batch loads and errors.
# Without OpenMP: TSan cannot see libgomp's synchronisation and would report races inside every parallel loop.
TSAN = -O1 -g -fno-omit-frame-pointer -fsanitize=thread -Wno-unknown-pragmas
build/tsan:
	@mkdir -p $@
build/tsan/test_threads: tests/test_threads.c $(HEADERS) | build/tsan
	$(CC) $(STD) $(WARN) -ffp-contract=fast -I. $(TSAN) $< -o $@ $(LIBS)
tsan: deps build/tsan/test_threads
	TSAN_OPTIONS=halt_on_error=1 ./build/tsan/test_threads
build/finetune_tiny: examples/finetune_tiny.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
build/finetune_aurora: examples/finetune_aurora.c examples/synth_weather.h $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
build/finetune_surya_%: examples/finetune_surya_%.c examples/surya_demo.h $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)

headers:
	@bash tools/make_headers.sh $(if $(filter 1,$(LINES)),--lines)

test: all
	@bash tests/run.sh all

asan: all
	@bash tests/run.sh asan

demo: deps build/finetune_aurora
	./build/finetune_aurora demo-out

# weather files in, fine-tuning, a forecast as NetCDF with maps and scores out (the fixtures' small ERA5 files)
WX = tests/fixtures/weather/era5_cds_new
demo-weather: deps build/aurora-train build/aurora-forecast
	./build/aurora-train examples/configs/era5_finetune.json
	./build/aurora-forecast --config examples/configs/era5_finetune.json --weights demo-out-weather/run/checkpoint-000020/model.safetensors \
		--init $(WX)/surface.nc $(WX)/atmospheric.nc $(WX)/static.nc --steps 2 -o demo-out-weather/forecast.nc --maps 2t,z@500

demo-surya: deps build/finetune_surya_1d build/finetune_surya_2d
	./build/finetune_surya_1d demo-out-surya
	./build/finetune_surya_2d demo-out-surya
	@echo; cat demo-out-surya/flare_result.txt demo-out-surya/wind_result.txt demo-out-surya/ar_result.txt

# ---- benchmarks ----
build/bench_cpu: bench/bench_cpu.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) -DAUR_BENCH_OPENBLAS $< -o $@ $(LIBS) -lopenblas
bench: deps-bench build/bench_cpu
	./build/bench_cpu

# the weather loader: windows per second from a NetCDF series beside AuroraSmallPretrained's training step (128 x 256),
# then the windows at 0.25 degrees (the files go to build/bench_data: about 1.5 GB at 0.25 degrees)
build/bench_loader: bench/bench_loader.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
bench-data: deps build/bench_loader
	./build/bench_loader --step
	./build/bench_loader --grid 721 1440 --steps 6

# memory and time of training steps at the real architectures, beside PyTorch's figures;
# BASE=rev also runs the same program built against that commit's headers
build/bench_memory: bench/bench_memory.c $(HEADERS) | build
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< -o $@ $(LIBS)
bench-memory: deps build/bench_memory
ifdef BASE
	@mkdir -p build/base/bench
	@for h in aurora.h surya.h lora.h kernels.cuh; do git show $(BASE):$$h > build/base/$$h; done
	@cp bench/bench_memory.c build/base/bench/
	$(CC) $(BASE_FLAGS) $(CFLAGS) -DAUR_BENCH_BASE build/base/bench/bench_memory.c -o build/base/bench_memory $(LIBS)
	@echo "== $(BASE)"; ./build/base/bench_memory $(ARGS)
	@echo "== this tree"
endif
	./build/bench_memory $(ARGS)

# ---- CUDA ----
HAVE_NVCC := $(shell command -v $(NVCC) 2>/dev/null)
GPU_ARCH ?= $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d '.')
CUDA_ARCH = $(if $(GPU_ARCH),$(GPU_ARCH),90)
NVFLAGS = -std=c++17 -O2 -arch=sm_$(CUDA_ARCH) -DAURORA_CUDA -x cu -I. -Xcompiler -fopenmp,-Wall,-Wextra
CUDA_LIBS = -lcublas -lcjson -lm
ifeq ($(HAVE_NVCC),)
cuda test-cuda bench-cuda:
	@echo "nvcc not found, skipping CUDA"
else
build/test_cuda: tests/test_cuda.cu $(HEADERS) | build
	$(NVCC) $(NVFLAGS) $< -o $@ $(CUDA_LIBS)
build/refcheck_cuda: tests/refcheck.c $(HEADERS) | build
	$(NVCC) $(NVFLAGS) $< -o $@ $(CUDA_LIBS)
cuda: deps
	@$(MAKE) --no-print-directory -j$(NPROC) build/test_cuda build/refcheck_cuda build/bench_cuda
# every op GPU against CPU, and every fixture case on the GPU
test-cuda: cuda
	@bash tests/run.sh cuda
build/bench_cuda: bench/bench_cuda.cu $(HEADERS) | build
	$(NVCC) $(NVFLAGS) $< -o $@ $(CUDA_LIBS)
bench-cuda: deps build/bench_cuda
	./build/bench_cuda
endif

# ---- fuzzing (clang + libFuzzer) ----
build/fuzz:
	@mkdir -p $@
build/fuzz/%: tests/%.c $(HEADERS) | build/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DAUR_NETCDF -DAUR_GRIB -DAUR_TORCH_CKPT -I. $< -o $@ $(LIBS)
fuzz: deps deps-fuzz
	@$(MAKE) --no-print-directory -j$(NPROC) $(FUZZ_BINS)
	@echo "run one longer: ./build/fuzz/fuzz_run_config -max_total_time=600 build/fuzz/corpus_fuzz_run_config tests/fuzz_corpus/run_config"

# ---- dependencies ----
deps:
	@bash tests/deps.sh libcjson-dev:/usr/include/cjson/cJSON.h libstb-dev:/usr/include/stb/stb_image_write.h \
		libnetcdf-dev:/usr/include/netcdf.h 'libeccodes-dev:/usr/include/*/eccodes.h' libyaml-dev:/usr/include/yaml.h libzip-dev:/usr/include/zip.h \
		'hdf5-filter-plugin:/usr/lib/*/hdf5/serial/plugins/libh5lz4.so' \
		'hdf5-filter-plugin-blosc-serial:/usr/lib/*/hdf5/serial/plugins/libH5Zblosc.so'
deps-fuzz:
	@bash tests/deps.sh clang:/usr/bin/clang 'libclang-rt-14-dev:/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a'
deps-bench:
	@bash tests/deps.sh libopenblas-dev:/usr/lib/x86_64-linux-gnu/libopenblas.so

clean:
	rm -rf build demo-out demo-out-weather
