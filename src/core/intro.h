/* aurora.h - v0.1 - fine-tune the Aurora and Surya foundation models in C/CUDA.  MIT licence.

   A header-only library in the stb style: tensors, tape autograd, CPU ops (and
   CUDA ops when built with nvcc), safetensors I/O, named parameters with
   checkpoint loading, and the Adam/AdamW/Adafactor optimisers; then Aurora
   itself, and the fine-tuning toolkit (data checks, new variables, gradient
   alarm, memory plans, PNG plots, a JSON-configured trainer).

   USAGE: in exactly ONE .c (CPU) or .cu (CUDA) file:

       #define AURORA_IMPLEMENTATION
       #include "aurora.h"

   and plain #include "aurora.h" everywhere else. Link with -lcjson -lm (and
   -fopenmp for threads; cuBLAS and the CUDA runtime for the CUDA build).

       aur_model *m = aur_model_create();
       aur_tensor *w = aur_model_add(m, "fc.weight", aur_shape2(4, 8), 0);
       aur_tensor *b = aur_model_add(m, "fc.bias", aur_shape1(4), 0);
       if (aur_model_alloc(m, AUR_CPU)) { fprintf(stderr, "%s\n", aur_last_error()); return 1; }
       aur_optim_opts o = aur_adamw_defaults(); o.lr = 3e-4;
       aur_optim *opt = aur_optim_create(m, &o);
       aur_tape *t = aur_tape_create();
       for (int step = 0; step < 100; step++) {
           aur_tensor *y = aur_linear(t, x, w, b);            // x: an aur_tensor of shape (N, 8)
           aur_tensor *loss = aur_mse_loss(t, y, target);     // a NULL anywhere means: read aur_last_error()
           if (!loss || aur_backward(t, loss) || aur_optim_step(opt)) break;
           aur_model_zero_grad(m);
           aur_tape_reset(t);                                 // frees this step's activations
       }

   CONFIG (define before the implementation include):
     AUR_MALLOC/AUR_REALLOC/AUR_FREE  replace the allocator (define all three or none)
     AUR_ASSERT                       internal invariants (default: assert)
     AUR_STATIC                       make every function static to the including file
     AURORA_CUDA                      with nvcc: compile the CUDA paths (kernels.cuh, cuBLAS)
     AUR_NO_OPENMP                    ignore OpenMP even when compiled with -fopenmp
     AUR_REAL_DOUBLE                  F32 tensors hold double (tests only: finite differences)
     AUR_TORCH_CKPT                   read PyTorch's zip checkpoints (.ckpt, .pt) wherever safetensors
                                      are read; link -lzip (Debian's libzip-dev)
     AUR_NETCDF                       weather NetCDF files and Zarr stores (aur_weather_load); link -lnetcdf.
                                      With surya.h also SDO data in the reference's layout; link -lyaml too
     AUR_GRIB                         GRIB 1/2 files in those series too (with AUR_NETCDF); link -leccodes
                                      (Debian's libeccodes-dev)
     AUR_NO_PNG                       leave out the PNG plots (they need stb_image_write.h and
                                      stb_easy_font.h, Debian's libstb-dev, and are left out without them)

   Compile with -O3 -march=native -ffp-contract=fast for speed: the matrix
   product is written with vector extensions and needs FMA contraction.

   ERRORS: fallible calls return 0 or a negative AUR_E* code; constructors and
   ops return NULL. Either way aur_last_error() says what went wrong. The
   library never exits and frees what it half built; it prints only from the
   trainer (aur_trainer_run's setup and progress lines, and the data-check
   report of a refused file on stderr).

   Memory: parameters, gradients and optimiser state live in one slab each.
   Activations, their gradients and what backward keeps live in the tape's
   heap, each only as long as something needs it; aur_tape_reset() recycles
   the heap without calling malloc again once the first step has sized it.

   THREADS: the library has no hidden state but the error message (one per
   thread) and, in a CUDA build, the GPU allocation counters and the cuBLAS
   handle (both locked). Separate models, tapes and optimisers may be used
   from separate threads at once; one model, tape or optimiser is used by one
   thread at a time (a model caches index tables on first use). */
