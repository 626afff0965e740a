/* aurora.h - GENERATED from src/ by `make headers` (tools/make_headers.sh; src/manifest
   lists its files in order). Do not edit it: edit src/, run make headers, commit both. */
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

#ifndef AUR__AURORA_H
#define AUR__AURORA_H

/* The implementation uses POSIX (mmap, fsync); ask for it before any system
   header is included, since strict -std=c11 hides it otherwise. (If your
   implementation file includes system headers before this one, define
   _POSIX_C_SOURCE 200809L yourself or compile with -std=gnu11.) */
#if defined(AURORA_IMPLEMENTATION) && !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef AUR_STATIC
#define AURDEF static
#elif defined(__cplusplus)
#define AURDEF extern "C"
#else
#define AURDEF extern
#endif

/* ==== errors ==== */

enum {
    AUR_OK = 0,
    AUR_EINVAL = -1,       /* a bad argument or configuration value */
    AUR_EIO = -2,          /* the operating system refused a read or write */
    AUR_EFORMAT = -3,      /* a file is malformed */
    AUR_ESHAPE = -4,       /* shapes do not fit together */
    AUR_ENOMEM = -5,       /* out of memory */
    AUR_ECUDA = -6,        /* a CUDA or cuBLAS call failed */
    AUR_ENAN = -7,         /* a NaN or Inf where finite numbers are required */
    AUR_EUNSUPPORTED = -8  /* valid, but not implemented here */
};

/* The message of the last failure on this thread. Never NULL. */
AURDEF const char *aur_last_error(void);
/* "AUR_EFORMAT" etc. for a code. */
AURDEF const char *aur_error_name(int code);

/* ==== tensors ==== */

#ifdef AUR_REAL_DOUBLE
typedef double aur_real; /* test builds only: gradients checked by finite differences in double */
#else
typedef float aur_real; /* the element type of F32 tensors */
#endif

typedef enum aur_dtype { AUR_F32 = 0, AUR_BF16 = 1 } aur_dtype;
/* AUR_META holds shapes only (torch's meta device): its tensors have no bytes,
   ops on them compute nothing, and the tape keeps the exact account of what
   the same step would hold on a real device (aur_aurora_memory_plan runs a
   step there). */
typedef enum aur_device { AUR_CPU = 0, AUR_CUDA = 1, AUR_META = 2 } aur_device;
#define AUR__DEVICES 3

#define AUR_MAX_DIMS 6

typedef struct aur_shape {
    int ndim;
    int64_t d[AUR_MAX_DIMS];
} aur_shape;

AURDEF aur_shape aur_shape1(int64_t a);
AURDEF aur_shape aur_shape2(int64_t a, int64_t b);
AURDEF aur_shape aur_shape3(int64_t a, int64_t b, int64_t c);
AURDEF aur_shape aur_shape4(int64_t a, int64_t b, int64_t c, int64_t d);
AURDEF aur_shape aur_shape5(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e);
AURDEF aur_shape aur_shapev(int ndim, const int64_t *d);
AURDEF int64_t aur_shape_numel(aur_shape s);

struct aur_model;

/* A dense, contiguous, row-major tensor. Activations are created by ops in
   the tape's arena; parameters are views into the model's slabs; owned
   tensors come from aur_tensor_create. */
typedef struct aur_tensor {
    int ndim;
    int64_t shape[AUR_MAX_DIMS];
    int64_t numel;
    aur_dtype dtype;
    aur_device device;
    void *data;              /* F32: aur_real[numel]; BF16: uint16_t[numel]; device memory on CUDA */
    aur_real *grad;          /* d loss / d this tensor (F32, same device), NULL when not needed */
    int requires_grad;       /* parameters: trainable; activations: depends on a trainable input */
    int grad_written;        /* a backward pass reached it since the last zero_grad (torch: .grad is not None) */
    const char *name;        /* parameters: the PyTorch state_dict key; NULL otherwise */
    struct aur_model *model; /* parameters: the owning model; NULL otherwise */
    int is_buffer;           /* parameters: a state_dict buffer (loaded and saved, never trained) */
    int owned;               /* internal: made by aur_tensor_create (2: in pinned host memory) */
    struct aur__storage *storage, *grad_storage; /* internal: a tape tensor's data and gradient (shared by views) */
    size_t offset;                /* internal: where data starts in its storage, in bytes (a slice's view) */
    struct aur__rebuild *rebuild; /* internal: how its op makes its bytes again (cheap ops), or NULL */
} aur_tensor;

/* An owned tensor, zero-filled, outside any tape. Free with aur_tensor_free. */
AURDEF aur_tensor *aur_tensor_create(aur_dtype dtype, aur_device device, aur_shape shape);
AURDEF void aur_tensor_free(aur_tensor *t);
/* Zeroes an owned tensor's gradient (kept across backward calls, as torch's .grad). */
AURDEF void aur_tensor_zero_grad(aur_tensor *t);
/* Copy numel values in or out (host aur_real arrays; converts BF16 and moves across devices). */
AURDEF int aur_tensor_set(aur_tensor *t, const aur_real *src, int64_t n);
AURDEF int aur_tensor_get(const aur_tensor *t, aur_real *dst, int64_t n);
/* The host F32 data of a CPU F32 tensor (borrowed), or NULL with an error. */
AURDEF aur_real *aur_tensor_f32(aur_tensor *t);
AURDEF aur_shape aur_tensor_shape(const aur_tensor *t);
/* Writes e.g. "[2, 3, 4]" into buf. Returns buf. */
AURDEF char *aur_shape_str(const int64_t *shape, int ndim, char *buf, size_t size);

/* bfloat16 conversion: round to nearest even, NaN kept NaN. */
AURDEF uint16_t aur_f32_to_bf16(float x);
AURDEF float aur_bf16_to_f32(uint16_t x);
AURDEF float aur_f16_to_f32(uint16_t x);
AURDEF float aur_round_bf16(float x); /* f32 -> bf16 -> f32 */

/* ==== tape (autograd) ==== */

/* The tape is the context of a training step: ops called with it make their
   outputs on it and, while gradients are on, record how to run backward.
   aur_backward walks the record in reverse. A tensor's bytes live as long as
   something needs them: the forward (until the scope it was made in ends, or
   the step ends), or a recorded backward that reads it (until that backward
   has run). An activation's gradient lives from its first write until the
   backward of the op that made it has consumed it (as torch frees .grad of
   non-leaf tensors). Freed bytes are reused within the step, and a step like
   the last one asks the system for no memory. */
typedef struct aur_tape aur_tape;

AURDEF aur_tape *aur_tape_create(void); /* owned: free with aur_tape_free */
AURDEF void aur_tape_free(aur_tape *t);
/* Forget the recorded ops and recycle every activation of the step. */
AURDEF void aur_tape_reset(aur_tape *t);
AURDEF void aur_tape_set_grad(aur_tape *t, int on);     /* default on; off = inference */
AURDEF void aur_tape_set_training(aur_tape *t, int on); /* default on; off = dropout is the identity */
AURDEF void aur_tape_set_autocast(aur_tape *t, int on); /* matrix products with BF16 operands, F32 accumulation */
/* Attention on a GPU: fused kernels that never form the score matrix (default on), or
   cuBLAS products with the weights formed (off). Backward takes its forward's path. */
AURDEF void aur_tape_set_fused_attention(aur_tape *t, int on);
AURDEF void aur_tape_seed(aur_tape *t, uint64_t seed);  /* dropout's random stream */
/* Bytes the tape holds now and at most since creation (host and device). */
AURDEF void aur_tape_memory(const aur_tape *t, size_t *current, size_t *peak);
/* The peak and what it was made of at that moment. */
typedef struct aur_memory_stats {
    size_t current, peak;
    size_t activations; /* tensor data held for the forward or for a backward */
    size_t gradients;   /* activations' gradients not yet consumed */
    size_t saved;       /* buffers ops keep for backward (statistics, indices, BF16 copies under autocast) */
    size_t scratch;     /* workspaces of the op running, and the step's small structs */
    size_t per_thread;  /* of scratch: the CPU's per-thread workspaces (matrix-product packing,
                           attention tiles), which a GPU run does not have */
    size_t peak_shared; /* the most held at once apart from per_thread: the same on any thread count */
} aur_memory_stats;
AURDEF void aur_tape_memory_stats(const aur_tape *t, aur_memory_stats *s);
/* What the tape holds now, made up as above (peak and peak_shared as there). */
AURDEF void aur_tape_memory_now(const aur_tape *t, aur_memory_stats *s);
/* Scratch memory in the arena until aur_tape_reset (e.g. a checkpoint ctx). */
AURDEF void *aur_tape_alloc(aur_tape *t, size_t bytes);
/* A zero-filled tensor on the tape. */
AURDEF aur_tensor *aur_tensor_new(aur_tape *t, aur_device device, aur_shape shape);

/* Scopes: a part of the forward (a block, a module) whose temporaries are
   given back when it ends. Every tensor made since aur_scope_begin, but the
   n_keep in keep, loses the forward's hold: its bytes go at once unless a
   recorded backward still reads them (NULL entries of keep are ignored). A
   tensor used after its scope ended (and not kept) is a bug; test builds
   (-DAUR_POISON_FREED) make its bytes NaN. Scopes nest. */
typedef struct aur_scope {
    int first;
} aur_scope;
AURDEF aur_scope aur_scope_begin(aur_tape *t);
AURDEF void aur_scope_end(aur_tape *t, aur_scope s, aur_tensor *const *keep, int n_keep);

/* d loss / d every trainable tensor, accumulated (+=) into .grad. loss has one
   element. A tape can run backward once. */
AURDEF int aur_backward(aur_tape *t, aur_tensor *loss);

/* Activation checkpointing: run fn(in) keeping only its output (and
   holding its inputs), and recompute it during backward. fn must be a pure
   function of its inputs, the parameters and the tape's dropout stream
   (which is replayed with the forward's training, autocast and attention
   settings); ctx and the inputs must stay valid until backward has run.
   Checkpoints nest: inside a checkpointed forward a nested aur_checkpoint
   is a plain call, and when the outer segment is recomputed the inner ones
   are checkpoints again, so only one segment's activations exist at a time.
   With gradients off it is a way to run a segment and keep only its output. */
typedef aur_tensor *(*aur_segment_fn)(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in);
AURDEF aur_tensor *aur_checkpoint(aur_tape *t, aur_segment_fn fn, void *ctx, aur_tensor *const *in, int n_in);

/* ==== ops ====
   Every op takes the tape first, returns a new tensor in its arena (or NULL
   with aur_last_error set), and accepts NULL inputs by returning NULL, so a
   chain of ops can be checked once at the end. Shapes in PyTorch order. An
   axis may be negative (counted from the end). */

/* x (..., K), w (N, K), b (N) or NULL -> x w^T + b (..., N).  torch.nn.functional.linear */
AURDEF aur_tensor *aur_linear(aur_tape *t, aur_tensor *x, aur_tensor *w, aur_tensor *b);
/* a (..., M, K), b (..., K, N) -> (..., M, N); ta/tb transpose the last two dims of a/b
   first. b may also be 2-D (shared by every batch). */
AURDEF aur_tensor *aur_matmul(aur_tape *t, aur_tensor *a, aur_tensor *b, int ta, int tb);
/* Elementwise with numpy broadcasting: a + b, a - b, a * b. */
AURDEF aur_tensor *aur_add(aur_tape *t, aur_tensor *a, aur_tensor *b);
AURDEF aur_tensor *aur_sub(aur_tape *t, aur_tensor *a, aur_tensor *b);
AURDEF aur_tensor *aur_mul(aur_tape *t, aur_tensor *a, aur_tensor *b);
AURDEF aur_tensor *aur_scale(aur_tape *t, aur_tensor *x, double s); /* x * s */
/* LayerNorm over the last dim; w and b (C) may both be NULL (no affine).  torch.nn.LayerNorm */
AURDEF aur_tensor *aur_layernorm(aur_tape *t, aur_tensor *x, aur_tensor *w, aur_tensor *b, double eps);
AURDEF aur_tensor *aur_gelu(aur_tape *t, aur_tensor *x);      /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
AURDEF aur_tensor *aur_gelu_tanh(aur_tape *t, aur_tensor *x); /* GELU(approximate="tanh") */
AURDEF aur_tensor *aur_silu(aur_tape *t, aur_tensor *x);      /* x sigmoid(x) */
AURDEF aur_tensor *aur_sigmoid(aur_tape *t, aur_tensor *x);
AURDEF aur_tensor *aur_log(aur_tape *t, aur_tensor *x); /* natural log */
AURDEF aur_tensor *aur_sin(aur_tape *t, aur_tensor *x);
AURDEF aur_tensor *aur_cos(aur_tape *t, aur_tensor *x);
AURDEF aur_tensor *aur_softmax(aur_tape *t, aur_tensor *x);   /* over the last dim */
/* Scaled dot-product attention softmax(q k^T * scale + mask) v.
   q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) with equal leading dims;
   mask (additive, may be a trainable bias) broadcasts numpy-style against
   (..., Lq, Lk), or NULL. scale <= 0 means 1/sqrt(d). -> (..., Lq, dv). */
AURDEF aur_tensor *aur_sdpa(aur_tape *t, aur_tensor *q, aur_tensor *k, aur_tensor *v, aur_tensor *mask, double scale);
/* Inverted dropout with probability p; the identity when not training or p == 0. */
AURDEF aur_tensor *aur_dropout(aur_tape *t, aur_tensor *x, double p);
/* Joins n tensors that agree except along axis. */
AURDEF aur_tensor *aur_concat(aur_tape *t, aur_tensor *const *xs, int n, int axis);
/* x[..., start:start+len, ...] along axis. */
AURDEF aur_tensor *aur_slice(aur_tape *t, aur_tensor *x, int axis, int64_t start, int64_t len);
/* Cuts x along axis into n pieces of the given sizes (summing to the axis length). */
AURDEF int aur_split(aur_tape *t, aur_tensor *x, int axis, int n, const int64_t *sizes, aur_tensor **out);
/* Constant padding: before[i] and after[i] elements on each side of dim i (ndim entries each). */
AURDEF aur_tensor *aur_pad(aur_tape *t, aur_tensor *x, const int64_t *before, const int64_t *after, double value);
/* out.shape[i] = x.shape[perm[i]] (torch permute(...).contiguous()). */
AURDEF aur_tensor *aur_permute(aur_tape *t, aur_tensor *x, const int *perm);
/* Same data, new shape (one dim may be -1). */
AURDEF aur_tensor *aur_reshape(aur_tape *t, aur_tensor *x, aur_shape shape);
/* torch.roll over every dim: shifts has ndim entries (0 leaves a dim alone). */
AURDEF aur_tensor *aur_roll(aur_tape *t, aur_tensor *x, const int64_t *shifts);
AURDEF aur_tensor *aur_sum(aur_tape *t, aur_tensor *x, int axis, int keepdim);
AURDEF aur_tensor *aur_mean(aur_tape *t, aur_tensor *x, int axis, int keepdim);
AURDEF aur_tensor *aur_sum_all(aur_tape *t, aur_tensor *x);  /* -> (1) */
AURDEF aur_tensor *aur_mean_all(aur_tape *t, aur_tensor *x); /* -> (1) */
AURDEF aur_tensor *aur_max(aur_tape *t, aur_tensor *x, int axis, int keepdim); /* values; gradient to the first maximum */
/* Losses, mean-reduced, -> (1). */
AURDEF aur_tensor *aur_mse_loss(aur_tape *t, aur_tensor *pred, aur_tensor *target);
/* MSE over the elements where both are finite (masked fields: waves over land). */
AURDEF aur_tensor *aur_mse_loss_finite(aur_tape *t, aur_tensor *pred, aur_tensor *target);
AURDEF aur_tensor *aur_mae_loss(aur_tape *t, aur_tensor *pred, aur_tensor *target);
/* torch binary_cross_entropy_with_logits; pos_weight (last dim) or NULL. */
AURDEF aur_tensor *aur_bce_logits_loss(aur_tape *t, aur_tensor *logits, aur_tensor *target, aur_tensor *pos_weight);
/* torch cross_entropy: logits (N, C), labels (N) holding class indices as numbers. */
AURDEF aur_tensor *aur_cross_entropy(aur_tape *t, aur_tensor *logits, aur_tensor *labels, int64_t ignore_index,
                                     double label_smoothing);
/* x clamped to [lo, hi] (pass -INFINITY / INFINITY for no bound); the
   gradient passes where lo <= x <= hi, inclusive, as torch.clamp. */
AURDEF aur_tensor *aur_clamp(aur_tape *t, aur_tensor *x, double lo, double hi);
/* x broadcast (numpy rules) to shape; backward sums over the broadcast dims. */
AURDEF aur_tensor *aur_expand(aur_tape *t, aur_tensor *x, aur_shape shape);
/* Per-channel affine along axis, in F32 as PyTorch does it:
   y = (x - loc[c]) / scale[c], or with inverse y = x * scale[c] + loc[c].
   loc and scale hold x.shape[axis] values (rounded to float32). */
AURDEF aur_tensor *aur_normalise(aur_tape *t, aur_tensor *x, int axis, const double *loc, const double *scale, int inverse);

/* atan2(y, x) elementwise (same shapes). */
AURDEF aur_tensor *aur_atan2(aur_tape *t, aur_tensor *y, aur_tensor *x);
/* torch.nan_to_num(x, nan): NaN -> nan, +-inf -> the largest finite float; the
   gradient passes only where x is finite. */
AURDEF aur_tensor *aur_nan_to_num(aur_tape *t, aur_tensor *x, double nan);
/* x with value wherever mask (same shape, nonzero = fill) is set; no gradient there. */
AURDEF aur_tensor *aur_masked_fill(aur_tape *t, aur_tensor *x, aur_tensor *mask, double value);
/* torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border",
   align_corners=False): x (N, C, H, W), grid (N, Ho, Wo, 2) of (x, y) in [-1, 1]
   -> (N, C, Ho, Wo); gradients to x and grid (zero where a coordinate is clipped). */
AURDEF aur_tensor *aur_grid_sample(aur_tape *t, aur_tensor *x, aur_tensor *grid);
/* torch.remainder(x, m) = x - m floor(x / m); the gradient passes through. */
AURDEF aur_tensor *aur_remainder(aur_tape *t, aur_tensor *x, double m);

/* Row gather: x seen as (nb, rows, d); out[b, i, :] = x[b, idx[i], :], or
   zeros where idx[i] = -1. One op does any roll, pad, crop, window
   partition or patch shuffle, given its table (built once, on the host). */
typedef struct aur_index {
    int64_t n_out, n_in; /* rows out, rows of the source */
    int64_t *idx;        /* n_out entries in [-1, n_in) */
    int injective;       /* no source row used twice (backward may run in parallel) */
} aur_index;
/* The table must stay valid until backward has run. -> out_shape (numel nb*n_out*d). */
AURDEF aur_tensor *aur_gather(aur_tape *t, aur_tensor *x, int64_t nb, int64_t d, const aur_index *ix, aur_shape out_shape);

/* Copies between devices or dtypes; the gradient flows back. */
AURDEF aur_tensor *aur_to_device(aur_tape *t, aur_tensor *x, aur_device device);
AURDEF aur_tensor *aur_cast(aur_tape *t, aur_tensor *x, aur_dtype dtype);

/* ==== safetensors ==== */

#define AUR_ST_MAX_DIMS 8

typedef struct aur_st_tensor {
    char *name;
    char dtype[12];  /* as in the file: "F32", "BF16", ... */
    int ndim;
    int64_t shape[AUR_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* byte offsets into the data buffer, end exclusive */
} aur_st_tensor;

typedef struct aur_st_file {
    char *path;
    int n;                  /* tensors, sorted by name */
    aur_st_tensor *tensors;
    int n_meta;             /* __metadata__ entries */
    char **meta_keys, **meta_values;
    uint64_t buffer_size;   /* bytes of the data section */
    uint64_t data_start;    /* internal: where the data section starts in the file */
    const unsigned char *buffer; /* internal: the data section of an in-memory file (the fuzz target's), or NULL */
    int fd;                 /* internal: the open file, read with pread (a file cut short while open is an error, not SIGBUS) */
    void *torch;            /* internal: a PyTorch zip checkpoint's archive (torch_ckpt.c), or NULL */
} aur_st_file;

/* Opens and validates a safetensors file (every rule of the format; see the
   implementation). Owned: close with aur_st_close. */
AURDEF aur_st_file *aur_st_open(const char *path);
AURDEF void aur_st_close(aur_st_file *f);
/* Borrowed entry, or NULL (no error set: absence is not an error here). */
AURDEF const aur_st_tensor *aur_st_find(const aur_st_file *f, const char *name);
AURDEF const char *aur_st_meta(const aur_st_file *f, const char *key);
/* Reads an entry into a host buffer of numel elements: dtype AUR_F32 reads
   F32/BF16/F16/I64/I32/U8/BOOL as aur_real; AUR_BF16 reads BF16 raw. */
AURDEF int aur_st_read(const aur_st_file *f, const aur_st_tensor *e, aur_dtype dtype, void *dst);
/* Reads elements [first, first + count) of an entry (row-major) as aur_real:
   a window of a series without reading the rest of it. */
AURDEF int aur_st_read_range(const aur_st_file *f, const aur_st_tensor *e, int64_t first, int64_t count, aur_real *dst);
/* Reads an entry into an existing tensor of the same shape (any device). */
AURDEF int aur_st_read_tensor(const aur_st_file *f, const aur_st_tensor *e, aur_tensor *t);

typedef struct aur_st_writer aur_st_writer;
AURDEF aur_st_writer *aur_st_writer_create(void); /* owned: aur_st_writer_free */
AURDEF void aur_st_writer_free(aur_st_writer *w);
/* Adds a tensor (borrowed until write). Saved as F32 or BF16, as its dtype. */
AURDEF int aur_st_writer_add(aur_st_writer *w, const char *name, const aur_tensor *t);
/* Adds host data of another dtype ("I64", "U8", ...), borrowed until write. */
AURDEF int aur_st_writer_add_raw(aur_st_writer *w, const char *name, const char *dtype, int ndim,
                                 const int64_t *shape, const void *bytes);
AURDEF int aur_st_writer_meta(aur_st_writer *w, const char *key, const char *value);
/* Writes path atomically: path.tmp, fsync, rename. */
AURDEF int aur_st_writer_write(aur_st_writer *w, const char *path);

/* ==== models: named parameters ==== */

/* A table of named tensors, keyed by PyTorch state_dict names, backed by one
   slab for the values and one for the gradients. Models (Aurora, Surya)
   declare their parameters into it; it also stands alone. */
typedef struct aur_model aur_model;

AURDEF aur_model *aur_model_create(void); /* owned: aur_model_free */
AURDEF void aur_model_free(aur_model *m);
/* Declares a parameter (is_buffer = 0) or buffer (1). Its data exists after
   aur_model_alloc. Borrowed; valid until aur_model_free. */
AURDEF aur_tensor *aur_model_add(aur_model *m, const char *name, aur_shape shape, int is_buffer);
/* Allocates the slabs (zero-filled) on a device. */
AURDEF int aur_model_alloc(aur_model *m, aur_device device);
AURDEF int aur_model_count(const aur_model *m);
AURDEF aur_tensor *aur_model_at(const aur_model *m, int i);
/* Borrowed tensor by name, or NULL with an error naming it. */
AURDEF aur_tensor *aur_model_param(const aur_model *m, const char *name);
/* Elements in all parameters (buffers excluded), or only in trainable ones. */
AURDEF int64_t aur_model_numel(const aur_model *m, int trainable_only);
/* Freezes (or unfreezes) every parameter whose name matches a glob pattern
   ('*' any run of characters, '?' one). Several patterns may be joined by
   commas. Returns how many matched, or AUR_EINVAL if none did. */
AURDEF int aur_model_freeze(aur_model *m, const char *patterns);
AURDEF int aur_model_unfreeze(aur_model *m, const char *patterns);
/* 1 if the name matches one of the comma-separated glob patterns. */
AURDEF int aur_name_matches(const char *patterns, const char *name);
/* Zeroes every gradient and forgets which ones backward reached. */
AURDEF void aur_model_zero_grad(aur_model *m);
/* Bytes of the parameter and gradient slabs. */
AURDEF size_t aur_model_bytes(const aur_model *m, size_t *grad_bytes);
/* Declares a LoRA adapter of rank r on the linear module `module` (whose
   "{module}.weight" (out, in) is declared): parameters
   "{module}.lora_A.default.weight" (r, in) and "...lora_B.default.weight"
   (out, r), PEFT's names; on a Conv2d (weight (out, in, kh, kw)) PEFT's
   conv adapter, A (r, in, kh, kw) and B (out, r, 1, 1). Before
   aur_model_alloc. lora.h does the matching. */
AURDEF int aur_model_add_adapter(aur_model *m, const char *module, int r, double scaling, double dropout);
/* The linear module `module` of a model: x W^T + b, plus its adapter if it
   has one. A Conv2d module whose stride equals its kernel (a patch
   embedding, a 1x1 convolution) is the same product on x's flattened
   patches (in, kh, kw), its adapter too. */
AURDEF aur_tensor *aur_model_linear(aur_tape *t, const aur_model *m, const char *module, aur_tensor *x, int bias);

typedef enum aur_load_mode {
    AUR_LOAD_STRICT = 0,    /* every name present on both sides with equal shapes, or nothing is loaded */
    AUR_LOAD_NONSTRICT = 1, /* torch strict=False: missing and unexpected allowed; a shape mismatch is an error */
    AUR_LOAD_FILTERED = 2   /* load where name and shape match; report the rest */
} aur_load_mode;

typedef struct aur_load_report {
    int n_loaded, n_missing, n_unexpected, n_mismatched;
    char **loaded;     /* model names filled from the file */
    char **missing;    /* model names not loaded: absent from the file, or mismatched */
    char **unexpected; /* file names the model lacks */
    char **mismatched; /* "name: file [..] vs model [..]" */
} aur_load_report;

/* Loads parameters and buffers by name. rep may be NULL; otherwise it is
   filled (also on failure) and must be released with aur_load_report_free. */
AURDEF int aur_load_safetensors(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep);
AURDEF void aur_load_report_free(aur_load_report *rep);
AURDEF void aur_load_report_print(const aur_load_report *rep, FILE *out);
/* Saves every parameter and buffer (atomically). */
AURDEF int aur_save_safetensors(const aur_model *m, const char *path);
/* Prints what trains and what is frozen, one row per top-level module (the
   names' first component) with element counts, LoRA adapters counted in
   their row, and with rep (the load's report, or NULL) how many tensors the
   checkpoint did not fill. Warns for each such new tensor that is frozen
   (a random head nobody trains) and returns how many warnings it printed. */
AURDEF int aur_model_print_trainable(const aur_model *m, const aur_load_report *rep, FILE *out);

/* ==== optimisers ==== */

typedef enum aur_optim_kind { AUR_ADAM = 0, AUR_ADAMW = 1, AUR_ADAFACTOR = 2 } aur_optim_kind;

/* Hyperparameters, with torch.optim's meanings and defaults (take them from
   aur_*_defaults, then change what you need). */
typedef struct aur_optim_opts {
    aur_optim_kind kind;
    double lr;
    double weight_decay;   /* Adam: L2 added to the gradient; AdamW, Adafactor: decoupled */
    double beta1, beta2;   /* Adam(W) */
    double eps;            /* Adam(W) */
    double beta2_decay;    /* Adafactor: beta2_t = 1 - t^beta2_decay */
    double eps1, eps2;     /* Adafactor: eps1 clamps the variance, eps2 the parameter RMS */
    double d;              /* Adafactor: update clipping threshold */
    int offload;           /* model on a GPU: keep the state in pinned host memory, which the GPU
                              reads and writes over the bus (saves GPU memory, costs bandwidth) */
} aur_optim_opts;

AURDEF aur_optim_opts aur_adam_defaults(void);      /* lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0 */
AURDEF aur_optim_opts aur_adamw_defaults(void);     /* as Adam with wd 1e-2 */
AURDEF aur_optim_opts aur_adafactor_defaults(void); /* lr 1e-2, beta2_decay -0.8, eps (FLT_EPSILON, 1e-3), d 1, wd 0.
                                                       Adam-like lr values (3e-4) shrink its step rho = min(lr, 1/sqrt t). */

typedef struct aur_optim aur_optim;
/* An optimiser over the model's trainable parameters (freeze first). Owned. */
AURDEF aur_optim *aur_optim_create(aur_model *m, const aur_optim_opts *opts);
AURDEF void aur_optim_free(aur_optim *o);
/* Moves the parameters matching patterns (see aur_model_freeze) into a new
   group with its own lr and weight decay. Returns the group index (>= 1). */
AURDEF int aur_optim_add_group(aur_optim *o, const char *patterns, double lr, double weight_decay);
AURDEF int aur_optim_group_count(const aur_optim *o);
/* Multiplies every group's base lr by factor for the following steps (schedules). */
AURDEF void aur_optim_set_lr_factor(aur_optim *o, double factor);
AURDEF double aur_optim_group_lr(const aur_optim *o, int group); /* current lr */
/* One update of every trainable parameter that backward reached (torch skips .grad None). */
AURDEF int aur_optim_step(aur_optim *o);
/* Steps taken by the optimiser (the largest per-parameter count). */
AURDEF int64_t aur_optim_steps(const aur_optim *o);
/* State of a parameter by torch's name ("exp_avg", "exp_avg_sq", "row_var",
   "col_var", "variance"), borrowed, or NULL. */
AURDEF aur_tensor *aur_optim_state(const aur_optim *o, const char *param, const char *state);
AURDEF int64_t aur_optim_param_steps(const aur_optim *o, const char *param);
/* State save/load (safetensors) so training can resume exactly. */
AURDEF int aur_optim_save(const aur_optim *o, const char *path);
AURDEF int aur_optim_load(aur_optim *o, const char *path);

/* torch.nn.utils.clip_grad_norm_: total = ||(||g_i||)_i||_2, then every
   gradient *= min(1, max_norm / (total + 1e-6)). A non-finite total returns
   AUR_ENAN naming the first offending tensor and changes nothing. */
AURDEF int aur_clip_grad_norm(aur_model *m, double max_norm, double *total_norm);
/* The L2 norm of the gradients of parameters matching patterns (NULL: all trainable). */
AURDEF double aur_grad_norm(const aur_model *m, const char *patterns);

typedef enum aur_lr_kind { AUR_LR_CONSTANT = 0, AUR_LR_LINEAR = 1, AUR_LR_COSINE = 2 } aur_lr_kind;
/* lr factor at a step: a linear warm-up over warmup_steps (from 1/warmup to
   1), then constant, or a linear or cosine decay to final_factor at
   total_steps (and final_factor after). */
typedef struct aur_lr_schedule {
    aur_lr_kind kind;
    int64_t warmup_steps;
    int64_t total_steps;
    double final_factor;
} aur_lr_schedule;
AURDEF double aur_lr_factor(const aur_lr_schedule *s, int64_t step);

/* ==== JSON files ==== */

/* Reads and parses a JSON file (configs, fixture descriptions): a regular
   file of at most 64 MiB holding one JSON value, no key twice in an object.
   Owned: free with cJSON_Delete. NULL with an error naming the file and the
   line of a syntax error, the text after the value, or the duplicate key.
   aur_json_parse does the same for n bytes of text (name: for messages). */
struct cJSON;
AURDEF struct cJSON *aur_json_load(const char *path);
AURDEF struct cJSON *aur_json_parse(const char *text, size_t n, const char *name);

/* ==== CUDA ====
   What stays process-wide: the GPU allocation counters aur_cuda_memory reports
   (and the table behind them) and the cuBLAS handle. A lock guards them, so
   several threads may allocate and free GPU memory at once. */

/* 1 if this build has the CUDA paths and a GPU answers. */
AURDEF int aur_cuda_available(void);
/* GPU bytes allocated through the library now and at most. */
AURDEF void aur_cuda_memory(size_t *current, size_t *peak);
/* Starts a new peak: from now on the peak is measured from the current bytes. */
AURDEF void aur_cuda_reset_peak(void);

/* ==== Aurora ====
   Microsoft's Aurora (microsoft/aurora v1.x): a Perceiver encoder, a 3-D
   Swin U-Net backbone and a Perceiver decoder over (levels, lat, lon).
   The parameter names are the reference's state_dict keys. */

#define AUR_MAX_VARS 64
#define AUR_MAX_STAGES 6
#define AUR_MAX_LEVELS 64
#define AUR_NAME_LEN 48

/* An ordered list of variable names. */
typedef struct aur_var_list {
    int n;
    char name[AUR_MAX_VARS][AUR_NAME_LEN];
} aur_var_list;

typedef enum aur_lora_mode { AUR_LORA_SINGLE = 0, AUR_LORA_FROM_SECOND = 1, AUR_LORA_ALL = 2 } aur_lora_mode;

/* Every constructor keyword of the reference Aurora, with its meaning.
   Start from a preset (aur_aurora_preset) and change what you need. */
typedef struct aur_aurora_config {
    aur_var_list surf_vars, static_vars, atmos_vars; /* variables the model has weights for */
    int window_size[3];                              /* Swin window (levels, lat, lon) */
    int n_stages;                                    /* len(encoder_depths) */
    int encoder_depths[AUR_MAX_STAGES], encoder_num_heads[AUR_MAX_STAGES];
    int decoder_depths[AUR_MAX_STAGES], decoder_num_heads[AUR_MAX_STAGES];
    int latent_levels;        /* Ld: 1 surface latent + Ld-1 atmospheric latents */
    int patch_size, embed_dim, num_heads; /* P, D, Perceiver heads */
    double mlp_ratio, dec_mlp_ratio;
    double drop_path, drop_rate;
    int enc_depth, dec_depth; /* Perceiver layers */
    double perceiver_ln_eps;
    int max_history_size;     /* Tmax */
    double timestep_seconds;  /* lead time of one step */
    int stabilise_level_agg;  /* ln_k/ln_q in the first encoder Perceiver layer */
    int use_lora, lora_steps;
    aur_lora_mode lora_mode;
    int n_surf_stats;         /* surf_stats: (loc, scale) overrides for surface and static variables */
    char surf_stats_name[AUR_MAX_VARS][AUR_NAME_LEN];
    double surf_stats[AUR_MAX_VARS][2];
    int autocast;             /* BF16 matrix products in the backbone */
    int n_level_condition;    /* level_condition: per-level patch embeddings and heads for these levels */
    double level_condition[AUR_MAX_LEVELS];
    int dynamic_vars, atmos_static_vars;
    aur_var_list separate_perceiver, modulation_heads, positive_surf_vars, positive_atmos_vars;
    int clamp_at_first_step, simulate_indexing_bug;
    int air_pollution, wave; /* the AuroraAirPollution / AuroraWave subclasses' extra parameters and hooks */
    unsigned checkpoint;     /* AUR_CHECKPOINT_* modules checkpointed (no numerical effect); see below */
    double band_floats;      /* the encoder and decoder take patch rows in bands of about this many
                                floats of activations (0: 2^23); no numerical effect */
} aur_aurora_config;

/* Activation checkpointing by module, as the reference's
   Aurora.configure_activation_checkpointing(module_names): each module of a
   checked kind keeps only its inputs and output, and is recomputed in
   backward (nested modules are checkpoints again inside the recomputation). */
enum {
    AUR_CHECKPOINT_ENCODER = 1,               /* Perceiver3DEncoder */
    AUR_CHECKPOINT_BACKBONE = 2,              /* Swin3DTransformerBackbone */
    AUR_CHECKPOINT_ENCODER_LAYERS = 4,        /* Basic3DEncoderLayer (its blocks, then its patch merging) */
    AUR_CHECKPOINT_DECODER_LAYERS = 8,        /* Basic3DDecoderLayer (its blocks, then its patch splitting) */
    AUR_CHECKPOINT_BLOCKS = 16,               /* Swin3DTransformerBlock */
    AUR_CHECKPOINT_DECODER = 32,              /* Perceiver3DDecoder */
    AUR_CHECKPOINT_PATCH_RECONSTRUCTION = 64, /* LinearPatchReconstruction (each decoder head) */
    AUR_CHECKPOINT_ALL = 127                  /* the reference's default module_names */
};
/* cfg->checkpoint from the reference's class names, comma-separated (e.g.
   "Swin3DTransformerBlock,Perceiver3DEncoder"); NULL or "" for the default
   (all seven), "none" for none. An unknown name is an error naming it. */
AURDEF int aur_aurora_checkpoint_modules(aur_aurora_config *cfg, const char *names);
/* A model's checkpointed modules from now on (an AUR_CHECKPOINT_* mask), as
   the reference's configure_activation_checkpointing does on a built model. */
AURDEF int aur_aurora_set_checkpoint(aur_model *m, unsigned modules);

/* Presets by name: "aurora-pretrained", "aurora-small-pretrained",
   "aurora-0.25-finetuned" (the reference's default Aurora), "aurora-12h-pretrained",
   "aurora-highres", "aurora-air-pollution", "aurora-wave"; or by the
   reference's class name ("AuroraSmallPretrained", ...). */
AURDEF int aur_aurora_preset(const char *name, aur_aurora_config *cfg);
/* The list of preset names, NULL-terminated. */
AURDEF const char *const *aur_aurora_preset_names(void);
/* Applies constructor keywords from a JSON object (the reference's Aurora(...)
   keyword arguments, e.g. {"embed_dim": 256, "use_lora": false}) on top of cfg; an unknown key or a bad value is an error naming it. */
AURDEF int aur_aurora_config_json(const struct cJSON *kwargs, aur_aurora_config *cfg);

/* Declares the parameter table of a configuration into an empty model,
   without allocating any data (for listing a 1.3 B model's table). */
AURDEF int aur_aurora_declare(aur_model *m, const aur_aurora_config *cfg);
/* An Aurora model with freshly initialised weights (the reference's
   initialisation, from seed) on a device. Owned: aur_model_free. */
AURDEF aur_model *aur_aurora_create(const aur_aurora_config *cfg, aur_device device, uint64_t seed);
/* The parameter table and statistics of cfg without any weights (listing a
   1.3 B model, checking data, planning memory). Owned: aur_model_free. */
AURDEF aur_model *aur_aurora_declare_model(const aur_aurora_config *cfg);
AURDEF const aur_aurora_config *aur_aurora_config_of(const aur_model *m);
/* Re-initialises the weights (from seed) by the reference's rules. */
AURDEF int aur_aurora_init_weights(aur_model *m, uint64_t seed);
/* Loads a checkpoint by name after the reference's adaptations: the old
   fused-head layout of pretrained files, the Wave renames, and zero-padding
   of the patch-embedding history to max_history_size. */
AURDEF int aur_aurora_load(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep);

/* ---- normalisation statistics ----
   Aurora normalises every variable with a location and scale: surface and
   static variables by name ("2t"), atmospheric ones per level ("z_500").
   Every model starts with the reference's full table; register new ones. */
AURDEF int aur_aurora_set_stats(aur_model *m, const char *key, double loc, double scale);
AURDEF int aur_aurora_get_stats(const aur_model *m, const char *key, double *loc, double *scale);
/* "850" for 850, "0_5" for 0.5: the key suffix of a level. */
AURDEF void aur_level_to_str(double level, char *buf, size_t size);

/* ---- batches ----
   Physical units. The order of the variables is the order of the model's
   inputs and outputs. A loaded or created batch owns its tensors, and
   aur_batch_free frees them with it. A prediction belongs to the tape that
   made it and lives until aur_tape_reset (the next step reuses it, so a
   step allocates nothing once the first has run); aur_batch_free on it does
   nothing, and may be called before or after the reset, but not after
   aur_tape_free. */
typedef struct aur_batch {
    int B, T, C, H, W;
    aur_var_list surf_names, static_names, atmos_names;
    aur_tensor *surf[AUR_MAX_VARS];    /* (B, T, H, W), oldest step first */
    aur_tensor *statics[AUR_MAX_VARS]; /* (H, W) */
    aur_tensor *atmos[AUR_MAX_VARS];   /* (B, T, C, H, W) */
    float *lat, *lon;                  /* (H) and (W), or (H, W) each when lat_2d / lon_2d */
    int lat_2d, lon_2d;
    double levels[AUR_MAX_LEVELS];     /* hPa, C of them */
    double *time;                      /* B UTC Unix seconds: the time of the last history step */
    double step_seconds;               /* a series' spacing of its steps, when its file says (0: the model's timestep) */
    int rollout_step;
    int owns_tensors;                  /* loaded or created batches free their tensors; predictions do not */
    int on_tape;                       /* a prediction: the tape owns all of it */
} aur_batch;

/* A batch from a safetensors file: surf/{v} (B,T,H,W), static/{v} (H,W),
   atmos/{v} (B,T,C,H,W), meta/lat, meta/lon, meta/levels, and metadata
   keys surf_vars, static_vars, atmos_vars (comma lists giving the order),
   time_unix (comma list, B values) and rollout_step. Refuses NaN/Inf,
   missing or misshapen tensors with a message naming them. Owned. */
AURDEF aur_batch *aur_batch_load(const char *path);
/* The same, keeping NaN/Inf values (AuroraWave's wave variables, or data
   that aur_aurora_check_batch should report on). */
AURDEF aur_batch *aur_batch_load_unchecked(const char *path);
AURDEF int aur_batch_save(const aur_batch *b, const char *path);

/* Weather files as one series (B = 1, every time step in time order):
   NetCDF (classic or NetCDF-4, ERA5/HRES/CAMS as the Copernicus stores
   deliver them: packed shorts or floats, time or valid_time) and local
   Zarr v2 stores (WeatherBench2), through libnetcdf (-DAUR_NETCDF,
   -lnetcdf); GRIB 1/2 on regular grids (HRES, MARS retrievals) through
   ecCodes (also -DAUR_GRIB, -leccodes), each parameter and level type a
   variable, over its valid times, levels in decreasing pressure as cfgrib
   orders them. Several files make one series: surface, atmospheric and
   static files, or consecutive times, in any mix of these formats. Every variable on the latitude-
   longitude grid is taken, renamed to Aurora's (t2m -> 2t, u10 -> 10u,
   v10 -> 10v, WeatherBench2's long names; renames "file_name=aurora,..."
   first), grouped (a level dimension: atmospheric; no time dimension, or
   z, lsm, slt: static, its first step), checked (units, one grid, one set
   of levels, evenly spaced times, each once) and put into the reference's
   conventions: latitudes decreasing, longitudes in [0, 360), levels in
   hPa. step_seconds is set. NaN (fill values) are kept. log: a summary of
   what was read, or NULL. Owned. */
AURDEF aur_batch *aur_weather_load(const char *const *paths, int n, const char *renames, FILE *log);
/* A safetensors batch or series (one file), or weather files as above. */
AURDEF aur_batch *aur_batch_load_files(const char *const *paths, int n, const char *renames, FILE *log);

/* A series opened for reading window by window: one safetensors series, or
   weather files as aur_weather_load reads them (the same names, checks and
   conventions). Opening reads and checks the names, grid, levels and times
   and reads the static fields; a window reads only its own steps. Every
   call may come from any thread (the file libraries are serialised inside).
   log: aur_weather_load's summary, or NULL. Close with aur_series_close. */
typedef struct aur_series aur_series;
AURDEF aur_series *aur_series_open(const char *const *paths, int n, const char *renames, FILE *log);
AURDEF void aur_series_close(aur_series *s);
AURDEF int aur_series_length(const aur_series *s);          /* time steps */
AURDEF double aur_series_step_seconds(const aur_series *s); /* 0: the file does not say */
AURDEF const char *aur_series_path(const aur_series *s);    /* the first file, for messages */
/* Steps [start, start + steps) as a new batch: equal, bit for bit, to
   aur_batch_window(whole series, start, steps, step_seconds). Owned. */
AURDEF aur_batch *aur_series_read(aur_series *s, int start, int steps, double step_seconds);
/* The same into a buffer from aur_series_window_alloc (of any series with
   this one's variables and grid), w->T steps: no allocation per window;
   pinned: in page-locked memory the GPU copies from directly (CUDA builds). */
AURDEF aur_batch *aur_series_window_alloc(const aur_series *s, int steps, int pinned);
AURDEF int aur_series_read_into(aur_series *s, int start, double step_seconds, aur_batch *w);
/* An empty batch of the given sizes with zero-filled owned tensors for the listed variables. */
AURDEF aur_batch *aur_batch_create(int B, int T, int C, int H, int W, const aur_var_list *surf, const aur_var_list *statics,
                                   const aur_var_list *atmos);
AURDEF void aur_batch_free(aur_batch *b);
/* Variable lookup (NULL if absent, no error). */
AURDEF aur_tensor *aur_batch_surf(const aur_batch *b, const char *name);
AURDEF aur_tensor *aur_batch_atmos(const aur_batch *b, const char *name);
AURDEF aur_tensor *aur_batch_static(const aur_batch *b, const char *name);

/* ---- running the model ---- */

/* One forward step: normalise, crop, encode, backbone, decode, unnormalise.
   The prediction (B, 1, ...) lives on the tape (see batches above). */
AURDEF aur_batch *aur_aurora_forward(aur_model *m, aur_tape *t, const aur_batch *b);
/* Autoregressive rollout: preds[s] for s < steps, each fed back as the
   newest history step (gradients flow through the whole rollout). */
AURDEF int aur_aurora_rollout(aur_model *m, aur_tape *t, const aur_batch *b, int steps, aur_batch **preds);
/* A forecast: the same predictions without gradients, each handed to fn
   (step 0 first; pred lives until fn returns; a non-zero return stops the
   forecast and is returned), holding only the input history and one step
   in memory, however many steps. */
typedef int (*aur_forecast_fn)(void *ctx, int step, const aur_batch *pred);
AURDEF int aur_aurora_forecast(aur_model *m, const aur_batch *b, int steps, aur_forecast_fn fn, void *ctx);

/* A forecast as a CF-1.8 NetCDF-4 file that xarray opens with Aurora's
   names: time (valid times, "hours since" the initial time), level (hPa),
   latitude, longitude; forecast_reference_time and forecast_period; CF
   units and standard names; the static fields without time (static z as
   geopotential_at_surface, as its name z is the atmosphere's). Each
   aur_forecast_nc_add appends one prediction (B 1, T 1, host F32) and
   flushes it, so a long forecast is on disk as it goes. -DAUR_NETCDF. */
typedef struct aur_forecast_nc aur_forecast_nc;
AURDEF aur_forecast_nc *aur_forecast_nc_create(const char *path, double init_time);
AURDEF int aur_forecast_nc_add(aur_forecast_nc *f, const aur_batch *pred);
AURDEF int aur_forecast_nc_close(aur_forecast_nc *f);

/* ---- scores, as WeatherBench2 computes them (weatherbench2/metrics.py) ---- */

/* Latitude weights: each row's cell area on the sphere, divided by their mean (latitudes monotonic, any direction). */
AURDEF int aur_lat_weights(const float *lat, int H, double *w);
/* One variable (and level) at one lead time, over the forecasts added. */
typedef struct aur_score {
    char var[AUR_NAME_LEN];
    int atmos;                /* on pressure levels: level is set */
    double level, lead_hours; /* hPa; hours */
    int n, n_acc;             /* forecasts in the RMSE and in the ACC */
    double sum_mse, sum_acc;  /* running sums */
    double rmse, acc;         /* after aur_scores_finish; acc NaN without a climatology */
} aur_score;
typedef struct aur_scores {
    aur_score *rows;
    int n;
} aur_scores; /* zero-initialise; aur_scores_free */
/* Adds a prediction (B 1, T 1) against step t_truth of a truth series (the
   same grid, or one row taller: the crop's last row is left out) and, for
   ACC, step t_clim of a climatology (NULL: RMSE only). Per variable and
   level: the latitude-weighted spatial mean of the squared error and the
   anomaly correlation, over the cells where all values are finite. */
AURDEF int aur_scores_add(aur_scores *s, double lead_hours, const aur_batch *pred, const aur_batch *truth, int t_truth, const aur_batch *clim,
                          int t_clim);
/* rmse = sqrt(mean of the spatial MSEs), acc = mean of the ACCs. */
AURDEF void aur_scores_finish(aur_scores *s);
/* One JSON object per line: variable, level (atmospheric), lead_hours, n, rmse, acc (with a climatology). */
AURDEF int aur_scores_write_jsonl(const aur_scores *s, const char *path);
AURDEF void aur_scores_free(aur_scores *s);
/* The step of a series at time t (Unix seconds; -1 if none), and a
   climatology's step for valid time t: its only step, or the one with t's
   month, day and time of day in any year (-1 if none). */
AURDEF int aur_series_step_at(const aur_batch *series, double t);
AURDEF int aur_climatology_step(const aur_batch *clim, double t);
/* The fine-tuning loss (the one the golden cases were made with): the mean over variables (surface,
   then atmospheric) of the MSE of normalised prediction and target, over
   the cells where both are finite (AuroraWave predicts NaN where there are
   no waves; everywhere else this is the plain MSE). */
AURDEF aur_tensor *aur_aurora_loss(aur_model *m, aur_tape *t, const aur_batch *pred, const aur_batch *target);
/* The Aurora paper's loss (Bodnar et al. 2025, training objective): a mean
   absolute error of the normalised fields, weighted per variable and by
   latitude (WeatherBench2's cell areas), the surface and the atmosphere
   weighted against each other, scaled by the dataset's weight, over the
   number of variables. Defaults (aur_aurora_mae_defaults), the paper's:
   surface 1/4, atmosphere 1, dataset 1; 2t 3.0, 10u 0.77, 10v 0.66,
   msl 1.5; z 2.8, q 0.78, t 1.7, u 0.87, v 0.6; any other variable 1.
   The data must be finite (it is no loss for AuroraWave's masked seas). */
typedef struct aur_aurora_mae_weights {
    double surf, atmos, dataset; /* the paper's alpha, beta, gamma */
    int latitude;                /* weight each MAE by latitude */
    aur_var_list surf_names, atmos_names;
    double surf_weight[AUR_MAX_VARS], atmos_weight[AUR_MAX_VARS];
} aur_aurora_mae_weights;
AURDEF void aur_aurora_mae_defaults(aur_aurora_mae_weights *w);
AURDEF aur_tensor *aur_aurora_loss_mae(aur_model *m, aur_tape *t, const aur_batch *pred, const aur_batch *target, const aur_aurora_mae_weights *w);

/* Test hooks. A probe sees every named intermediate ("encoder_out",
   "backbone/enc0_blocks_out", "encoder/pos_encode", ...) as it is made,
   with the rollout step of the input batch. */
typedef void (*aur_probe_fn)(void *ctx, const char *name, int step, const aur_tensor *x);
AURDEF void aur_aurora_set_probe(aur_model *m, aur_probe_fn fn, void *ctx);
/* Use these position and scale encodings (L x D floats each, copied) instead
   of computing them: the scale encoding is chaotic (its phases reach 1e8
   rad), so fidelity tests inject the reference's. NULL stops overriding. */
AURDEF int aur_aurora_override_encodings(aur_model *m, const float *pos, const float *scale, int64_t L);

/* ==== Fine-tuning ====
   Every step of the reference's fine-tuning guide as one call here, or one
   key of a JSON run config (aur_trainer): checking the data, new variables
   with their statistics, parameter groups, watching the gradients, planning
   memory, and a training loop with metrics, plots and atomic checkpoints
   that resume bit for bit. */

/* ---- data checks ("triple check your fine-tuning data") ---- */
typedef struct aur_check_opts {
    double outlier_z;        /* |x - loc| / scale above this counts as an outlier (default 10) */
    double max_outlier_frac; /* a larger fraction of outliers is an error, a smaller one a warning (1e-3) */
    double max_abs_mean;     /* |mean| of the normalised data beyond this: the statistics do not fit (warning, 3) */
    double min_std, max_std; /* normalised std outside [min_std, max_std]: warning (0.1, 10) */
    const char *nan_ok;      /* patterns of variables where NaN is data (AuroraWave's waves over land), or NULL */
    int chunk_steps;         /* aur_aurora_check_series: steps read at a time (0: as many as fit in 256 MiB) */
} aur_check_opts;
AURDEF aur_check_opts aur_check_defaults(void);

typedef enum aur_severity { AUR_CHECK_OK = 0, AUR_CHECK_WARNING = 1, AUR_CHECK_ERROR = 2 } aur_severity;

/* One variable's findings; atmospheric variables are checked level by level
   (each with its own statistics) and summarised here. */
typedef struct aur_var_check {
    char name[AUR_NAME_LEN];
    const char *kind;              /* "surf", "static", "atmos" */
    int present;                   /* in the batch */
    int used;                      /* the model has weights for it */
    int64_t count, nonfinite, outliers;
    int zero_fields, fields;       /* 2-D fields (one time, level, sample) that are entirely zero, of all */
    double mean, std, max_abs_z;   /* normalised units, over the finite values (the worst level for atmos) */
    aur_severity severity;
    char message[200];             /* what is wrong, or "" */
} aur_var_check;

typedef struct aur_check_report {
    int n, errors, warnings;
    aur_var_check *vars; /* owned: aur_check_report_free */
} aur_check_report;

/* Checks a batch (physical units) against the model's variables and
   statistics: missing variables, NaN/Inf, all-zero fields (errors; a static
   field of zeros, a land-sea mask over open sea, is a warning), outliers,
   and whether the statistics fit. Returns 0, or AUR_EFORMAT with
   aur_last_error() naming the first variable in error. rep may be NULL. */
AURDEF int aur_aurora_check_batch(const aur_model *m, const aur_batch *b, const aur_check_opts *opts, aur_check_report *rep);
/* The same over every step of an open series, read a chunk of steps at a
   time (opts->chunk_steps): the report of the whole, without holding it in memory. */
AURDEF int aur_aurora_check_series(const aur_model *m, aur_series *s, const aur_check_opts *opts, aur_check_report *rep);
AURDEF void aur_check_report_print(const aur_check_report *rep, FILE *out);
AURDEF void aur_check_report_free(aur_check_report *rep);

/* ---- new variables, groups, freezing ---- */

/* Sets every element of the parameters matching patterns (e.g. zero for new
   encoder patch embeddings, so that new variables leave the old predictions
   unchanged). Returns how many tensors matched. */
AURDEF int aur_model_fill(aur_model *m, const char *patterns, double value);
/* Comma-joined names of the parameters a load did not fill that carry a new
   variable (encoder patch embeddings and decoder heads): the guide's
   separate-learning-rate group. "" if none. Owned: free(). */
AURDEF char *aur_aurora_new_var_params(const aur_model *m, const aur_load_report *rep);

/* ---- exploding gradients ---- */
#define AUR_ALARM_GROUPS 16
#define AUR_ALARM_WINDOW 256

/* Watches the total and per-group gradient norms: a non-finite norm, or a
   log-norm more than z standard deviations above its recent window, raises
   the alarm, naming the group whose norm jumped first (most). */
typedef struct aur_grad_alarm {
    int window;   /* recent steps compared against (default 50, at most AUR_ALARM_WINDOW) */
    double z;     /* threshold in standard deviations of log-norm (default 6) */
    int min_history; /* steps before z-scores are trusted (default 10) */
    int skip;     /* 1: an alarm skips the update */
    int n_groups;
    int count[AUR_ALARM_GROUPS + 1];
    double hist[AUR_ALARM_GROUPS + 1][AUR_ALARM_WINDOW]; /* [0]: the total */
    int64_t alarms;
} aur_grad_alarm;
AURDEF void aur_grad_alarm_init(aur_grad_alarm *a, int window, double z, int skip);
/* 0: normal; 1: alarm (msg says why and where); the norms of alarming steps
   are kept out of the window. */
AURDEF int aur_grad_alarm_check(aur_grad_alarm *a, double total, const double *group_norms, const char *const *group_names,
                                int n_groups, char *msg, size_t size);

/* ---- memory planning ---- */
typedef struct aur_memory_choice {
    aur_optim_kind optimiser;
    unsigned checkpoint; /* the AUR_CHECKPOINT_* modules checkpointed, as aur_aurora_config.checkpoint (0: none) */
    int autocast, pure_bf16, offload_optimiser;
    double trainable_fraction; /* 1 = full fine-tuning; LoRA: the adapters' share */
} aur_memory_choice;
typedef struct aur_memory_plan {
    double params, grads, optimiser, activations, total; /* bytes on the device */
    double host;                                          /* bytes moved to the host (offload) */
} aur_memory_plan;
/* What a training step of cfg on B samples of T history steps, C levels and
   an H x W grid needs on its device: the weights, gradients and optimiser
   state from the parameter table, and the activations as the peak of the
   tape (saved tensors, gradients, workspaces) in that very step, run on the
   meta device (a second or two at 0.25 degrees). The host's share of the
   tape (its structs, a CPU run's matrix-product packing) is not included. */
AURDEF int aur_aurora_memory_plan(const aur_aurora_config *cfg, int B, int T, int C, int H, int W, const aur_memory_choice *ch,
                                  aur_memory_plan *out);

/* ---- series and windows ----
   A series is a batch file with many time steps (T) of one trajectory, one
   model step apart; its time_unix is the time of the last step. */
/* The input window of `history` steps starting at step `start`, or the
   target at step `start` (history 1). Owned. */
AURDEF aur_batch *aur_batch_window(const aur_batch *series, int start, int history, double step_seconds);

/* A window as the rollout uses it: the input's history steps and each
   rollout step's target, read from an open series (aur_series_open). */
#define AUR_MAX_ROLLOUT 64
typedef struct aur_window_ref {
    int series, start; /* which series, and the window's first step */
} aur_window_ref;
typedef struct aur_window {
    aur_window_ref ref;
    aur_batch *input;                    /* history steps, as aur_batch_window(series, start, history) */
    aur_batch *target[AUR_MAX_ROLLOUT];  /* one step each: aur_batch_window(series, start + history + k, 1) */
    int rollout;
} aur_window;
/* Reads a window into w (zeroed at first; its buffers are reused when they
   fit, in pinned host memory when asked). */
AURDEF int aur_window_read(aur_series *s, aur_window_ref ref, int history, int rollout, double step_seconds, int pinned, aur_window *w);
AURDEF void aur_window_free(aur_window *w);

/* ---- a loader that reads ahead ----
   Windows in the order order(ctx, i) gives for i = 0, 1, ... (a pure
   function: the trainer's is its shuffle of seed and epoch), read `depth`
   windows ahead by a background thread while the caller computes (depth 0:
   read when asked, on the caller's thread). order is called from that
   thread. paths[i] (n_paths[i] files) are series i's files, kept by the
   caller while the loader lives; a few series stay open at a time. */
typedef aur_window_ref (*aur_window_order)(void *ctx, int64_t i);
typedef struct aur_loader_opts {
    int history, rollout;  /* steps of each window's input, and targets */
    double step_seconds;   /* the model's step (the windows' times, as aur_batch_window) */
    int depth;             /* windows read ahead, 0..64 */
    int pinned;            /* windows in pinned host memory (a CUDA build, a model on the GPU) */
    const char *renames;   /* weather files' renames, as aur_weather_load's, or NULL */
} aur_loader_opts;
typedef struct aur_loader_stats {
    int64_t windows_read, windows_taken;
    double read_seconds;   /* spent reading (on the thread, beside the steps) */
    double wait_seconds;   /* the caller spent waiting for windows: what the loader costs the run */
} aur_loader_stats;
typedef struct aur_loader aur_loader;
AURDEF aur_loader *aur_loader_create(char **const *paths, const int *n_paths, int n_series, aur_window_order order, void *ctx,
                                     const aur_loader_opts *o);
/* Window i of the order, waiting for it if it is not read yet; valid until
   the next call. Asking for i out of sequence (a resumed run) starts reading
   there. NULL on error, with aur_last_error() naming the file and step. */
AURDEF const aur_window *aur_loader_get(aur_loader *ld, int64_t i);
AURDEF void aur_loader_stats_get(aur_loader *ld, aur_loader_stats *st);
AURDEF void aur_loader_free(aur_loader *ld);

/* ---- TensorBoard event files ---- */
/* Scalars in TensorBoard's event file format (what tf.summary and
   torch.utils.tensorboard write), which TensorBoard shows and Weights &
   Biases (`wandb sync --sync-tensorboard`) and MLflow import. A file's name
   must contain "tfevents" for TensorBoard to find it; runs to compare go in
   sibling directories of one log directory. */
AURDEF int aur_events_create(const char *path, double wall_time); /* a new file (truncated): the version record */
AURDEF int aur_events_scalar(const char *path, double wall_time, int64_t step, const char *tag, double value);
/* Every number of a metrics.jsonl line but "step" as a scalar at that step. */
AURDEF int aur_events_from_json(const char *path, double wall_time, const char *json_line);

/* ---- plots (PNG, through stb_image_write) ---- */
/* One line of a line chart. */
typedef struct aur_plot_series {
    const char *label;   /* legend text */
    const double *x, *y; /* n points; non-finite y values are skipped (gaps) */
    int n;
} aur_plot_series;

/* A line chart PNG (width x height pixels): title, axes with tick labels, a
   legend, up to 8 series. log_y: logarithmic y axis (points <= 0 skipped). */
AURDEF int aur_plot_lines(const char *path, int width, int height, const char *title, const char *xlabel,
                          const aur_plot_series *s, int n_series, int log_y);

/* Several charts stacked vertically in one PNG (loss, grad norm, lr). */
typedef struct aur_plot_panel {
    const char *title;
    const aur_plot_series *series;
    int n_series;
    int log_y;
} aur_plot_panel;
AURDEF int aur_plot_panels(const char *path, int width, int panel_height, const char *xlabel, const aur_plot_panel *p,
                           int n_panels);

/* Several runs' curves on one figure (choosing a learning rate; LoRA against
   full fine-tuning): one panel per metric (names as in metrics.jsonl: "loss",
   "val_loss", "val/tss"; n_metrics 0: loss, val_loss and every val/ metric the
   runs logged), one line per run directory (up to 8), labelled by its name. */
AURDEF int aur_plot_runs(const char *png, const char *const *run_dirs, int n_runs, const char *const *metrics, int n_metrics);

/* Maps side by side: n_maps fields of H x W floats (row 0 at the top), each
   `scale` pixels per cell with a title, on one colour scale (vmin..vmax, or
   from the finite values when vmin >= vmax) shown as a colour bar; NaN is
   grey. diverging: blue-white-red about 0 (errors); else viridis-like. */
AURDEF int aur_plot_maps(const char *path, const float *const *maps, const char *const *titles, int n_maps, int H, int W,
                         int scale, double vmin, double vmax, int diverging, const char *title);

/* A predicted field beside its truth on one colour scale (STEM.png), and
   their difference on a diverging scale (STEM_error.png, titled
   "pred_name - truth_name"); truth NULL: the prediction alone. H x W each. */
AURDEF int aur_plot_versus(const char *stem, const float *pred, const float *truth, int H, int W, const char *pred_name, const char *truth_name,
                           const char *title);
/* Scores against lead time: per variable, prefix + "rmse_VAR.png" (surface)
   or "rmse_VAR_levels.png" (a line per level, up to 8 spread over them). */
AURDEF int aur_scores_plot(const aur_scores *s, const char *prefix);

/* ---- the trainer ----
   A whole run from a JSON config; see README "Fine-tuning" for every key.
   Writes to its output_dir: metrics.jsonl, curves.png, maps_{var}.png,
   checkpoint-{step}/ (model.safetensors, optimizer.safetensors,
   trainer_state.json) and a file "latest" naming the newest checkpoint.
   A checkpoint directory is written under a temporary name and renamed
   when complete, so an abort never leaves a partial one or touches an old one. */
typedef struct aur_trainer aur_trainer;

typedef struct aur_step_info {
    int64_t step;          /* steps done, after this one */
    double loss, grad_norm, lr, seconds;
    double data_seconds;   /* of seconds, the time spent waiting for the step's window (the loader is behind when this grows) */
    int alarm, skipped;
    char alarm_msg[256];
} aur_step_info;

AURDEF aur_trainer *aur_trainer_create(const char *config_path);
/* From a parsed config; relative paths are taken from base_dir (NULL: "."). */
AURDEF aur_trainer *aur_trainer_create_json(const struct cJSON *config, const char *base_dir);
AURDEF void aur_trainer_free(aur_trainer *tr);
/* Continues from a checkpoint directory (NULL: the output_dir's latest). */
AURDEF int aur_trainer_resume(aur_trainer *tr, const char *checkpoint_dir);
/* One optimiser step (forward over rollout_steps, loss, backward, norms,
   alarm, clipping, update). */
AURDEF int aur_trainer_step(aur_trainer *tr, aur_step_info *info);
/* Mean loss over the validation windows (the training ones if none). */
AURDEF int aur_trainer_eval(aur_trainer *tr, double *loss);
/* Writes checkpoint-{step} and points "latest" at it. */
AURDEF int aur_trainer_save(aur_trainer *tr);
/* curves.png and maps_{var}.png for the configured map variables. */
AURDEF int aur_trainer_plot(aur_trainer *tr);
/* The loop: steps to the configured count with progress line, metrics,
   evaluation, plots and checkpoints; then a final save and plots. */
AURDEF int aur_trainer_run(aur_trainer *tr);
AURDEF aur_model *aur_trainer_model(const aur_trainer *tr);
/* What the run will do: the load report (what is new), trainable/frozen/new
   counts, groups and data. aur_trainer_run prints it when it starts. */
AURDEF void aur_trainer_print_setup(const aur_trainer *tr, FILE *out);
AURDEF int64_t aur_trainer_steps_done(const aur_trainer *tr);

#endif /* AUR__AURORA_H */

/* ======================================================================== */
/*                            IMPLEMENTATION                                */
/* ======================================================================== */

#if defined(AURORA_IMPLEMENTATION) && !defined(AUR__CORE_IMPL_DONE)
#define AUR__CORE_IMPL_DONE

/* ==== platform: system headers, configuration macros, threads ====
   What every part of the implementation relies on: POSIX and C headers,
   the allocator and assertion hooks (AUR_MALLOC, AUR_ASSERT), the CUDA
   headers of a CUDA build, OpenMP through _Pragma, and the math of aur_real. */

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

#if defined(AURORA_CUDA) && defined(AUR_CUDA_EMU)
#define AUR__HAS_CUDA 1 /* the CUDA runtime emulated on the CPU: a test build injected it (tests/cuda_emu.h) */
#elif defined(AURORA_CUDA) && defined(__CUDACC__)
#define AUR__HAS_CUDA 1
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#endif
/* Functions both paths run: the CPU loops and the CUDA kernels call the same code. */
#ifdef AUR__HAS_CUDA
#define AUR__HD __host__ __device__
#else
#define AUR__HD
#endif

#if !defined(AUR_MALLOC) && !defined(AUR_REALLOC) && !defined(AUR_FREE)
#define AUR_MALLOC(n) malloc(n)
#define AUR_REALLOC(p, n) realloc(p, n)
#define AUR_FREE(p) free(p)
#elif !defined(AUR_MALLOC) || !defined(AUR_REALLOC) || !defined(AUR_FREE)
#error "define all of AUR_MALLOC, AUR_REALLOC and AUR_FREE, or none"
#endif
#ifndef AUR_ASSERT
#define AUR_ASSERT(x) assert(x)
#endif

#ifdef __cplusplus
#define AUR__TLS thread_local
#else
#define AUR__TLS _Thread_local
#endif

#if defined(AUR_GRIB) && !defined(AUR_NETCDF)
#error "AUR_GRIB adds GRIB files to the NetCDF weather reader: define AUR_NETCDF too (and link -lnetcdf -leccodes)"
#endif

/* a helper some configurations leave unused (e.g. the calendar without AUR_NETCDF in aurora.h alone) */
#if defined(__GNUC__) || defined(__clang__)
#define AUR__MAYBE_UNUSED __attribute__((unused))
#else
#define AUR__MAYBE_UNUSED
#endif

/* OpenMP through _Pragma, so builds without -fopenmp see no unknown pragmas. */
#define AUR__PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) && !defined(AUR_NO_OPENMP)
#include <omp.h>
#define AUR__OMP_FOR_IF(cond) AUR__PRAGMA(omp parallel for schedule(static) if (cond))
#define AUR__OMP_FOR_DYN_IF(cond) AUR__PRAGMA(omp parallel for schedule(dynamic, 1) if (cond))
static int aur__threads(void) { return omp_get_max_threads(); }
static int aur__thread_id(void) { return omp_get_thread_num(); }
#else
#define AUR__OMP_FOR_IF(cond)
#define AUR__OMP_FOR_DYN_IF(cond)
static int aur__threads(void) { return 1; }
static int aur__thread_id(void) { return 0; }
#endif
#define AUR__PAR_MIN 32768 /* elements below which a loop runs on one thread */

/* Math on aur_real: float functions in normal builds, double in test builds. */
#ifdef AUR_REAL_DOUBLE
#define AUR__EXP exp
#define AUR__LOG log
#define AUR__LOG1P log1p
#define AUR__SQRT sqrt
#define AUR__TANH tanh
#define AUR__ERF erf
#define AUR__FABS fabs
#define AUR__SIN sin
#define AUR__COS cos
#else
#define AUR__EXP expf
#define AUR__LOG logf
#define AUR__LOG1P log1pf
#define AUR__SQRT sqrtf
#define AUR__TANH tanhf
#define AUR__ERF erff
#define AUR__FABS fabsf
#define AUR__SIN sinf
#define AUR__COS cosf
#endif

/* qsort for any count: the C library's is undefined for a NULL base, which an
   empty list has (a safetensors header of `{}`), even with nothing to sort. */
static void aur__qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1) qsort(base, n, size, cmp);
}

/* Seconds on the monotonic clock (step times, the loader's waits). */
static double aur__wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ==== errors ==== */

static AUR__TLS char aur__errmsg[2048] = "no error";

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int aur__err(int code, const char *fmt, ...)
{
    char msg[sizeof aur__errmsg]; /* a message may quote the last one */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(aur__errmsg, msg, sizeof msg);
    return code;
}

/* ---- GPU dispatch ----
   An op runs its GPU launcher as `if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_op, args...);`.
   A build without CUDA has no launchers (and can make no CUDA tensor), so there the call
   becomes an error; passing it the arguments keeps them used. */
#ifdef AUR__HAS_CUDA
#define AUR__GPU(launch, ...) launch(__VA_ARGS__)
#else
#define AUR__GPU(launch, ...) aur__no_cuda(#launch, __VA_ARGS__)
static int aur__no_cuda(const char *launch, ...)
{
    return aur__err(AUR_EUNSUPPORTED, "%s: this build has no CUDA (compile the implementation with nvcc -DAURORA_CUDA)", launch);
}
#endif

AURDEF const char *aur_last_error(void) { return aur__errmsg; }

AURDEF const char *aur_error_name(int code)
{
    switch (code) {
    case AUR_OK: return "AUR_OK";
    case AUR_EINVAL: return "AUR_EINVAL";
    case AUR_EIO: return "AUR_EIO";
    case AUR_EFORMAT: return "AUR_EFORMAT";
    case AUR_ESHAPE: return "AUR_ESHAPE";
    case AUR_ENOMEM: return "AUR_ENOMEM";
    case AUR_ECUDA: return "AUR_ECUDA";
    case AUR_ENAN: return "AUR_ENAN";
    case AUR_EUNSUPPORTED: return "AUR_EUNSUPPORTED";
    default: return "AUR_E?";
    }
}

/* ==== memory: host and device allocation ==== */

static void *aur__malloc(size_t n, const char *what)
{
    void *p = AUR_MALLOC(n ? n : 1);
    if (!p) aur__err(AUR_ENOMEM, "out of memory: %zu bytes for %s", n, what);
    return p;
}

static void *aur__calloc(size_t n, const char *what)
{
    void *p = aur__malloc(n, what);
    if (p) memset(p, 0, n);
    return p;
}

static char *aur__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = (char *)aur__malloc(n, "a string");
    if (p) memcpy(p, s, n);
    return p;
}

/* Grows an array of elem-byte items to hold at least want items. */
static int aur__grow(void **arr, int *cap, int want, size_t elem)
{
    if (want <= *cap) return 0;
    if (want > INT_MAX / 2) return aur__err(AUR_ENOMEM, "an array of %d items is more than this library holds", want);
    int nc = *cap ? *cap * 2 : 16;
    while (nc < want) nc *= 2;
    void *p = AUR_REALLOC(*arr, (size_t)nc * elem);
    if (!p) return aur__err(AUR_ENOMEM, "out of memory growing an array to %d items", nc);
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- the GPU's memory: the one place that calls the CUDA runtime for it ----
   Every GPU block of the library is allocated here and counted, so
   aur_cuda_memory can report the current and peak bytes. A build without
   CUDA gets the same functions failing (it can make no CUDA tensor). */
#ifdef AUR__HAS_CUDA
/* GPU blocks and their sizes, so frees can be counted. Allocations are rare
   (slabs and arena chunks), so a plain array is enough. The table, the
   counters and the cuBLAS handle (launch.cu) are the process's, shared by
   every thread: aur__cuda_lock guards them. */
typedef struct aur__cuda_block {
    void *p;
    size_t n;
} aur__cuda_block;
static aur__cuda_block *aur__cuda_blocks;
static int aur__cuda_nblocks, aur__cuda_capblocks;
static size_t aur__cuda_cur, aur__cuda_peak;
static pthread_mutex_t aur__cuda_lock = PTHREAD_MUTEX_INITIALIZER;

static int aur__cuda_check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return 0;
    return aur__err(AUR_ECUDA, "%s: %s", what, cudaGetErrorString(e));
}

/* The allocation and its entry happen under the lock together, so a
   failure's message and the counters agree with the table. */
static void *aur__cuda_alloc(size_t n, const char *what)
{
    void *p = NULL;
    pthread_mutex_lock(&aur__cuda_lock);
    int full = aur__grow((void **)&aur__cuda_blocks, &aur__cuda_capblocks, aur__cuda_nblocks + 1, sizeof(aur__cuda_block));
    cudaError_t e = full ? cudaSuccess : cudaMalloc(&p, n ? n : 1);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear it: the failed allocation is reported here, not by the next launch */
        aur__err(AUR_ENOMEM, "GPU: %s for %.2f GiB (%s; the library holds %.2f GiB)", cudaGetErrorString(e),
                 (double)n / 1073741824.0, what, (double)aur__cuda_cur / 1073741824.0);
        p = NULL;
    } else if (p) {
        aur__cuda_blocks[aur__cuda_nblocks].p = p;
        aur__cuda_blocks[aur__cuda_nblocks++].n = n;
        aur__cuda_cur += n;
        if (aur__cuda_cur > aur__cuda_peak) aur__cuda_peak = aur__cuda_cur;
    }
    pthread_mutex_unlock(&aur__cuda_lock);
    return p;
}

static void aur__cuda_free(void *p)
{
    pthread_mutex_lock(&aur__cuda_lock);
    for (int i = 0; i < aur__cuda_nblocks; i++) {
        if (aur__cuda_blocks[i].p != p) continue;
        aur__cuda_cur -= aur__cuda_blocks[i].n;
        aur__cuda_blocks[i] = aur__cuda_blocks[--aur__cuda_nblocks];
        break;
    }
    cudaFree(p);
    pthread_mutex_unlock(&aur__cuda_lock);
}

/* Pinned host memory mapped into the GPU's address space (unified
   addressing: the same pointer works in kernels and on the host). Not
   counted as GPU memory. */
static void *aur__pinned_alloc(size_t n, const char *what)
{
    void *p = NULL, *dev = NULL;
    if (aur__cuda_check(cudaHostAlloc(&p, n ? n : 1, cudaHostAllocMapped), what)) return NULL;
    if (cudaHostGetDevicePointer(&dev, p, 0) != cudaSuccess || dev != p) { /* kernels get p itself */
        cudaFreeHost(p);
        aur__err(AUR_EUNSUPPORTED, "%s: the GPU does not map pinned memory at its host address (no unified addressing)", what);
        return NULL;
    }
    return p;
}

static void aur__pinned_free(void *p)
{
    if (p) cudaFreeHost(p);
}

/* Page-locked host memory, not mapped: host buffers (prefetched windows) the
   GPU copies from by DMA, without the driver's staging copy. */
static void *aur__page_locked_alloc(size_t n, const char *what)
{
    void *p = NULL;
    return aur__cuda_check(cudaMallocHost(&p, n ? n : 1), what) ? NULL : p;
}

static void aur__page_locked_free(void *p)
{
    if (p) cudaFreeHost(p);
}

static int aur__cuda_copy(void *dst, aur_device dd, const void *src, aur_device sd, size_t n)
{
#ifdef AUR_CUDA_EMU /* the emulator checks that the pointers are where the devices say */
    enum cudaMemcpyKind k = dd == AUR_CPU ? cudaMemcpyDeviceToHost
                            : sd == AUR_CPU ? cudaMemcpyHostToDevice
                                            : cudaMemcpyDeviceToDevice;
#else /* unified addressing finds the direction, also for the pinned host memory of offloaded state */
    enum cudaMemcpyKind k = cudaMemcpyDefault;
    (void)dd, (void)sd;
#endif
    return aur__cuda_check(cudaMemcpy(dst, src, n, k), "cudaMemcpy");
}

static int aur__cuda_zero(void *p, size_t n) { return aur__cuda_check(cudaMemset(p, 0, n), "cudaMemset"); }

AURDEF void aur_cuda_memory(size_t *current, size_t *peak)
{
    pthread_mutex_lock(&aur__cuda_lock);
    if (current) *current = aur__cuda_cur;
    if (peak) *peak = aur__cuda_peak;
    pthread_mutex_unlock(&aur__cuda_lock);
}

AURDEF void aur_cuda_reset_peak(void)
{
    pthread_mutex_lock(&aur__cuda_lock);
    aur__cuda_peak = aur__cuda_cur;
    pthread_mutex_unlock(&aur__cuda_lock);
}

AURDEF int aur_cuda_available(void)
{
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

static int aur__cuda_build(void) { return 1; }
#else
static void *aur__cuda_alloc(size_t n, const char *what)
{
    aur__err(AUR_EUNSUPPORTED, "%s: this build has no CUDA (compile the implementation with nvcc -DAURORA_CUDA)", what);
    (void)n;
    return NULL;
}

static void aur__cuda_free(void *p) { (void)p; }

static void *aur__pinned_alloc(size_t n, const char *what)
{
    aur__err(AUR_EUNSUPPORTED, "%s: pinned memory needs a CUDA build", what);
    (void)n;
    return NULL;
}

static void aur__pinned_free(void *p) { (void)p; }
static void *aur__page_locked_alloc(size_t n, const char *what) { return aur__pinned_alloc(n, what); }
static void aur__page_locked_free(void *p) { (void)p; }

static int aur__cuda_copy(void *dst, aur_device dd, const void *src, aur_device sd, size_t n)
{
    (void)dst, (void)dd, (void)src, (void)sd, (void)n;
    return aur__err(AUR_EUNSUPPORTED, "copy to or from CUDA memory: this build has no CUDA");
}

static int aur__cuda_zero(void *p, size_t n)
{
    (void)p, (void)n;
    return aur__err(AUR_EUNSUPPORTED, "cudaMemset: this build has no CUDA");
}

AURDEF void aur_cuda_memory(size_t *current, size_t *peak)
{
    if (current) *current = 0;
    if (peak) *peak = 0;
}

AURDEF void aur_cuda_reset_peak(void) {}

AURDEF int aur_cuda_available(void) { return 0; }

static int aur__cuda_build(void) { return 0; }
#endif

/* Addresses on the meta device: aligned, distinct within a thread, never
   backed by memory and never read (only the heap's bookkeeping compares them). */
static void *aur__meta_alloc(size_t n)
{
    static AUR__TLS uintptr_t top = 4096;
    uintptr_t p = top;
    top += (n + 4095) & ~(uintptr_t)4095;
    return (void *)p;
}

/* Memory on a device. All GPU memory of the library comes through here. */
static void *aur__dev_alloc(aur_device dev, size_t n, const char *what)
{
    if (dev == AUR_META) return aur__meta_alloc(n);
    return dev == AUR_CPU ? aur__malloc(n, what) : aur__cuda_alloc(n, what);
}

static void aur__dev_free(aur_device dev, void *p)
{
    if (!p || dev == AUR_META) return;
    if (dev == AUR_CPU) AUR_FREE(p);
    else aur__cuda_free(p);
}

/* Copies n bytes between any two devices. */
static int aur__copy_bytes(void *dst, aur_device dd, const void *src, aur_device sd, size_t n)
{
    if (n == 0 || dd == AUR_META || sd == AUR_META) return 0; /* no bytes to move */
    if (dd == AUR_CPU && sd == AUR_CPU) {
        memmove(dst, src, n);
        return 0;
    }
    return aur__cuda_copy(dst, dd, src, sd, n);
}

static int aur__zero_bytes(void *p, aur_device dev, size_t n)
{
    if (n == 0 || dev == AUR_META) return 0;
    if (dev == AUR_CPU) {
        memset(p, 0, n);
        return 0;
    }
    return aur__cuda_zero(p, n);
}

/* ---- a growable string: headers, JSON, metrics lines ---- */
typedef struct aur__buf {
    char *p;
    size_t n, cap;
    int failed;
} aur__buf;

/* Room for `more` bytes and a NUL after the current end; on failure the buffer is marked failed. */
static int aur__buf_reserve(aur__buf *b, size_t more)
{
    if (b->failed) return 0;
    if (b->p && b->n + more + 1 <= b->cap) return 1;
    size_t nc = (b->cap ? b->cap * 2 : 4096) + more;
    char *np = (char *)AUR_REALLOC(b->p, nc);
    if (!np) {
        b->failed = 1;
        return 0;
    }
    b->p = np;
    b->cap = nc;
    return 1;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void aur__buf_printf(aur__buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = 1;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        if (!aur__buf_reserve(b, (size_t)k)) return;
    }
}

/* Appends n raw bytes (NUL bytes included). */
static void aur__buf_append(aur__buf *b, const char *p, size_t n)
{
    if (!aur__buf_reserve(b, n)) return;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* ==== a name index: name -> position in a list, in a step or two ====
   Open addressing over slots holding position + 1 (0: empty), at most half
   full, so adding n names costs O(n) however many there are (a model's
   parameters, Aurora's normalisation statistics). The names stay in the
   caller's list; name_of(set, k) reads the k-th. */

typedef struct aur__names {
    int *slot;
    int cap, n; /* slots (a power of two), names indexed */
} aur__names;

typedef const char *(*aur__name_of)(const void *set, int k);

/* FNV-1a, then a finaliser: FNV's low bits (the ones a table masks) mix
   poorly, and names like "v1".."v400000" collided into long probe runs. */
static uint64_t aur__hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 33, h *= 0xff51afd7ed558ccdull, h ^= h >> 33; /* murmur3's fmix64 */
    return h;
}

/* The position of name, or -1. */
static int aur__names_find(const aur__names *ix, const char *name, aur__name_of name_of, const void *set)
{
    if (!ix->cap) return -1;
    for (uint64_t h = aur__hash(name);; h++) {
        int slot = ix->slot[h & (uint64_t)(ix->cap - 1)];
        if (!slot) return -1;
        if (!strcmp(name_of(set, slot - 1), name)) return slot - 1;
    }
}

static void aur__names_put(int *slot, int cap, int k, const char *name)
{
    uint64_t h = aur__hash(name);
    while (slot[h & (uint64_t)(cap - 1)]) h++;
    slot[h & (uint64_t)(cap - 1)] = k + 1;
}

/* Indexes the k-th name of the set (k = the number indexed so far), growing the table as needed. */
static int aur__names_add(aur__names *ix, int k, aur__name_of name_of, const void *set)
{
    AUR_ASSERT(k == ix->n);
    if (2 * (ix->n + 1) > ix->cap) {
        int cap = ix->cap ? 2 * ix->cap : 64;
        int *slot = (int *)aur__calloc(sizeof(int) * (size_t)cap, "a name index");
        if (!slot) return AUR_ENOMEM;
        for (int i = 0; i < ix->n; i++) aur__names_put(slot, cap, i, name_of(set, i));
        AUR_FREE(ix->slot);
        ix->slot = slot, ix->cap = cap;
    }
    aur__names_put(ix->slot, ix->cap, k, name_of(set, k));
    ix->n++;
    return 0;
}

/* ==== memory: the arena ====
   A bump allocator made of chunks, for the step's small structs (tensors,
   nodes) and the workspaces an op takes and gives back (mark, release).
   Pointers never move during a step; a reset keeps the chunks. Tensor data
   lives in the tape's heap (heap.c). */

#define AUR__ALIGN 64
#define AUR__CHUNK_MIN ((size_t)1 << 20)
#define AUR__CHUNK_DEV_MAX ((size_t)256 << 20)

typedef struct aur__chunk {
    struct aur__chunk *next;
    char *base;
    size_t cap;
} aur__chunk;

typedef struct aur__arena {
    aur_device device;
    aur__chunk *first, *cur;
    size_t used;    /* bytes used in cur */
    size_t before;  /* capacity of the chunks before cur */
} aur__arena;

typedef struct aur__mark {
    aur__chunk *cur;
    size_t used, before;
} aur__mark;

static size_t aur__align(size_t n) { return (n + AUR__ALIGN - 1) & ~(size_t)(AUR__ALIGN - 1); }

static aur__chunk *aur__chunk_new(aur_device dev, size_t cap)
{
    aur__chunk *c = (aur__chunk *)aur__malloc(sizeof *c, "an arena chunk");
    if (!c) return NULL;
    /* host chunks are over-allocated to align the base */
    c->base = (char *)aur__dev_alloc(dev, cap + (dev == AUR_CPU ? AUR__ALIGN : 0), "the activation arena");
    if (!c->base) {
        AUR_FREE(c);
        return NULL;
    }
    c->cap = cap;
    c->next = NULL;
    return c;
}

static char *aur__chunk_data(const aur__arena *a, const aur__chunk *c)
{
    if (a->device != AUR_CPU) return c->base;
    return (char *)(((uintptr_t)c->base + AUR__ALIGN - 1) & ~(uintptr_t)(AUR__ALIGN - 1));
}

static void *aur__arena_alloc(aur__arena *a, size_t n)
{
    n = aur__align(n);
    for (;;) {
        if (a->cur && a->used + n <= a->cur->cap) {
            char *p = aur__chunk_data(a, a->cur) + a->used;
            a->used += n;
            return p;
        }
        if (a->cur && a->cur->next) { /* a spare chunk from an earlier step */
            a->before += a->cur->cap;
            a->cur = a->cur->next;
            a->used = 0;
            continue;
        }
        size_t cap = n > AUR__CHUNK_MIN ? n : AUR__CHUNK_MIN;
        if (a->cur && cap < 2 * a->cur->cap) cap = 2 * a->cur->cap;
        /* on a GPU, doubling could ask for twice what the step needs: grow by at most 256 MiB */
        if (a->device != AUR_CPU && cap > AUR__CHUNK_DEV_MAX) cap = n > AUR__CHUNK_DEV_MAX ? n : AUR__CHUNK_DEV_MAX;
        aur__chunk *c = aur__chunk_new(a->device, cap);
        if (!c) return NULL;
        if (a->cur) {
            a->cur->next = c;
            a->before += a->cur->cap;
        } else {
            a->first = c;
        }
        a->cur = c;
        a->used = 0;
    }
}

static void aur__arena_free_chunks(aur__arena *a)
{
    aur__chunk *c = a->first;
    while (c) {
        aur__chunk *n = c->next;
        aur__dev_free(a->device, c->base);
        AUR_FREE(c);
        c = n;
    }
    a->first = a->cur = NULL;
    a->used = a->before = 0;
}

/* Starts over in the first chunk; the chunks stay, with their pages, so the next step like this one allocates nothing. */
static void aur__arena_reset(aur__arena *a)
{
    a->cur = a->first;
    a->used = a->before = 0;
}

static aur__mark aur__arena_mark(const aur__arena *a)
{
    aur__mark m;
    m.cur = a->cur;
    m.used = a->used;
    m.before = a->before;
    return m;
}

static void aur__arena_release(aur__arena *a, aur__mark m)
{
    a->cur = m.cur ? m.cur : a->first;
    a->used = m.cur ? m.used : 0;
    a->before = m.cur ? m.before : 0;
}

/* ==== memory: the tape's heap ====
   Tensor data, gradients and the buffers nodes keep for backward come from a
   heap of large chunks, so that each can be given back as soon as nothing
   needs it and its bytes reused by the next allocation (the arena, a bump
   allocator, keeps everything to the end of the step). The free space is a
   list of ranges sorted by address; an allocation takes the smallest range
   that fits (best fit) and a free merges a range with its neighbours. The
   same sequence of allocations lands at the same places, so a step like the
   last one touches only memory the last one touched, and adds no chunk.
   The bookkeeping lives on the host for both devices. */

/* What the bytes are for (the split aur_tape_memory_stats reports). */
enum { AUR__MEM_ACTIVATION, AUR__MEM_GRADIENT, AUR__MEM_SAVED, AUR__MEM_KINDS };

#define AUR__HEAP_CHUNK_MIN ((size_t)16 << 20)

typedef struct aur__range {
    char *base;
    size_t size;
    int chunk; /* ranges of different chunks never merge, even when their addresses touch */
} aur__range;

typedef struct aur__heap_chunk {
    char *base; /* aligned */
    void *raw;  /* what the device allocator returned */
    size_t cap;
} aur__heap_chunk;

typedef struct aur__heap {
    aur_device device;
    aur__heap_chunk *chunk;
    int n_chunks, cap_chunks;
    aur__range *free;  /* sorted by address */
    int n_free, cap_free;
    size_t capacity;   /* all chunks */
    size_t used;       /* bytes handed out */
    size_t kind[AUR__MEM_KINDS]; /* of them, by kind */
} aur__heap;

static int aur__heap_insert_free(aur__heap *h, int at, aur__range r)
{
    if (aur__grow((void **)&h->free, &h->cap_free, h->n_free + 1, sizeof *h->free)) return AUR_ENOMEM;
    memmove(h->free + at + 1, h->free + at, sizeof *h->free * (size_t)(h->n_free - at));
    h->free[at] = r;
    h->n_free++;
    return 0;
}

/* The first free range at or after address p. */
static int aur__heap_lower_bound(const aur__heap *h, const char *p)
{
    int lo = 0, hi = h->n_free;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (h->free[mid].base < p) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int aur__heap_add_chunk(aur__heap *h, size_t want)
{
    size_t cap = want > AUR__HEAP_CHUNK_MIN ? want : AUR__HEAP_CHUNK_MIN;
    if (h->device == AUR_CPU && cap < h->capacity) cap = h->capacity; /* double the host heap: untouched pages cost nothing */
    if (h->device != AUR_CPU && cap > AUR__CHUNK_DEV_MAX && want <= AUR__CHUNK_DEV_MAX) cap = AUR__CHUNK_DEV_MAX;
    if (aur__grow((void **)&h->chunk, &h->cap_chunks, h->n_chunks + 1, sizeof *h->chunk)) return AUR_ENOMEM;
    void *raw = aur__dev_alloc(h->device, cap + (h->device == AUR_CPU ? AUR__ALIGN : 0), "the tape's tensors");
    if (!raw) return AUR_ENOMEM;
    char *base = h->device == AUR_CPU ? (char *)(((uintptr_t)raw + AUR__ALIGN - 1) & ~(uintptr_t)(AUR__ALIGN - 1)) : (char *)raw;
    aur__range r = {base, cap, h->n_chunks};
    if (aur__heap_insert_free(h, aur__heap_lower_bound(h, base), r)) {
        aur__dev_free(h->device, raw);
        return AUR_ENOMEM;
    }
    h->chunk[h->n_chunks].base = base, h->chunk[h->n_chunks].raw = raw, h->chunk[h->n_chunks].cap = cap;
    h->n_chunks++;
    h->capacity += cap;
    return 0;
}

/* n bytes (rounded to whole 64-byte lines), or NULL with an error. */
static void *aur__heap_alloc(aur__heap *h, size_t n, int kind)
{
    n = aur__align(n ? n : 1);
    int best = -1;
    for (int i = 0; i < h->n_free; i++)
        if (h->free[i].size >= n && (best < 0 || h->free[i].size < h->free[best].size)) best = i;
    if (best < 0) {
        if (aur__heap_add_chunk(h, n)) return NULL;
        return aur__heap_alloc(h, n, kind);
    }
    char *p = h->free[best].base;
    h->free[best].base += n;
    h->free[best].size -= n;
    if (!h->free[best].size) {
        memmove(h->free + best, h->free + best + 1, sizeof *h->free * (size_t)(h->n_free - best - 1));
        h->n_free--;
    }
    h->used += n;
    h->kind[kind] += n;
    return p;
}

/* The chunk holding p. */
static int aur__heap_chunk_of(const aur__heap *h, const char *p)
{
    for (int c = 0; c < h->n_chunks; c++)
        if (p >= h->chunk[c].base && p < h->chunk[c].base + h->chunk[c].cap) return c;
    AUR_ASSERT(0 && "aur__heap_free: not a block of this heap");
    return -1;
}

/* Gives back a block of n bytes (as asked of aur__heap_alloc). Never fails:
   if the free list cannot grow, the bytes are lost until the reset. */
static void aur__heap_free(aur__heap *h, void *ptr, size_t n, int kind)
{
    if (!ptr) return;
    char *p = (char *)ptr;
    n = aur__align(n ? n : 1);
    h->used -= n;
    h->kind[kind] -= n;
#ifdef AUR_POISON_FREED /* test builds: a read of freed data gives NaN, never a plausible number */
    if (h->device == AUR_CPU) memset(p, 0xFF, n);
#endif
    int c = aur__heap_chunk_of(h, p), at = aur__heap_lower_bound(h, p);
    int left = at > 0 && h->free[at - 1].chunk == c && h->free[at - 1].base + h->free[at - 1].size == p;
    int right = at < h->n_free && h->free[at].chunk == c && p + n == h->free[at].base;
    if (left && right) {
        h->free[at - 1].size += n + h->free[at].size;
        memmove(h->free + at, h->free + at + 1, sizeof *h->free * (size_t)(h->n_free - at - 1));
        h->n_free--;
    } else if (left) {
        h->free[at - 1].size += n;
    } else if (right) {
        h->free[at].base = p;
        h->free[at].size += n;
    } else {
        aur__range r = {p, n, c};
        aur__heap_insert_free(h, at, r);
    }
}

/* Everything free again; the chunks stay (and keep their pages). */
static void aur__heap_reset(aur__heap *h)
{
    h->n_free = 0;
    for (int c = 0; c < h->n_chunks; c++) {
        aur__range r = {h->chunk[c].base, h->chunk[c].cap, c};
        aur__heap_insert_free(h, aur__heap_lower_bound(h, r.base), r);
    }
    h->used = 0;
    memset(h->kind, 0, sizeof h->kind);
}

static void aur__heap_release(aur__heap *h)
{
    for (int c = 0; c < h->n_chunks; c++) aur__dev_free(h->device, h->chunk[c].raw);
    AUR_FREE(h->chunk);
    AUR_FREE(h->free);
    memset(h, 0, sizeof *h);
}

/* ==== tensors ==== */

AURDEF aur_shape aur_shapev(int ndim, const int64_t *d)
{
    aur_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    for (int i = 0; i < ndim && i < AUR_MAX_DIMS; i++) s.d[i] = d[i];
    return s;
}
AURDEF aur_shape aur_shape1(int64_t a) { return aur_shapev(1, &a); }
AURDEF aur_shape aur_shape2(int64_t a, int64_t b)
{
    int64_t d[2] = {a, b};
    return aur_shapev(2, d);
}
AURDEF aur_shape aur_shape3(int64_t a, int64_t b, int64_t c)
{
    int64_t d[3] = {a, b, c};
    return aur_shapev(3, d);
}
AURDEF aur_shape aur_shape4(int64_t a, int64_t b, int64_t c, int64_t e)
{
    int64_t d[4] = {a, b, c, e};
    return aur_shapev(4, d);
}
AURDEF aur_shape aur_shape5(int64_t a, int64_t b, int64_t c, int64_t e, int64_t f)
{
    int64_t d[5] = {a, b, c, e, f};
    return aur_shapev(5, d);
}

AURDEF int64_t aur_shape_numel(aur_shape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.d[i];
    return n;
}

AURDEF aur_shape aur_tensor_shape(const aur_tensor *t) { return aur_shapev(t->ndim, t->shape); }

AURDEF char *aur_shape_str(const int64_t *shape, int ndim, char *buf, size_t size)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
    return buf;
}

/* Checks a shape: rank 0..AUR_MAX_DIMS, dims >= 0, numel fits. */
static int aur__shape_ok(aur_shape s, const char *what)
{
    if (s.ndim < 0 || s.ndim > AUR_MAX_DIMS)
        return aur__err(AUR_ESHAPE, "%s: rank %d is outside 0..%d", what, s.ndim, AUR_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) {
        if (s.d[i] < 0) return aur__err(AUR_ESHAPE, "%s: dim %d is negative (%lld)", what, i, (long long)s.d[i]);
        if (s.d[i] && n > INT64_MAX / 16 / s.d[i])
            return aur__err(AUR_ESHAPE, "%s: the shape has too many elements", what);
        n *= s.d[i];
    }
    return 0;
}

static size_t aur__dtype_size(aur_dtype dt) { return dt == AUR_BF16 ? 2 : sizeof(aur_real); }
static size_t aur__nbytes(const aur_tensor *t) { return (size_t)t->numel * aur__dtype_size(t->dtype); }

static void aur__tensor_init(aur_tensor *t, aur_dtype dtype, aur_device device, aur_shape s)
{
    memset(t, 0, sizeof *t);
    t->ndim = s.ndim;
    for (int i = 0; i < s.ndim; i++) t->shape[i] = s.d[i];
    t->numel = aur_shape_numel(s);
    t->dtype = dtype;
    t->device = device;
}

AURDEF aur_tensor *aur_tensor_create(aur_dtype dtype, aur_device device, aur_shape shape)
{
    if (aur__shape_ok(shape, "aur_tensor_create")) return NULL;
    aur_tensor *t = (aur_tensor *)aur__malloc(sizeof *t, "a tensor");
    if (!t) return NULL;
    aur__tensor_init(t, dtype, device, shape);
    t->owned = 1;
    t->data = aur__dev_alloc(device, aur__nbytes(t), "aur_tensor_create");
    if (!t->data || aur__zero_bytes(t->data, device, aur__nbytes(t))) {
        aur__dev_free(device, t->data);
        AUR_FREE(t);
        return NULL;
    }
    return t;
}

AURDEF void aur_tensor_free(aur_tensor *t)
{
    if (!t) return;
    AUR_ASSERT(t->owned && "aur_tensor_free: only tensors from aur_tensor_create");
    if (t->owned == 2) aur__page_locked_free(t->data);
    else aur__dev_free(t->device, t->data);
    aur__dev_free(t->device, t->grad);
    AUR_FREE(t);
}

/* An owned host tensor, zero-filled, in page-locked memory (a CUDA build): a
   prefetched window the GPU copies without a staging buffer. */
static aur_tensor *aur__tensor_create_pinned(aur_dtype dtype, aur_shape shape)
{
    if (aur__shape_ok(shape, "a pinned tensor")) return NULL;
    aur_tensor *t = (aur_tensor *)aur__malloc(sizeof *t, "a tensor");
    if (!t) return NULL;
    aur__tensor_init(t, dtype, AUR_CPU, shape);
    t->owned = 2;
    t->data = aur__page_locked_alloc(aur__nbytes(t), "a window in pinned memory");
    if (!t->data) return AUR_FREE(t), (aur_tensor *)NULL;
    memset(t->data, 0, aur__nbytes(t));
    return t;
}

AURDEF void aur_tensor_zero_grad(aur_tensor *t)
{
    if (t && t->grad) aur__zero_bytes(t->grad, t->device, (size_t)t->numel * sizeof(aur_real));
    if (t) t->grad_written = 0;
}

AURDEF aur_real *aur_tensor_f32(aur_tensor *t)
{
    if (!t) return NULL;
    if (t->dtype != AUR_F32 || t->device != AUR_CPU) {
        aur__err(AUR_EINVAL, "aur_tensor_f32: the tensor is not F32 in host memory");
        return NULL;
    }
    return (aur_real *)t->data;
}

/* bfloat16 is the top half of a float32. Rounding to nearest even: add
   0x7FFF plus the lowest kept bit, then truncate; NaN stays a quiet NaN. */
AURDEF uint16_t aur_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

AURDEF float aur_bf16_to_f32(uint16_t x)
{
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

AURDEF float aur_round_bf16(float x) { return aur_bf16_to_f32(aur_f32_to_bf16(x)); }

/* IEEE half to float: normals, subnormals, infinities and NaN. */
AURDEF float aur_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, u;
    if (exp == 0x1F) {
        u = sign | 0x7F800000u | (man << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400u));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Copies n aur_real values from host src into t (any device or dtype). */
AURDEF int aur_tensor_set(aur_tensor *t, const aur_real *src, int64_t n)
{
    if (!t || n != t->numel)
        return aur__err(AUR_ESHAPE, "aur_tensor_set: %lld values for a tensor of %lld", (long long)n,
                        t ? (long long)t->numel : 0LL);
    if (t->dtype == AUR_F32) return aur__copy_bytes(t->data, t->device, src, AUR_CPU, (size_t)n * sizeof(aur_real));
    uint16_t *tmp = (uint16_t *)aur__malloc((size_t)n * 2, "aur_tensor_set");
    if (!tmp) return AUR_ENOMEM;
    for (int64_t i = 0; i < n; i++) tmp[i] = aur_f32_to_bf16((float)src[i]);
    int rc = aur__copy_bytes(t->data, t->device, tmp, AUR_CPU, (size_t)n * 2);
    AUR_FREE(tmp);
    return rc;
}

AURDEF int aur_tensor_get(const aur_tensor *t, aur_real *dst, int64_t n)
{
    if (!t || n != t->numel)
        return aur__err(AUR_ESHAPE, "aur_tensor_get: %lld values from a tensor of %lld", (long long)n,
                        t ? (long long)t->numel : 0LL);
    if (t->device == AUR_META) return aur__err(AUR_EUNSUPPORTED, "aur_tensor_get: a tensor on the meta device has no values");
    if (t->dtype == AUR_F32) return aur__copy_bytes(dst, AUR_CPU, t->data, t->device, (size_t)n * sizeof(aur_real));
    uint16_t *tmp = (uint16_t *)aur__malloc((size_t)n * 2, "aur_tensor_get");
    if (!tmp) return AUR_ENOMEM;
    int rc = aur__copy_bytes(tmp, AUR_CPU, t->data, t->device, (size_t)n * 2);
    for (int64_t i = 0; i < n && !rc; i++) dst[i] = aur_bf16_to_f32(tmp[i]);
    AUR_FREE(tmp);
    return rc;
}

/* ==== tape: recording ops for backward ==== */

/* The bytes of a tape tensor (data or gradient), with who holds them: the
   forward's live tensors (users, until their scope ends) and each recorded
   node whose backward reads them (holders, until it has run); they go when
   neither is left. Shared by views. Bytes whose values
   are all BF16 numbers (autocast's products and copies of them) go to two
   bytes each once only backward holds them, as torch's autocast saves the
   BF16 casts it made; a node gets them back in F32 for its backward. */
typedef struct aur__storage {
    void *ptr;       /* NULL once let go, or once packed */
    uint16_t *packed; /* the values as BF16, when packed */
    size_t bytes;    /* of the F32 (or index) bytes */
    int holders;     /* nodes (or the one owner of a buffer, a gradient, a remade copy) */
    int users;       /* the forward's live tensors on them */
    unsigned char device, kind; /* kind: AUR__MEM_* */
    unsigned char bf16; /* every value is exactly a BF16 number */
} aur__storage;

/* How an op makes its output's bytes again from its inputs (GELU, layer norm,
   a gather: cheaper to redo than to keep). A node whose backward reads such
   an output holds the inputs instead, so the output's bytes go with its
   scope and are made again, for that backward only, if they are gone. */
typedef struct aur__rebuild {
    int (*fn)(aur_tape *t, const struct aur__rebuild *r, aur_tensor *y); /* fills y->data */
    aur_tensor *in[3];
    int kind;
    double arg;
    const void *aux[2];
} aur__rebuild;

typedef struct aur__node aur__node;
/* Adds this op's contribution to the gradients of its inputs. */
typedef int (*aur__backward_fn)(aur_tape *t, aur__node *n);

struct aur__node {
    const char *op;
    aur__backward_fn backward;
    aur_tensor *out;
    aur_tensor **in; /* n_in inputs (some may be NULL) */
    int n_in;
    void *saved[3];  /* op-specific buffers kept for backward */
    int64_t iarg[8];
    double farg[4];
    aur_segment_fn fn; /* checkpoint segments */
    void *ctx;
    aur__storage **held; /* what backward reads (inputs' data, saved buffers): let go once it has run */
    int n_held, cap_held;
    aur_tensor **rebuilt; /* tensors it reads whose bytes may be gone when it runs: made again (aur__rebuild) or unpacked */
    unsigned char *direct; /* [i]: the backward itself reads rebuilt[i] (not only a later entry's recipe) */
    int n_rebuilt, cap_rebuilt;
};

/* The blocks of aur__tape_object: kept across resets, freed with the tape. */
typedef struct aur__object {
    void *p;
    size_t size;
} aur__object;
typedef struct aur__objects {
    aur__object *slot;
    int n, cap, used; /* slots with a block, the array's capacity, slots handed out this step */
} aur__objects;

struct aur_tape {
    aur__objects objects;  /* per-step structs handed to the caller (aur__tape_object) */
    aur__arena main[AUR__DEVICES]; /* [device]: the step's structs and the ops' workspaces */
    aur__arena per_thread; /* the CPU's per-thread workspaces (matrix-product packing, attention tiles): a GPU has none */
    aur__heap heap[AUR__DEVICES]; /* [device]: tensor data, gradients, saved buffers */
    aur_tensor **live;     /* tensors the forward still holds, in creation order (scopes let them go) */
    int n_live, cap_live;
    aur__node **nodes;
    int n_nodes, cap_nodes;
    int grad_on, training, autocast, fused_attention;
    int no_record;   /* inside a checkpointed forward: propagate requires_grad, record nothing */
    int backward_done;
    int backward_rc; /* an allocation that failed inside a backward function */
    uint64_t seed, rng_offset;
    aur_memory_stats at_peak;
    size_t device_peak[AUR__DEVICES]; /* the most each device held at once (heap and arena) */
    aur__node unrecorded; /* what aur__record hands out when nothing is recorded: ops fill it in harmlessly */
};

static void aur__objects_free(aur__objects *o)
{
    for (int i = 0; i < o->n; i++) AUR_FREE(o->slot[i].p);
    AUR_FREE(o->slot);
}

/* A zeroed struct of a step's result that the caller holds a pointer to
   (Aurora's prediction batches), valid until the next aur_tape_reset, which
   hands the same block to the next step's k-th request: a step like the last
   one allocates nothing. No block is freed before the tape, so a free
   function may look at the struct at any time before aur_tape_free (a block
   too small for a request becomes a spare slot rather than being freed). */
static void *aur__tape_object(aur_tape *t, size_t bytes)
{
    aur__objects *o = &t->objects;
    if (aur__grow((void **)&o->slot, &o->cap, o->n + 2, sizeof *o->slot)) return NULL;
    if (o->used == o->n) {
        o->slot[o->n].p = NULL;
        o->slot[o->n++].size = 0;
    }
    aur__object *s = &o->slot[o->used];
    if (s->size < bytes) {
        void *p = aur__malloc(bytes, "a result struct on the tape");
        if (!p) return NULL;
        if (s->p) o->slot[o->n++] = *s;
        s->p = p;
        s->size = bytes;
    }
    o->used++;
    memset(s->p, 0, bytes);
    return s->p;
}

AURDEF aur_tape *aur_tape_create(void)
{
    aur_tape *t = (aur_tape *)aur__calloc(sizeof *t, "a tape");
    if (!t) return NULL;
    for (int d = 0; d < AUR__DEVICES; d++) {
        t->main[d].device = (aur_device)d;
        t->heap[d].device = (aur_device)d;
    }
    t->per_thread.device = AUR_CPU;
    t->grad_on = 1;
    t->training = 1;
    t->fused_attention = 1;
    t->seed = 0x5EED;
    return t;
}

AURDEF void aur_tape_free(aur_tape *t)
{
    if (!t) return;
    for (int d = 0; d < AUR__DEVICES; d++) {
        aur__arena_free_chunks(&t->main[d]);
        aur__heap_release(&t->heap[d]);
    }
    aur__arena_free_chunks(&t->per_thread);
    AUR_FREE(t->nodes);
    AUR_FREE(t->live);
    aur__objects_free(&t->objects);
    AUR_FREE(t);
}

AURDEF void aur_tape_reset(aur_tape *t)
{
    if (!t) return;
    for (int d = 0; d < AUR__DEVICES; d++) {
        aur__arena_reset(&t->main[d]);
        aur__heap_reset(&t->heap[d]);
    }
    aur__arena_reset(&t->per_thread);
    t->n_nodes = t->n_live = 0;
    t->objects.used = 0;
    t->no_record = t->backward_done = t->backward_rc = 0;
}

AURDEF void aur_tape_set_grad(aur_tape *t, int on) { t->grad_on = on != 0; }
AURDEF void aur_tape_set_training(aur_tape *t, int on) { t->training = on != 0; }
AURDEF void aur_tape_set_autocast(aur_tape *t, int on) { t->autocast = on != 0; }
AURDEF void aur_tape_set_fused_attention(aur_tape *t, int on) { t->fused_attention = on != 0; }
AURDEF void aur_tape_seed(aur_tape *t, uint64_t seed)
{
    t->seed = seed;
    t->rng_offset = 0;
}

/* ---- what the tape holds ---- */

static void aur__memory_now(const aur_tape *t, aur_memory_stats *s)
{
    memset(s, 0, sizeof *s);
    for (int d = 0; d < AUR__DEVICES; d++) {
        s->activations += t->heap[d].kind[AUR__MEM_ACTIVATION];
        s->gradients += t->heap[d].kind[AUR__MEM_GRADIENT];
        s->saved += t->heap[d].kind[AUR__MEM_SAVED];
        s->scratch += t->main[d].before + t->main[d].used;
    }
    s->per_thread = t->per_thread.before + t->per_thread.used;
    s->scratch += s->per_thread;
    s->current = s->activations + s->gradients + s->saved + s->scratch;
}

/* Called after every allocation: keeps the peak and its make-up. */
static void aur__note_memory(aur_tape *t)
{
    aur_memory_stats s;
    for (int d = 0; d < AUR__DEVICES; d++) {
        size_t now = t->heap[d].used + t->main[d].before + t->main[d].used;
        if (now > t->device_peak[d]) t->device_peak[d] = now;
    }
    aur__memory_now(t, &s);
    size_t shared = t->at_peak.peak_shared > s.current - s.per_thread ? t->at_peak.peak_shared : s.current - s.per_thread;
    if (s.current > t->at_peak.peak) {
        t->at_peak = s;
        t->at_peak.peak = s.current;
    }
    t->at_peak.peak_shared = shared;
}

AURDEF void aur_tape_memory(const aur_tape *t, size_t *current, size_t *peak)
{
    aur_memory_stats s;
    aur_tape_memory_stats(t, &s);
    if (current) *current = s.current;
    if (peak) *peak = s.peak;
}

AURDEF void aur_tape_memory_now(const aur_tape *t, aur_memory_stats *s)
{
    aur__memory_now(t, s);
    s->peak = t->at_peak.peak;
    s->peak_shared = t->at_peak.peak_shared;
}

AURDEF void aur_tape_memory_stats(const aur_tape *t, aur_memory_stats *s)
{
    size_t current;
    aur__memory_now(t, s);
    current = s->current;
    *s = t->at_peak;
    s->current = current;
}

/* Arena memory: the step's structs and an op's workspaces. */
static void *aur__alloc(aur_tape *t, aur_device dev, size_t n)
{
    void *p = aur__arena_alloc(&t->main[dev], n);
    if (!p && dev == AUR_CPU) aur__err(AUR_ENOMEM, "out of memory: %zu bytes in the tape's arena", n);
    if (p) aur__note_memory(t);
    return p;
}

AURDEF void *aur_tape_alloc(aur_tape *t, size_t bytes) { return aur__alloc(t, AUR_CPU, bytes); }

/* ---- storage: bytes that go when nothing holds them ---- */

/* bytes from the heap of dev, held once (by the caller). */
static aur__storage *aur__storage_new(aur_tape *t, aur_device dev, size_t bytes, int kind)
{
    aur__storage *s = (aur__storage *)aur__alloc(t, AUR_CPU, sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->ptr = aur__heap_alloc(&t->heap[dev], bytes, kind); /* a failure says why (no memory, no CUDA) */
    if (!s->ptr) return NULL;
    s->bytes = bytes, s->holders = 1, s->device = (unsigned char)dev, s->kind = (unsigned char)kind;
    aur__note_memory(t);
    return s;
}

static void aur__storage_hold(aur__storage *s)
{
    if (s) s->holders++;
}

#ifdef AUR__HAS_CUDA
static int aur_cuda_cast(void *y, const void *x, int to_bf16, int64_t n); /* kernels.cuh, included after the ops' rules */
#endif

static size_t aur__packed_bytes(const aur__storage *s) { return s->bytes / sizeof(aur_real) * sizeof(uint16_t); }

static void aur__storage_free(aur_tape *t, aur__storage *s)
{
    aur__heap_free(&t->heap[s->device], s->ptr, s->bytes, s->kind);
    aur__heap_free(&t->heap[s->device], s->packed, aur__packed_bytes(s), AUR__MEM_SAVED);
    s->ptr = NULL;
    s->packed = NULL;
}

static void aur__storage_drop(aur_tape *t, aur__storage *s)
{
    if (!s || --s->holders > 0 || s->users > 0) return;
    AUR_ASSERT(s->holders == 0);
    aur__storage_free(t, s);
}

/* dst = src's n values as BF16 (the top half of each float); 1 if one of
   them is not a BF16 number, -1 if the GPU failed (the caller keeps the F32
   bytes then). */
static int aur__bf16_pack(uint16_t *dst, const aur_real *src, int64_t n, aur_device dev)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CUDA) return AUR__GPU(aur_cuda_cast, dst, src, 1, n) ? -1 : 0; /* the flag is trusted there */
    uint32_t inexact = 0;
    AUR__PRAGMA(omp parallel for schedule(static) reduction(| : inexact) if (n > AUR__PAR_MIN))
    for (int64_t i = 0; i < n; i++) {
        float f = (float)src[i];
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        inexact |= (bits & 0xFFFFu) | (uint32_t)((aur_real)f != src[i] && src[i] == src[i]); /* the second: double test builds */
        dst[i] = (uint16_t)(bits >> 16);
    }
    return inexact != 0;
}

static int aur__bf16_unpack(aur_real *dst, const uint16_t *src, int64_t n, aur_device dev)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CUDA) return AUR__GPU(aur_cuda_cast, dst, src, 0, n);
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)src[i] << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        dst[i] = f;
    }
    return 0;
}

/* One of the forward's tensors on s goes: with the last, s goes too unless
   a node holds it. */
static void aur__storage_let_go(aur_tape *t, aur__storage *s)
{
    if (!s || --s->users > 0 || s->holders > 0) return;
    aur__storage_free(t, s);
}

/* When only backward nodes hold s now and its values are BF16 numbers, they
   keep two bytes a value from now on. Never fails: short of memory, or on a
   value that is not BF16 (a bug of the flag), s stays F32. */
static void aur__storage_pack(aur_tape *t, aur__storage *s)
{
    if (s && s->users == 0 && s->holders > 0 && s->bf16 && s->ptr && s->kind == AUR__MEM_ACTIVATION) {
        aur__heap *h = &t->heap[s->device];
        uint16_t *p = (uint16_t *)aur__heap_alloc(h, aur__packed_bytes(s), AUR__MEM_SAVED);
        int rc = p ? aur__bf16_pack(p, (const aur_real *)s->ptr, (int64_t)(s->bytes / sizeof(aur_real)), (aur_device)s->device) : 0;
        AUR_ASSERT(rc <= 0 && "a storage marked BF16 holds a value that is not");
        if (rc) {
            aur__heap_free(h, p, aur__packed_bytes(s), AUR__MEM_SAVED);
            p = NULL;
        }
        if (p) {
            aur__note_memory(t); /* both copies, for a moment */
            aur__heap_free(h, s->ptr, s->bytes, s->kind);
            s->ptr = NULL;
            s->packed = p;
        }
    }
}

/* A buffer an op keeps for its backward (statistics, indices): hand it to the node with aur__keep_buffer. */
static void *aur__buffer(aur_tape *t, aur_device dev, size_t bytes, aur__storage **s)
{
    *s = aur__storage_new(t, dev, bytes, AUR__MEM_SAVED);
    return *s ? (*s)->ptr : NULL;
}

/* ---- tensors on the tape ---- */

static int aur__live_push(aur_tape *t, aur_tensor *x)
{
    if (aur__grow((void **)&t->live, &t->cap_live, t->n_live + 1, sizeof *t->live)) return AUR_ENOMEM;
    t->live[t->n_live++] = x;
    return 0;
}

/* A fresh tensor on the tape, data uninitialised. */
static aur_tensor *aur__tensor(aur_tape *t, aur_dtype dtype, aur_device dev, aur_shape s)
{
    if (aur__shape_ok(s, "tensor")) return NULL;
    aur_tensor *x = (aur_tensor *)aur__alloc(t, AUR_CPU, sizeof *x);
    if (!x) return NULL;
    aur__tensor_init(x, dtype, dev, s);
    x->storage = aur__storage_new(t, dev, aur__nbytes(x), AUR__MEM_ACTIVATION);
    if (!x->storage || aur__live_push(t, x)) return NULL;
    x->storage->users = 1, x->storage->holders = 0;
    x->data = x->storage->ptr;
    return x;
}

/* A tensor of another shape on the same bytes (their holders are shared). */
static aur_tensor *aur__view(aur_tape *t, aur_tensor *x, aur_shape s)
{
    aur_tensor *y = (aur_tensor *)aur__alloc(t, AUR_CPU, sizeof *y);
    if (!y) return NULL;
    aur__tensor_init(y, x->dtype, x->device, s);
    y->data = x->data;
    y->offset = x->offset;
    y->storage = x->storage;
    if (!y->storage) return y;
    y->storage->users++;
    return aur__live_push(t, y) ? NULL : y;
}

AURDEF aur_tensor *aur_tensor_new(aur_tape *t, aur_device device, aur_shape shape)
{
    aur_tensor *x = aur__tensor(t, AUR_F32, device, shape);
    if (x && aur__zero_bytes(x->data, device, aur__nbytes(x))) return NULL;
    return x;
}

/* The output of an op on inputs in[0..n): it needs a gradient when
   gradients are on and any input needs one. */
static aur_tensor *aur__output(aur_tape *t, aur_shape s, aur_device dev, aur_tensor *const *in, int n)
{
    aur_tensor *y = aur__tensor(t, AUR_F32, dev, s);
    if (!y) return NULL;
    for (int i = 0; i < n && t->grad_on; i++)
        if (in[i] && in[i]->requires_grad) y->requires_grad = 1;
    return y;
}

/* y's values are all BF16 numbers when exact: an autocast product, rounded,
   or a copy of such values (what aur__storage_let_go may pack). */
static void aur__mark_bf16(aur_tensor *y, int exact)
{
    if (y && y->storage && exact && y->dtype == AUR_F32) y->storage->bf16 = 1;
}

static int aur__is_bf16(const aur_tensor *x) { return x && x->storage && x->storage->bf16; }

/* Scratch memory of the op running (uninitialised): give it back with aur__arena_release. */
static aur_real *aur__reals(aur_tape *t, aur_device dev, int64_t n)
{
    return (aur_real *)aur__alloc(t, dev, (size_t)n * sizeof(aur_real));
}

/* The CPU's per-thread scratch of the op running, `per` elements for each of
   `threads` threads, apart from the rest so the peak can be told with and
   without it: give it back with aur__arena_release(&t->per_thread, ...). */
static aur_real *aur__thread_reals(aur_tape *t, int64_t per, int threads)
{
    size_t n = (size_t)per * (size_t)threads * sizeof(aur_real);
    void *p = aur__arena_alloc(&t->per_thread, n);
    if (!p) return aur__err(AUR_ENOMEM, "out of memory: %zu bytes of per-thread scratch", n), (aur_real *)NULL;
    aur__note_memory(t);
    return (aur_real *)p;
}

/* ---- scopes ---- */

AURDEF aur_scope aur_scope_begin(aur_tape *t)
{
    aur_scope s;
    s.first = t ? t->n_live : 0;
    return s;
}

static int aur__kept(const aur_tensor *x, aur_tensor *const *keep, int n)
{
    for (int i = 0; i < n; i++)
        if (keep[i] == x) return 1;
    return 0;
}

AURDEF void aur_scope_end(aur_tape *t, aur_scope s, aur_tensor *const *keep, int n_keep)
{
    if (!t || s.first > t->n_live) return;
    for (int i = s.first; i < t->n_live; i++)
        if (!aur__kept(t->live[i], keep, n_keep)) aur__storage_let_go(t, t->live[i]->storage);
    for (int i = s.first; i < t->n_live; i++) /* then, with the temporaries gone, pack what backward alone holds */
        if (!aur__kept(t->live[i], keep, n_keep)) aur__storage_pack(t, t->live[i]->storage);
    int k = s.first;
    for (int i = s.first; i < t->n_live; i++)
        if (aur__kept(t->live[i], keep, n_keep)) t->live[k++] = t->live[i];
    t->n_live = k;
}

/* ---- recording ---- */

/* Appends a node for y = op(in), for the op to put its arguments in. When y
   needs no gradient, or inside a checkpointed forward, nothing is recorded and
   the tape's scratch node comes back instead, so every op ends the same way.
   Returns NULL (with an error) only when out of memory. */
static aur__node *aur__record(aur_tape *t, aur_tensor *y, const char *op, aur__backward_fn fn,
                              aur_tensor *const *in, int n_in)
{
    if (!y->requires_grad || t->no_record) return &t->unrecorded;
    aur__node *n = (aur__node *)aur__alloc(t, AUR_CPU, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->in = (aur_tensor **)aur__alloc(t, AUR_CPU, sizeof(aur_tensor *) * (size_t)(n_in ? n_in : 1));
    n->cap_held = 3 * n_in + 4; /* an input, or the up to 3 inputs of its rebuild; buffers */
    n->held = (aur__storage **)aur__alloc(t, AUR_CPU, sizeof(aur__storage *) * (size_t)n->cap_held);
    n->cap_rebuilt = 4 * n_in + 1; /* an input, or a rebuilt one and its recipe's up to 3 inputs */
    n->rebuilt = (aur_tensor **)aur__alloc(t, AUR_CPU, sizeof(aur_tensor *) * (size_t)n->cap_rebuilt);
    n->direct = (unsigned char *)aur__alloc(t, AUR_CPU, (size_t)n->cap_rebuilt);
    if (!n->in || !n->held || !n->rebuilt || !n->direct) return NULL;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->n_in = n_in;
    n->op = op;
    n->backward = fn;
    n->out = y;
    if (aur__grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(aur__node *))) return NULL;
    t->nodes[t->n_nodes++] = n;
    return n;
}

static void aur__hold_in_node(aur__node *n, aur__storage *s)
{
    if (!s) return;
    AUR_ASSERT(n->n_held < n->cap_held);
    aur__storage_hold(s);
    n->held[n->n_held++] = s;
}

/* 1 if every input of a recipe still has its values (a scope that kept the
   output may have let them go). */
static int aur__recipe_inputs_held(const aur__rebuild *r)
{
    for (int i = 0; i < 3; i++) {
        const aur__storage *s = r->in[i] ? r->in[i]->storage : NULL;
        if (s && !s->ptr && !s->packed) return 0;
    }
    return 1;
}

/* x's backward-time bytes are to be found again before the node runs (each
   tensor once, in order); direct: the backward reads x, not only a recipe. */
static void aur__rebuilt_add(aur__node *n, aur_tensor *x, int direct)
{
    for (int i = 0; i < n->n_rebuilt; i++)
        if (n->rebuilt[i] == x) {
            n->direct[i] |= (unsigned char)direct;
            return;
        }
    AUR_ASSERT(n->n_rebuilt < n->cap_rebuilt);
    n->direct[n->n_rebuilt] = (unsigned char)direct;
    n->rebuilt[n->n_rebuilt++] = x;
}

/* The node holds x's bytes; those that may be packed by the time it runs are unpacked for it. */
static void aur__hold_values(aur__node *n, aur_tensor *x, int direct)
{
    if (!x || !x->storage) return;
    aur__hold_in_node(n, x->storage);
    if (x->storage->bf16) aur__rebuilt_add(n, x, direct);
}

/* The node's backward reads x's data: hold it until the backward has run,
   or, when x's op can make it again from inputs that are still there, hold
   those inputs. */
static void aur__save(aur_tape *t, aur__node *n, aur_tensor *x)
{
    if (n == &t->unrecorded || !x || !x->storage) return;
    if (!x->rebuild || !aur__recipe_inputs_held(x->rebuild)) {
        aur__hold_values(n, x, 1);
        return;
    }
    for (int i = 0; i < 3; i++) aur__hold_values(n, x->rebuild->in[i], 0); /* first, so they are back before x is remade */
    aur__rebuilt_add(n, x, 1);
}

/* x's values back in F32 from its packed storage, into tmp (unless an earlier
   tensor of the same storage, at tmp_of_same, has them already). */
static int aur__unpack(aur_tape *t, aur_tensor *x, aur__storage **tmp, aur__storage *tmp_of_same)
{
    aur__storage *s = x->storage;
    if (!tmp_of_same) {
        if (!(tmp_of_same = *tmp = aur__storage_new(t, x->device, s->bytes, AUR__MEM_ACTIVATION))) return AUR_ENOMEM;
        int rc = aur__bf16_unpack((aur_real *)tmp_of_same->ptr, s->packed, (int64_t)(s->bytes / sizeof(aur_real)), x->device);
        if (rc) return rc;
    }
    x->data = (char *)tmp_of_same->ptr + x->offset;
    return 0;
}

/* The bytes unpacked for an earlier tensor on the packed storage s, or NULL. */
static aur__storage *aur__unpacked(const aur__node *n, aur__storage *const *tmp, int before, const aur__storage *s)
{
    for (int j = 0; j < before; j++)
        if (tmp[j] && n->rebuilt[j]->storage == s) return tmp[j];
    return NULL;
}

/* 1 if the node's backward reads a tensor on storage s itself (its unpacked bytes are shared by the storage's tensors). */
static int aur__read_directly(const aur__node *n, const aur__storage *s)
{
    for (int k = 0; k < n->n_rebuilt; k++)
        if (n->direct[k] && n->rebuilt[k]->storage == s) return 1;
    return 0;
}

/* The bytes of the node's rebuilt inputs that are gone, made again (tmp[i], for aur__unmake). */
static int aur__remake(aur_tape *t, aur__node *n, aur__storage **tmp)
{
    int rc = 0;
    for (int i = 0; i < n->n_rebuilt; i++) tmp[i] = NULL;
    for (int i = 0; i < n->n_rebuilt && !rc; i++) {
        aur_tensor *x = n->rebuilt[i];
        if (x->storage->ptr) continue; /* still held by someone: as it is */
        if (x->storage->packed) {
            rc = aur__unpack(t, x, &tmp[i], aur__unpacked(n, tmp, i, x->storage));
            continue;
        }
        tmp[i] = aur__storage_new(t, x->device, aur__nbytes(x), AUR__MEM_ACTIVATION);
        if (!tmp[i]) rc = AUR_ENOMEM;
        else x->data = tmp[i]->ptr, rc = x->rebuild->fn(t, x->rebuild, x);
    }
    for (int i = 0; i < n->n_rebuilt && !rc; i++) /* what only the recipes read goes before the backward runs */
        if (tmp[i] && !aur__read_directly(n, n->rebuilt[i]->storage)) {
            aur__storage_drop(t, tmp[i]);
            tmp[i] = NULL;
        }
    return rc;
}

static void aur__unmake(aur_tape *t, aur__node *n, aur__storage **tmp)
{
    for (int i = 0; i < n->n_rebuilt; i++) aur__storage_drop(t, tmp[i]);
}

/* Leaves a recipe for y's bytes (kept only if a later backward reads y). */
static void aur__rebuildable(aur_tape *t, aur_tensor *y, int (*fn)(aur_tape *, const aur__rebuild *, aur_tensor *), aur_tensor *a,
                             aur_tensor *b, aur_tensor *c, int kind, double arg, const void *aux0, const void *aux1)
{
    if (!y->requires_grad || t->no_record) return; /* nothing will be recorded that reads it */
    aur__rebuild *r = (aur__rebuild *)aur__alloc(t, AUR_CPU, sizeof *r);
    if (!r) return; /* then y is kept, as without a recipe */
    r->fn = fn, r->in[0] = a, r->in[1] = b, r->in[2] = c, r->kind = kind, r->arg = arg, r->aux[0] = aux0, r->aux[1] = aux1;
    y->rebuild = r;
}

/* The node's backward reads all its inputs' data (losses, element rules of two inputs). Returns n. */
static aur__node *aur__save_inputs(aur_tape *t, aur__node *n)
{
    for (int i = 0; n && i < n->n_in; i++) aur__save(t, n, n->in[i]);
    return n;
}

/* Hands a buffer made by aur__buffer to the node (freed now when nothing is recorded). */
static void aur__keep_buffer(aur_tape *t, aur__node *n, aur__storage *s)
{
    if (n == &t->unrecorded) {
        aur__storage_drop(t, s);
        return;
    }
    AUR_ASSERT(n->n_held < n->cap_held);
    n->held[n->n_held++] = s;
}

static void aur__node_release(aur_tape *t, aur__node *n)
{
    for (int i = 0; i < n->n_held; i++) aur__storage_drop(t, n->held[i]);
    n->n_held = 0;
}

/* The gradient buffer of x for a backward function to accumulate into, or
   NULL when x needs none. An activation's is made (zeroed) on first use;
   a failure is kept in backward_rc, which the walk reports. */
static aur_real *aur__grad_buffer(aur_tape *t, aur_tensor *x)
{
    if (!x->grad) {
        size_t bytes = (size_t)x->numel * sizeof(aur_real);
        if (x->owned) { /* owned tensors keep theirs across steps (torch leaf .grad) */
            x->grad = (aur_real *)aur__dev_alloc(x->device, bytes, "a gradient");
        } else {
            x->grad_storage = aur__storage_new(t, x->device, bytes, AUR__MEM_GRADIENT);
            x->grad = x->grad_storage ? (aur_real *)x->grad_storage->ptr : NULL;
        }
        if (!x->grad || aur__zero_bytes(x->grad, x->device, bytes)) {
            t->backward_rc = AUR_ENOMEM;
            return NULL;
        }
    }
    return x->grad;
}

static aur_real *aur__grad(aur_tape *t, aur_tensor *x)
{
    if (!x || !x->requires_grad || !aur__grad_buffer(t, x)) return NULL;
    x->grad_written = 1;
    return x->grad;
}

/* For an element-wise backward whose input x has no gradient yet: x's takes
   over the bytes of its output y's, which nothing reads after this node (the
   walk runs every reader of y first), so dx is written over dy and no second
   buffer is made. 1 if it did (x->grad is then dy's bytes). */
static int aur__grad_in_place(aur_tensor *x, aur_tensor *y)
{
    if (!x->requires_grad || x->grad || x->owned || x == y || !y->grad_storage || y->grad_storage->holders != 1 ||
        x->numel != y->numel || x->device != y->device)
        return 0;
    x->grad = y->grad, x->grad_storage = y->grad_storage, x->grad_written = 1;
    y->grad = NULL, y->grad_storage = NULL;
    return 1;
}

/* An activation's gradient, consumed: its bytes go. */
static void aur__grad_release(aur_tape *t, aur_tensor *x)
{
    if (!x->grad_storage) return;
    aur__storage_drop(t, x->grad_storage);
    x->grad_storage = NULL;
    x->grad = NULL;
}

/* ==== tape: backward ==== */

/* Runs the backward functions of nodes[from..n_nodes) in reverse order; each
   node then lets go of what it held and of its output's gradient. */
static int aur__walk_back(aur_tape *t, int from)
{
    for (int i = t->n_nodes - 1; i >= from; i--) {
        aur__node *n = t->nodes[i];
        int rc = 0;
        if (n->out->grad_written) { /* a node off the path to the loss has nothing to add */
            aur__storage *tmp[8];
            aur__storage **remade = n->n_rebuilt <= 8 ? tmp : (aur__storage **)aur__alloc(t, AUR_CPU, sizeof *remade * (size_t)n->n_rebuilt);
            rc = remade ? aur__remake(t, n, remade) : AUR_ENOMEM;
            if (!rc) rc = n->backward(t, n);
            if (remade) aur__unmake(t, n, remade);
        }
        if (!rc) rc = t->backward_rc;
        aur__node_release(t, n);
        aur__grad_release(t, n->out);
        if (rc) return rc;
    }
    return 0;
}

static int aur__set_one(aur_real *p, aur_device dev)
{
    aur_real one = 1;
    return aur__copy_bytes(p, dev, &one, AUR_CPU, sizeof one);
}

/* Parameters have slab gradients; one missing means it was frozen when the slabs
   were made. Owned tensors (leaves) get theirs, zeroed, even where nothing flows. */
static int aur__leaf_grads(aur_tape *t)
{
    for (int i = 0; i < t->n_nodes; i++)
        for (int k = 0; k < t->nodes[i]->n_in; k++) {
            aur_tensor *x = t->nodes[i]->in[k];
            if (!x || !x->requires_grad || x->grad) continue;
            if (x->model) return aur__err(AUR_EINVAL, "backward: parameter '%s' is trainable but has no gradient buffer", x->name);
            if (x->owned && !aur__grad_buffer(t, x)) return AUR_ENOMEM;
        }
    return 0;
}

AURDEF int aur_backward(aur_tape *t, aur_tensor *loss)
{
    if (!t || !loss) return aur__err(AUR_EINVAL, "aur_backward: no loss (did an op fail? %s)", aur__errmsg);
    if (loss->numel != 1)
        return aur__err(AUR_ESHAPE, "aur_backward: the loss has %lld elements; it must have one",
                        (long long)loss->numel);
    if (t->backward_done) return aur__err(AUR_EINVAL, "aur_backward: this tape already ran backward; reset it");
    if (!loss->requires_grad) return aur__err(AUR_EINVAL, "aur_backward: the loss does not depend on any trainable tensor");
    int rc = aur__leaf_grads(t);
    aur_real *g = rc ? NULL : aur__grad(t, loss);
    if (!rc && !g) rc = AUR_ENOMEM;
    if (!rc) rc = aur__set_one(g, loss->device);
    if (rc) return rc;
    t->backward_done = 1;
    return aur__walk_back(t, 0);
}

/* ==== tape: activation checkpointing ====
   Forward: run the segment recording nothing, in a scope that keeps only its
   output; the node holds the segment's inputs. Backward: rerun it recording
   (same dropout stream and settings), seed its output with the node's
   gradient, walk the nodes it recorded, and let its tensors go. */

static int aur__is_input(const aur__node *n, const aur_tensor *x)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] == x) return 1;
    return 0;
}

/* dst += src on either device (through host copies in the arena on a GPU: rare and small). */
static int aur__add_grad(aur_tape *t, aur_real *dst, const aur_real *src, int64_t n, aur_device dev)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CPU) {
        for (int64_t i = 0; i < n; i++) dst[i] += src[i];
        return 0;
    }
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    aur_real *a = aur__reals(t, AUR_CPU, 2 * n + 1);
    int rc = a ? aur__copy_bytes(a, AUR_CPU, dst, dev, sizeof(aur_real) * (size_t)n) : AUR_ENOMEM;
    if (!rc) rc = aur__copy_bytes(a + n, AUR_CPU, src, dev, sizeof(aur_real) * (size_t)n);
    for (int64_t i = 0; i < n && !rc; i++) a[i] += a[n + i];
    if (!rc) rc = aur__copy_bytes(dst, dev, a, AUR_CPU, sizeof(aur_real) * (size_t)n);
    aur__arena_release(&t->main[AUR_CPU], mk);
    return rc;
}

static int aur__checkpoint_back(aur_tape *t, aur__node *n)
{
    uint64_t saved_offset = t->rng_offset;
    int from = t->n_nodes, rc = 0, modes[3] = {t->training, t->autocast, t->fused_attention};
    aur_scope s = aur_scope_begin(t);
    t->rng_offset = (uint64_t)n->iarg[0];
    /* recompute as the forward ran: the same dropout, autocast and attention path */
    t->training = (int)n->iarg[1], t->autocast = (int)n->iarg[2], t->fused_attention = (int)n->iarg[3];
    aur_tensor *y = n->fn(t, n->ctx, n->in, n->n_in);
    aur_scope_end(t, s, NULL, 0); /* what no recorded backward reads goes before the walk (y's bytes too), the rest is packed if it can be */
    if (!y) {
        rc = aur__err(AUR_EINVAL, "checkpoint: the segment failed when recomputed: %s", aur__errmsg);
    } else if (y->numel != n->out->numel) {
        rc = aur__err(AUR_ESHAPE, "checkpoint: the recomputed output has %lld elements, not %lld",
                      (long long)y->numel, (long long)n->out->numel);
    } else if (aur__is_input(n, y)) { /* the segment returned an input unchanged */
        aur_real *dx = aur__grad(t, y);
        rc = dx ? aur__add_grad(t, dx, n->out->grad, y->numel, y->device) : t->backward_rc;
    } else if (y->requires_grad) {
        y->grad = n->out->grad; /* the incoming gradient moves to y: it goes once y's node has used it */
        y->grad_storage = n->out->grad_storage;
        n->out->grad_storage = NULL;
        n->out->grad = NULL;
        y->grad_written = 1;
        rc = aur__walk_back(t, from);
    }
    for (int i = from; i < t->n_nodes; i++) aur__node_release(t, t->nodes[i]); /* nodes the walk did not reach */
    t->n_nodes = from;
    aur_scope_end(t, s, NULL, 0);
    t->rng_offset = saved_offset;
    t->training = modes[0], t->autocast = modes[1], t->fused_attention = modes[2];
    return rc;
}

AURDEF aur_tensor *aur_checkpoint(aur_tape *t, aur_segment_fn fn, void *ctx, aur_tensor *const *in, int n_in)
{
    if (!t || !fn) {
        aur__err(AUR_EINVAL, "aur_checkpoint: no tape or function");
        return NULL;
    }
    for (int i = 0; i < n_in; i++)
        if (!in[i]) return NULL;
    if (t->no_record) return fn(t, ctx, in, n_in); /* inside a checkpointed forward */
    /* run the segment recording nothing; its scope frees all but its output (with gradients off too) */
    uint64_t offset = t->rng_offset;
    aur_scope s = aur_scope_begin(t);
    t->no_record = 1;
    aur_tensor *y = fn(t, ctx, in, n_in);
    t->no_record = 0;
    for (int i = 0; y && i < n_in; i++) /* the node needs an output of its own */
        if (y == in[i]) {
            aur_tensor *v = aur__view(t, y, aur_tensor_shape(y));
            if (v) v->requires_grad = y->requires_grad;
            y = v;
        }
    aur_scope_end(t, s, &y, 1);
    if (!y) return NULL;
    aur__node *n = aur__record(t, y, "checkpoint", aur__checkpoint_back, in, n_in);
    if (!n) return NULL;
    for (int i = 0; i < n_in; i++) aur__save(t, n, in[i]); /* the recomputation reads every input */
    n->fn = fn;
    n->ctx = ctx;
    n->iarg[0] = (int64_t)offset;
    n->iarg[1] = t->training, n->iarg[2] = t->autocast, n->iarg[3] = t->fused_attention;
    return y;
}

/* ==== CPU matrix product ====
   C (M x N, row stride ldc) = A (M x K) B (K x N), or C += A B. A and B are
   read through strides (element (i,p) of A at A[i*ars + p*acs]), so every
   transpose is free. The BLIS layout: B is packed in KC x NR panels shared by
   all threads, each thread packs an MC x KC block of A in MR-row panels, and
   a micro-kernel keeps an MR x NR tile of C in vector registers. */

#if defined(__GNUC__)
#if defined(__AVX512F__)
#define AUR__VBYTES 64
#define AUR__MR 8
#elif defined(__AVX__)
#define AUR__VBYTES 32
#define AUR__MR 6
#else
#define AUR__VBYTES 16
#define AUR__MR 4
#endif
typedef aur_real aur__vec __attribute__((vector_size(AUR__VBYTES)));
#if defined(__CUDACC__) || defined(__clang__)
#define AUR__UNROLL(n)
#else
#define AUR__UNROLL(n) AUR__PRAGMA(GCC unroll n)
#endif
#define AUR__NV 2 /* vectors per micro-tile row */
#define AUR__NR (AUR__NV * (AUR__VBYTES / (int)sizeof(aur_real)))
#else
#define AUR__MR 4
#define AUR__NR 8
#endif
#define AUR__KC 256
#define AUR__MC (AUR__MR * 24)
#define AUR__NC (AUR__NR * 96)

typedef struct aur__mat {
    const aur_real *p;
    int64_t rs, cs; /* element (i, j) at p[i*rs + j*cs] */
} aur__mat;

static aur__mat aur__matv(const aur_real *p, int64_t rs, int64_t cs)
{
    aur__mat m;
    m.p = p;
    m.rs = rs;
    m.cs = cs;
    return m;
}

/* MR-row panels of A[0:mc, 0:kc]: panel r holds A[r*MR + i][p] at r*kc*MR + p*MR + i. */
static void aur__pack_a(aur_real *dst, aur__mat a, int64_t mc, int64_t kc)
{
    for (int64_t r = 0; r < mc; r += AUR__MR, dst += kc * AUR__MR) {
        int64_t mr = mc - r < AUR__MR ? mc - r : AUR__MR;
        for (int64_t p = 0; p < kc; p++) {
            const aur_real *src = a.p + r * a.rs + p * a.cs;
            aur_real *d = dst + p * AUR__MR;
            int64_t i = 0;
            for (; i < mr; i++) d[i] = src[i * a.rs];
            for (; i < AUR__MR; i++) d[i] = 0;
        }
    }
}

/* NR-column panels of B[0:kc, 0:nc]: panel c holds B[p][c*NR + j] at c*kc*NR + p*NR + j. */
static void aur__pack_b_panel(aur_real *dst, aur__mat b, int64_t kc, int64_t nr)
{
    for (int64_t p = 0; p < kc; p++) {
        const aur_real *src = b.p + p * b.rs;
        aur_real *d = dst + p * AUR__NR;
        int64_t j = 0;
        if (b.cs == 1)
            for (; j < nr; j++) d[j] = src[j];
        else
            for (; j < nr; j++) d[j] = src[j * b.cs];
        for (; j < AUR__NR; j++) d[j] = 0;
    }
}

/* c[0:mr, 0:nr] (+)= packed a panel x packed b panel over kc. */
static void aur__micro(int64_t kc, const aur_real *a, const aur_real *b, aur_real *c, int64_t ldc, int64_t mr,
                       int64_t nr, int accumulate)
{
#if defined(__GNUC__)
    aur__vec acc[AUR__MR][AUR__NV];
    memset(acc, 0, sizeof acc);
    for (int64_t p = 0; p < kc; p++) {
        const aur__vec *bv = (const aur__vec *)(b + p * AUR__NR);
        const aur_real *ap = a + p * AUR__MR;
        AUR__UNROLL(16)
        for (int i = 0; i < AUR__MR; i++)
            AUR__UNROLL(4)
            for (int v = 0; v < AUR__NV; v++) acc[i][v] += ap[i] * bv[v];
    }
    aur_real tile[AUR__MR * AUR__NR];
    memcpy(tile, acc, sizeof tile);
#else
    aur_real tile[AUR__MR * AUR__NR];
    memset(tile, 0, sizeof tile);
    for (int64_t p = 0; p < kc; p++)
        for (int i = 0; i < AUR__MR; i++)
            for (int j = 0; j < AUR__NR; j++) tile[i * AUR__NR + j] += a[p * AUR__MR + i] * b[p * AUR__NR + j];
#endif
    for (int64_t i = 0; i < mr; i++) {
        aur_real *ci = c + i * ldc;
        const aur_real *ti = tile + i * AUR__NR;
        if (accumulate)
            for (int64_t j = 0; j < nr; j++) ci[j] += ti[j];
        else
            for (int64_t j = 0; j < nr; j++) ci[j] = ti[j];
    }
}

/* n rounded up to whole 64-byte lines, so per-thread slices stay aligned for vector loads. */
static int64_t aur__lines(int64_t n)
{
    const int64_t k = AUR__ALIGN / (int64_t)sizeof(aur_real);
    return (n + k - 1) / k * k;
}

static int64_t aur__min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t aur__round_up(int64_t n, int64_t k) { return (n + k - 1) / k * k; }

/* The packed block of B (at most KC x NC) and one thread's block of A (at
   most MC x KC) of an M x N x K product: sized by the product, so small
   products (attention's, per window) take little per thread. */
static int64_t aur__gemm_b_floats(int64_t N, int64_t K)
{
    return aur__lines(aur__min64(K, AUR__KC) * aur__min64(aur__round_up(N, AUR__NR), AUR__NC));
}
static int64_t aur__gemm_a_floats(int64_t M, int64_t K)
{
    return aur__lines(aur__min64(aur__round_up(M, AUR__MR), AUR__MC) * aur__min64(K, AUR__KC));
}

/* Workspace (elements) of an M x N x K product with `threads` threads packing A;
   it also serves any product no larger in each of M, N and K. */
static int64_t aur__gemm_ws(int64_t M, int64_t N, int64_t K, int threads)
{
    return aur__gemm_b_floats(N, K) + (int64_t)threads * aur__gemm_a_floats(M, K);
}

/* The product over one KC x NC block of B, already packed in bp. */
static void aur__gemm_block(aur_real *ws_a, int64_t a_floats, const aur_real *bp, aur__mat a, int64_t M, int64_t nc, int64_t kc,
                            aur_real *C, int64_t ldc, int accumulate, int parallel)
{
    int64_t nblocks = (M + AUR__MC - 1) / AUR__MC;
    AUR__OMP_FOR_DYN_IF(parallel && nblocks > 1)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t ic = blk * AUR__MC, mc = M - ic < AUR__MC ? M - ic : AUR__MC;
        aur_real *ap = ws_a + (int64_t)(parallel ? aur__thread_id() : 0) * a_floats;
        aur__pack_a(ap, aur__matv(a.p + ic * a.rs, a.rs, a.cs), mc, kc);
        for (int64_t jr = 0; jr < nc; jr += AUR__NR) {
            int64_t nr = nc - jr < AUR__NR ? nc - jr : AUR__NR;
            const aur_real *bpanel = bp + (jr / AUR__NR) * kc * AUR__NR;
            for (int64_t ir = 0; ir < mc; ir += AUR__MR) {
                int64_t mr = mc - ir < AUR__MR ? mc - ir : AUR__MR;
                aur__micro(kc, ap + (ir / AUR__MR) * kc * AUR__MR, bpanel, C + (ic + ir) * ldc + jr, ldc, mr, nr,
                           accumulate);
            }
        }
    }
}

/* C = A B (accumulate 0) or C += A B (1). ws holds aur__gemm_ws(M, N, K, threads) elements
   (threads 1 unless parallel). */
static void aur__gemm(aur_real *ws, int64_t M, int64_t N, int64_t K, aur__mat a, aur__mat b, aur_real *C, int64_t ldc,
                      int accumulate, int parallel)
{
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (!accumulate)
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(aur_real));
        return;
    }
    aur_real *bp = ws, *ws_a = ws + aur__gemm_b_floats(N, K);
    int64_t a_floats = aur__gemm_a_floats(M, K);
    for (int64_t jc = 0; jc < N; jc += AUR__NC) {
        int64_t nc = N - jc < AUR__NC ? N - jc : AUR__NC;
        for (int64_t pc = 0; pc < K; pc += AUR__KC) {
            int64_t kc = K - pc < AUR__KC ? K - pc : AUR__KC;
            int64_t npanels = (nc + AUR__NR - 1) / AUR__NR;
            AUR__OMP_FOR_IF(parallel && npanels > 4)
            for (int64_t c = 0; c < npanels; c++) {
                int64_t nr = nc - c * AUR__NR < AUR__NR ? nc - c * AUR__NR : AUR__NR;
                aur__mat bsub = aur__matv(b.p + pc * b.rs + (jc + c * AUR__NR) * b.cs, b.rs, b.cs);
                aur__pack_b_panel(bp + c * kc * AUR__NR, bsub, kc, nr);
            }
            aur__mat asub = aur__matv(a.p + pc * a.cs, a.rs, a.cs);
            aur__gemm_block(ws_a, a_floats, bp, asub, M, nc, kc, C + jc, ldc, accumulate || pc > 0, parallel);
        }
    }
}

/* nb independent products with element offsets sa, sb, sc between batches
   (sb = 0 shares B). Threads split the batches when there are enough of
   them, otherwise each product. */
static int aur__gemm_batched(aur_tape *t, int64_t nb, int64_t M, int64_t N, int64_t K, aur__mat a, int64_t sa,
                             aur__mat b, int64_t sb, aur_real *C, int64_t sc, int64_t ldc, int accumulate)
{
    int threads = aur__threads();
    int by_batch = nb >= 2 * threads || (nb >= threads && M * N < 65536);
    aur__mark mk = aur__arena_mark(&t->per_thread);
    int64_t per = aur__gemm_ws(M, N, K, by_batch ? 1 : threads);
    aur_real *ws = aur__thread_reals(t, per, by_batch ? threads : 1);
    if (!ws) return AUR_ENOMEM;
    if (by_batch) {
        AUR__OMP_FOR_DYN_IF(threads > 1)
        for (int64_t i = 0; i < nb; i++)
            aur__gemm(ws + aur__thread_id() * per, M, N, K, aur__matv(a.p + i * sa, a.rs, a.cs),
                      aur__matv(b.p + i * sb, b.rs, b.cs), C + i * sc, ldc, accumulate, 0);
    } else {
        for (int64_t i = 0; i < nb; i++)
            aur__gemm(ws, M, N, K, aur__matv(a.p + i * sa, a.rs, a.cs), aur__matv(b.p + i * sb, b.rs, b.cs),
                      C + i * sc, ldc, accumulate, 1);
    }
    aur__arena_release(&t->per_thread, mk);
    return 0;
}

static int aur__gemm1(aur_tape *t, int64_t M, int64_t N, int64_t K, aur__mat a, aur__mat b, aur_real *C, int accumulate)
{
    return aur__gemm_batched(t, 1, M, N, K, a, 0, b, 0, C, 0, N, accumulate);
}

/* ==== ops: shared checks ==== */

/* Every input present, F32, on one device. */
static int aur__check(const char *op, aur_tensor *const *in, int n)
{
    const aur_tensor *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!in[i]) return AUR_EINVAL; /* an earlier op failed; keep its message */
        if (in[i]->dtype != AUR_F32)
            return aur__err(AUR_EUNSUPPORTED, "%s: input %d is BF16; ops take F32 tensors (use aur_cast)", op, i);
        if (first && in[i]->device != first->device)
            return aur__err(AUR_EINVAL, "%s: inputs on different devices (use aur_to_device)", op);
        if (!first) first = in[i];
    }
    return 0;
}

static int aur__axis(const char *op, int axis, int ndim, int *out)
{
    int a = axis < 0 ? axis + ndim : axis;
    if (a < 0 || a >= ndim) return aur__err(AUR_EINVAL, "%s: axis %d out of range for rank %d", op, axis, ndim);
    *out = a;
    return 0;
}

static const aur_real *aur__cr(const aur_tensor *x) { return (const aur_real *)x->data; }
static aur_real *aur__wr(aur_tensor *x) { return (aur_real *)x->data; }

/* Multi-index of flat index r in a shape, last dim fastest. */
AUR__HD static void aur__unravel(int64_t r, const int64_t *shape, int ndim, int64_t *idx)
{
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t n = shape[d] ? shape[d] : 1;
        idx[d] = r % n;
        r /= n;
    }
}

static void aur__strides(const int64_t *shape, int ndim, int64_t *st)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= shape[d];
    }
}

/* ---- BF16 autocast emulation on the CPU ----
   Under autocast the reference computes matrix products with BF16 operands
   and F32 accumulation and returns BF16. On the CPU we round the operands
   and the result to BF16 values kept in F32, so the same path is testable. */

static void aur__round_bf16_inplace(aur_real *x, int64_t n)
{
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = (aur_real)aur_round_bf16((float)x[i]);
}

/* x itself, or under autocast a BF16-rounded copy in the arena. */
static const aur_real *aur__autocast_in(aur_tape *t, int autocast, const aur_real *x, int64_t n)
{
    if (!autocast) return x;
    aur_real *c = aur__reals(t, AUR_CPU, n);
    if (!c) return NULL;
    memcpy(c, x, (size_t)n * sizeof(aur_real));
    aur__round_bf16_inplace(c, n);
    return c;
}

/* Adds src (n elements) into dst, rounding src to BF16 first under autocast. */
static void aur__acc_into(int autocast, aur_real *dst, aur_real *src, int64_t n)
{
    if (autocast) aur__round_bf16_inplace(src, n);
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* out[c] (+)= sum over rows of x (R x C), in fixed row chunks so the result
   does not depend on the thread count. */
static int aur__sum_rows(aur_tape *t, aur_real *out, const aur_real *x, int64_t R, int64_t C, int accumulate)
{
    enum { CHUNKS = 32 };
    int64_t rows = (R + CHUNKS - 1) / CHUNKS;
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    double *part = (double *)aur__alloc(t, AUR_CPU, sizeof(double) * (size_t)(CHUNKS * C));
    if (!part) return AUR_ENOMEM;
    AUR__OMP_FOR_IF(R * C > AUR__PAR_MIN)
    for (int c = 0; c < CHUNKS; c++) {
        double *p = part + c * C;
        for (int64_t j = 0; j < C; j++) p[j] = 0;
        for (int64_t r = c * rows; r < (c + 1) * rows && r < R; r++)
            for (int64_t j = 0; j < C; j++) p[j] += x[r * C + j];
    }
    for (int64_t j = 0; j < C; j++) {
        double s = 0;
        for (int c = 0; c < CHUNKS; c++) s += part[c * C + j];
        out[j] = accumulate ? out[j] + (aur_real)s : (aur_real)s;
    }
    aur__arena_release(&t->main[AUR_CPU], mk);
    return 0;
}

/* ==== shapes and element rules of ops, shared by the CPU and CUDA paths ==== */

/* The geometry of a batched product. */
typedef struct aur__mm_geom {
    int64_t nb, M, N, K;
    aur__mat a, b;   /* op(a) and op(b) of batch 0 */
    int64_t sa, sb;  /* batch strides (sb = 0: shared 2-D b) */
} aur__mm_geom;

enum { AUR__ADD, AUR__SUB, AUR__MUL };

/* numpy broadcasting of a and b: the output shape, and each operand's
   strides over it (0 where it is broadcast). */
typedef struct aur__bcast {
    int ndim;
    int64_t shape[AUR_MAX_DIMS];
    int64_t sa[AUR_MAX_DIMS], sb[AUR_MAX_DIMS], so[AUR_MAX_DIMS];
} aur__bcast;

enum { AUR__GELU, AUR__GELU_TANH, AUR__SILU, AUR__SIGMOID, AUR__LOGARITHM, AUR__SINE, AUR__COSINE };

typedef struct aur__attn {
    int64_t nb, Lq, Lk, d, dv;
    int lead;                     /* leading dims */
    const int64_t *lead_shape;
    int64_t ms[AUR_MAX_DIMS + 2]; /* mask strides over (lead..., Lq, Lk); 0 where broadcast */
    double scale;
} aur__attn;

/* What a kernel needs to find a row's mask: the mask offset of batch b is
   sum over the lead dims of idx * lead_stride, then + i si + j sj. */
typedef struct aur__attn_mask {
    int lead;
    int64_t lead_shape[AUR_MAX_DIMS], lead_stride[AUR_MAX_DIMS], Lq, si, sj;
} aur__attn_mask;

/* Element-wise ops with one rule each (aur_k_pointwise_* on the GPU). */
enum { AUR__PW_CLAMP, AUR__PW_NAN_TO_NUM, AUR__PW_MASKED_FILL, AUR__PW_REMAINDER, AUR__PW_ATAN2 };

/* A dense tensor of shape `shape` and a strided one it maps to: element idx
   of the dense one is element sum_d ((idx_d + add_d) mod wrap_d) * stride_d
   of the other (no mod where wrap_d is 0). Pad, permute and roll are such maps. */
typedef struct aur__strided {
    int nd;
    int64_t shape[AUR_MAX_DIMS], stride[AUR_MAX_DIMS], add[AUR_MAX_DIMS], wrap[AUR_MAX_DIMS];
} aur__strided;
enum { AUR__GATHER, AUR__GATHER_ADD, AUR__SCATTER, AUR__SCATTER_ADD };

/* Blocks of a deterministic GPU sum: each adds a fixed stride of the
   input, then one block adds the partial sums in a fixed tree. */
#define AUR__REDUCE_SLOTS 256

/* Element rules used by both paths: the CUDA kernels call these same functions. */

AUR__HD static uint64_t aur__mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

AUR__HD static int aur__dropout_keep(uint64_t seed, uint64_t i, double p)
{
    double u = (double)(aur__mix64(seed ^ aur__mix64(i)) >> 40) * (1.0 / 16777216.0);
    return u >= p;
}

enum { AUR__MSE, AUR__MAE, AUR__BCE, AUR__MSE_FINITE };

/* Per-element loss, and its derivatives by the prediction (dp) and target (dt). */
AUR__HD static double aur__elem_loss(int kind, double p, double y, double pw, double *dp, double *dt)
{
    if (kind == AUR__MSE_FINITE && !(isfinite(p) && isfinite(y))) { /* masked out */
        *dp = *dt = 0;
        return 0;
    }
    if (kind == AUR__MSE || kind == AUR__MSE_FINITE) {
        *dp = 2 * (p - y);
        *dt = -*dp;
        return (p - y) * (p - y);
    }
    if (kind == AUR__MAE) {
        *dp = p > y ? 1 : (p < y ? -1 : 0);
        *dt = -*dp;
        return fabs(p - y);
    }
    /* torch: (1 - y) x + lw (log1p(exp(-|x|)) + max(-x, 0)), lw = 1 + (pw - 1) y */
    double lw = 1 + (pw - 1) * y, sp = log1p(exp(-fabs(p))) + (p < 0 ? -p : 0); /* softplus(-x) */
    *dp = (1 - y) - lw / (1 + exp(p));                                        /* sigmoid(-x) = 1/(1+e^x) */
    *dt = -p + (pw - 1) * sp;
    return (1 - y) * p + lw * sp;
}

AUR__HD static float aur__lerp(float a, float b, float w) { return fabsf(w) < 0.5f ? a + w * (b - a) : b - (b - a) * (1 - w); }

/* The scalars of one Adam step, rounded to float where torch meets tensors. */
typedef struct aur__adam_k {
    float decay, l2, w1, fb2, w2, step_size, bc2_sqrt, eps;
    int decoupled, l2_on; /* AdamW's decay of the weight; Adam's L2 term in the gradient */
} aur__adam_k;

/* torch's single-tensor Adam(W) on one element. */
AUR__HD static void aur__adam_elem(const aur__adam_k *k, aur_real *p, aur_real *m, aur_real *v, aur_real g)
{
    float pi = (float)*p, gi = (float)g;
    if (k->decoupled) pi *= k->decay;
    if (k->l2_on) gi = gi + k->l2 * pi;
    float mi = aur__lerp((float)*m, gi, k->w1);
    float vi = (float)*v * k->fb2 + (k->w2 * gi) * gi;
    float denom = sqrtf(vi) / k->bc2_sqrt + k->eps;
    *p = (aur_real)(pi + (k->step_size * mi) / denom);
    *m = (aur_real)mi;
    *v = (aur_real)vi;
}

/* The forward rule of an AUR__PW_* op at one element: v and v2 its inputs, a and b its constants. */
AUR__HD static aur_real aur__pw_value(int kind, aur_real v, aur_real v2, aur_real a, aur_real b)
{
    const aur_real big = sizeof(aur_real) == 4 ? (aur_real)FLT_MAX : (aur_real)DBL_MAX;
    switch (kind) {
    case AUR__PW_CLAMP: return v < a ? a : v > b ? b : v; /* NaN stays NaN */
    case AUR__PW_NAN_TO_NUM: return isnan(v) ? a : isinf(v) ? (v > 0 ? big : -big) : v;
    case AUR__PW_MASKED_FILL: return v2 != 0 ? a : v;
    case AUR__PW_REMAINDER: return v - a * (aur_real)floor((double)(v / a)); /* torch: the sign of the divisor */
    default: return (aur_real)atan2((double)v, (double)v2);
    }
}

/* Its gradient, g times d/dv into *d and d/dv2 into *d2 (either may be NULL): the
   gradient passes where the forward passed v through; atan2(v, v2) has both. */
AUR__HD static void aur__pw_grad(int kind, aur_real v, aur_real v2, aur_real a, aur_real b, aur_real g, aur_real *d,
                                 aur_real *d2)
{
    if (kind == AUR__PW_ATAN2) {
        aur_real r = v2 * v2 + v * v;
        if (d) *d += g * v2 / r;
        if (d2) *d2 -= g * v / r;
        return;
    }
    int pass = kind == AUR__PW_CLAMP ? v >= a && v <= b : kind == AUR__PW_NAN_TO_NUM ? isfinite(v) : v2 == 0;
    if (pass && d) *d += g;
}

/* The flat index of the first maximum of x along the axis of (o, :, i) (len, inner): NaN wins, as in torch. */
AUR__HD static int64_t aur__argmax_along(const aur_real *x, int64_t o, int64_t i, int64_t len, int64_t inner)
{
    int64_t best = o * len * inner + i;
    for (int64_t k = 1; k < len && !isnan(x[best]); k++) {
        int64_t j = (o * len + k) * inner + i;
        if (x[j] > x[best] || isnan(x[j])) best = j;
    }
    return best;
}

/* torch Adafactor's second moments over matrices (rows x cols, in sequence):
   row e's mean of g^2 into r[e], column e's into c[e] (norms in double, as
   torch's norm), a matrix's denominator mean(r) clamped at eps1, and
   element i's update g / sqrt(max(v, eps1^2)) with v = r c / denominator,
   or for a vector the variance r[i] itself, updated here. */
AUR__HD static void aur__af_row(aur_real *r, const aur_real *g, int64_t cols, float w, int64_t e)
{
    double ss = 0;
    for (int64_t j = 0; j < cols; j++) ss += (double)g[e * cols + j] * g[e * cols + j];
    float nr = (float)sqrt(ss);
    r[e] = (aur_real)aur__lerp((float)r[e], nr * nr / (float)cols, w);
}

AUR__HD static void aur__af_col(aur_real *c, const aur_real *g, int64_t rows, int64_t cols, float w, int64_t e)
{
    int64_t b = e / cols, j = e % cols;
    double ss = 0;
    for (int64_t i = 0; i < rows; i++) ss += (double)g[(b * rows + i) * cols + j] * g[(b * rows + i) * cols + j];
    float nc = (float)sqrt(ss);
    c[e] = (aur_real)aur__lerp((float)c[e], nc * nc / (float)rows, w);
}

AUR__HD static float aur__af_denom(const aur_real *r, int64_t rows, float eps1, int64_t b)
{
    double rmean = 0;
    for (int64_t i = 0; i < rows; i++) rmean += r[b * rows + i];
    float d = (float)(rmean / (double)rows);
    return d < eps1 ? eps1 : d;
}

AUR__HD static float aur__af_update(int factored, aur_real *r, const aur_real *c, const aur_real *g, int64_t rows, int64_t cols,
                                    float w, float denom, float floor2, int64_t i)
{
    float v;
    if (factored) {
        int64_t b = i / (rows * cols), ii = i / cols % rows, j = i % cols;
        v = ((float)r[b * rows + ii] * (float)c[b * cols + j]) / denom;
    } else {
        float gi = (float)g[i];
        r[i] = (aur_real)aur__lerp((float)r[i], gi * gi, w);
        v = (float)r[i];
    }
    v = v < floor2 ? floor2 : v;
    return (1.0f / sqrtf(v)) * (float)g[i];
}

/* torch cross_entropy of one row with label y and label smoothing s:
   (1 - s) nll + s mean_c(-log p_c). */
AUR__HD static double aur__ce_row_loss(const aur_real *xr, int64_t C, int64_t y, double s)
{
    double mx = -INFINITY, z = 0, sum_logp = 0;
    for (int64_t c = 0; c < C; c++) mx = xr[c] > mx ? xr[c] : mx;
    for (int64_t c = 0; c < C; c++) z += exp(xr[c] - mx);
    double lse = mx + log(z);
    for (int64_t c = 0; c < C; c++) sum_logp += xr[c] - lse;
    return (1 - s) * (lse - xr[y]) - s * sum_logp / (double)C;
}

/* dx_c += gscale (softmax_c - (1 - s) [c == y] - s / C) */
AUR__HD static void aur__ce_row_grad(aur_real *dxr, const aur_real *xr, int64_t C, int64_t y, double s, double gscale)
{
    double mx = -INFINITY, z = 0;
    for (int64_t c = 0; c < C; c++) mx = xr[c] > mx ? xr[c] : mx;
    for (int64_t c = 0; c < C; c++) z += exp(xr[c] - mx);
    for (int64_t c = 0; c < C; c++) {
        double p = exp(xr[c] - mx) / z, d = p - (c == y ? 1 - s : 0) - s / (double)C;
        dxr[c] += (aur_real)(d * gscale);
    }
}

/* One axis of grid_sample: the pixel coordinate of a normalised one (align_corners
   False), clipped to the border; *pass is 1 where the clip let the gradient through. */
AUR__HD static double aur__grid_coord(double g, int64_t size, int *pass)
{
    double c = ((g + 1) * (double)size - 1) / 2;
    *pass = c > 0 && c < (double)(size - 1);
    return c <= 0 ? 0 : c >= (double)(size - 1) ? (double)(size - 1) : c;
}

/* The four corners and weights of a bilinear sample at (ix, iy). */
typedef struct aur__bilinear {
    int64_t x0, y0;
    double fx, fy; /* fractional parts */
} aur__bilinear;

AUR__HD static aur__bilinear aur__bilinear_at(double ix, double iy)
{
    aur__bilinear b = {(int64_t)floor(ix), (int64_t)floor(iy), 0, 0};
    b.fx = ix - (double)b.x0, b.fy = iy - (double)b.y0;
    return b;
}

/* x's value at (row, col), 0 outside (a corner past the border has weight 0 anyway). */
AUR__HD static double aur__pixel(const aur_real *plane, int64_t H, int64_t W, int64_t r, int64_t c)
{
    return r >= 0 && r < H && c >= 0 && c < W ? (double)plane[r * W + c] : 0.0;
}

/* grid_sample (bilinear, border) as three loops both paths share: the
   samples of sample point e (all channels); the grid's gradient at e; and
   x's gradient for plane bc, its sample points in order (points may share
   pixels, so one plane is one loop: the sums keep their order). x is
   (N, C, H, W), the grid (N, HWo, 2), the output (N, C, HWo). */
AUR__HD static aur__bilinear aur__gs_point(const aur_real *grid, int64_t e, int64_t H, int64_t W, int *px, int *py)
{
    const aur_real *gp = grid + e * 2;
    return aur__bilinear_at(aur__grid_coord(gp[0], W, px), aur__grid_coord(gp[1], H, py));
}

AUR__HD static void aur__gs_sample(aur_real *out, const aur_real *x, const aur_real *grid, int64_t C, int64_t H, int64_t W,
                                   int64_t HWo, int64_t e)
{
    int64_t b = e / HWo, o = e % HWo;
    int px, py;
    aur__bilinear s = aur__gs_point(grid, e, H, W, &px, &py);
    for (int64_t c = 0; c < C; c++) {
        const aur_real *plane = x + (b * C + c) * H * W;
        double v = aur__pixel(plane, H, W, s.y0, s.x0) * (1 - s.fx) * (1 - s.fy) + aur__pixel(plane, H, W, s.y0, s.x0 + 1) * s.fx * (1 - s.fy) +
                   aur__pixel(plane, H, W, s.y0 + 1, s.x0) * (1 - s.fx) * s.fy + aur__pixel(plane, H, W, s.y0 + 1, s.x0 + 1) * s.fx * s.fy;
        out[(b * C + c) * HWo + o] = (aur_real)v;
    }
}

AUR__HD static void aur__gs_dgrid(aur_real *dg, const aur_real *g, const aur_real *x, const aur_real *grid, int64_t C,
                                  int64_t H, int64_t W, int64_t HWo, int64_t e)
{
    int64_t b = e / HWo, o = e % HWo;
    int px, py;
    aur__bilinear s = aur__gs_point(grid, e, H, W, &px, &py);
    double gx = 0, gy = 0;
    for (int64_t c = 0; c < C; c++) {
        const aur_real *plane = x + (b * C + c) * H * W;
        double go = g[(b * C + c) * HWo + o];
        double v00 = aur__pixel(plane, H, W, s.y0, s.x0), v01 = aur__pixel(plane, H, W, s.y0, s.x0 + 1);
        double v10 = aur__pixel(plane, H, W, s.y0 + 1, s.x0), v11 = aur__pixel(plane, H, W, s.y0 + 1, s.x0 + 1);
        gx += go * ((v01 - v00) * (1 - s.fy) + (v11 - v10) * s.fy);
        gy += go * ((v10 - v00) * (1 - s.fx) + (v11 - v01) * s.fx);
    }
    /* chain through the clip and the unnormalisation (size / 2) */
    dg[e * 2] += (aur_real)(px ? gx * (double)W / 2 : 0);
    dg[e * 2 + 1] += (aur_real)(py ? gy * (double)H / 2 : 0);
}

AUR__HD static void aur__gs_dx(aur_real *dx, const aur_real *g, const aur_real *grid, int64_t C, int64_t H, int64_t W,
                               int64_t HWo, int64_t bc)
{
    int64_t b = bc / C;
    for (int64_t o = 0; o < HWo; o++) {
        int px, py;
        aur__bilinear s = aur__gs_point(grid, b * HWo + o, H, W, &px, &py);
        double go = g[bc * HWo + o];
        double w[4] = {(1 - s.fx) * (1 - s.fy), s.fx * (1 - s.fy), (1 - s.fx) * s.fy, s.fx * s.fy};
        int64_t rr[4] = {s.y0, s.y0, s.y0 + 1, s.y0 + 1}, cc[4] = {s.x0, s.x0 + 1, s.x0, s.x0 + 1};
        for (int k = 0; k < 4; k++)
            if (rr[k] >= 0 && rr[k] < H && cc[k] >= 0 && cc[k] < W) dx[bc * H * W + rr[k] * W + cc[k]] += (aur_real)(go * w[k]);
    }
}

#ifdef AUR__HAS_CUDA
#include "kernels.cuh"
#endif

/* ==== op: linear ==== */

static int aur__linear_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *y = n->out;
    int64_t K = w->shape[1], N = w->shape[0], M = x->numel / K;
    aur_real *dx = aur__grad(t, x), *dw = aur__grad(t, w), *db = aur__grad(t, b);
    int ac = (int)n->iarg[7]; /* autocast as it was in the forward pass */
    if (y->device == AUR_META) return 0; /* shapes only */
    if (y->device == AUR_CUDA) return AUR__GPU(aur_cuda_linear_bwd, t, ac, dx, dw, db, y->grad, aur__cr(x), aur__cr(w), M, N, K);
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    const aur_real *dy = aur__autocast_in(t, ac, y->grad, y->numel);
    const aur_real *xc = dw ? aur__autocast_in(t, ac, aur__cr(x), x->numel) : NULL;
    const aur_real *wc = dx ? aur__autocast_in(t, ac, aur__cr(w), w->numel) : NULL;
    int rc = (!dy || (dw && !xc) || (dx && !wc)) ? AUR_ENOMEM : 0;
    if (!rc && dx) { /* dx += dy w */
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, x->numel) : dx;
        rc = tmp ? aur__gemm1(t, M, K, N, aur__matv(dy, N, 1), aur__matv(wc, K, 1), tmp, !ac) : AUR_ENOMEM;
        if (!rc && ac) aur__acc_into(ac, dx, tmp, x->numel);
    }
    if (!rc && dw) { /* dw += dy^T x */
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, w->numel) : dw;
        rc = tmp ? aur__gemm1(t, N, K, M, aur__matv(dy, 1, N), aur__matv(xc, K, 1), tmp, !ac) : AUR_ENOMEM;
        if (!rc && ac) aur__acc_into(ac, dw, tmp, w->numel);
    }
    if (!rc && db) {
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, N) : db;
        rc = tmp ? aur__sum_rows(t, tmp, dy, M, N, !ac) : AUR_ENOMEM;
        if (!rc && ac) aur__acc_into(ac, db, tmp, N);
    }
    aur__arena_release(&t->main[AUR_CPU], mk);
    return rc;
}

AURDEF aur_tensor *aur_linear(aur_tape *t, aur_tensor *x, aur_tensor *w, aur_tensor *b)
{
    aur_tensor *in[3] = {x, w, b};
    char s1[64], s2[64];
    if (aur__check("linear", in, b ? 3 : 2)) return NULL;
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1] || (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))) {
        aur__err(AUR_ESHAPE, "linear: x %s does not fit weight %s (want x (..., in), weight (out, in), bias (out))",
                 aur_shape_str(x->shape, x->ndim, s1, sizeof s1), aur_shape_str(w->shape, w->ndim, s2, sizeof s2));
        return NULL;
    }
    int64_t K = w->shape[1], N = w->shape[0], M = K ? x->numel / K : 0;
    aur_shape ys = aur_tensor_shape(x);
    ys.d[ys.ndim - 1] = N;
    aur_tensor *y = aur__output(t, ys, x->device, in, 3);
    if (!y) return NULL;
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_linear_fwd, t, aur__wr(y), aur__cr(x), aur__cr(w), b ? aur__cr(b) : NULL, M, N, K)) return NULL;
    } else if (x->device == AUR_CPU) {
        aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
        const aur_real *xc = aur__autocast_in(t, t->autocast, aur__cr(x), x->numel), *wc = aur__autocast_in(t, t->autocast, aur__cr(w), w->numel);
        const aur_real *bc = b ? aur__autocast_in(t, t->autocast, aur__cr(b), N) : NULL;
        if (!xc || !wc || (b && !bc) || aur__gemm1(t, M, N, K, aur__matv(xc, K, 1), aur__matv(wc, 1, K), aur__wr(y), 0))
            return NULL;
        aur_real *yd = aur__wr(y);
        if (bc) {
            AUR__OMP_FOR_IF(M * N > AUR__PAR_MIN)
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) yd[i * N + j] += bc[j];
        }
        if (t->autocast) aur__round_bf16_inplace(yd, y->numel);
        aur__arena_release(&t->main[AUR_CPU], mk);
    }
    aur__mark_bf16(y, t->autocast); /* rounded on every device */
    aur__node *n = aur__record(t, y, "linear", aur__linear_back, in, 3);
    if (!n) return NULL;
    if (w->requires_grad) aur__save(t, n, x); /* dw = dy^T x */
    if (x->requires_grad) aur__save(t, n, w); /* dx = dy w */
    n->iarg[7] = t->autocast;
    return y;
}

/* ==== op: batched matmul ==== */

static aur__mm_geom aur__mm_geometry(const aur_tensor *a, const aur_tensor *b, int ta, int tb)
{
    aur__mm_geom g;
    int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    g.M = ta ? ac : ar;
    g.K = ta ? ar : ac;
    g.N = tb ? br : bc;
    g.nb = ar * ac != 0 ? a->numel / (ar * ac) : 0;
    g.a = ta ? aur__matv(aur__cr(a), 1, ac) : aur__matv(aur__cr(a), ac, 1);
    g.b = tb ? aur__matv(aur__cr(b), 1, bc) : aur__matv(aur__cr(b), bc, 1);
    g.sa = ar * ac;
    g.sb = b->ndim == 2 ? 0 : br * bc;
    return g;
}

static int aur__matmul_back(aur_tape *t, aur__node *n)
{
    aur_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    int ta = (int)n->iarg[0], tb = (int)n->iarg[1], ac = (int)n->iarg[7]; /* autocast as in the forward */
    aur__mm_geom g = aur__mm_geometry(a, b, ta, tb);
    aur_real *da = aur__grad(t, a), *db = aur__grad(t, b);
    int64_t ldy = g.N, sy = g.M * g.N;
    int rc = 0;
    if (y->device == AUR_META) return 0; /* shapes only */
    if (y->device == AUR_CUDA) return AUR__GPU(aur_cuda_matmul_bwd, t, ac, &g, a->numel, b->numel, da, db, y->grad, ta, tb);
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    const aur_real *dy = aur__autocast_in(t, ac, y->grad, y->numel);
    if (ac) {
        g.a.p = aur__autocast_in(t, ac, g.a.p, a->numel);
        g.b.p = aur__autocast_in(t, ac, g.b.p, b->numel);
    }
    if (!dy || !g.a.p || !g.b.p) rc = AUR_ENOMEM;
    if (!rc && da) {
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, a->numel) : da;
        if (!tmp) rc = AUR_ENOMEM;
        else if (!ta) /* da (M x K) += dy opB^T */
            rc = aur__gemm_batched(t, g.nb, g.M, g.K, g.N, aur__matv(dy, ldy, 1), sy, aur__matv(g.b.p, g.b.cs, g.b.rs),
                                   g.sb, tmp, g.sa, g.K, !ac);
        else /* da (K x M) += opB dy^T */
            rc = aur__gemm_batched(t, g.nb, g.K, g.M, g.N, g.b, g.sb, aur__matv(dy, 1, ldy), sy, tmp, g.sa, g.M,
                                   !ac);
        if (!rc && ac) aur__acc_into(ac, da, tmp, a->numel);
    }
    if (!rc && db) {
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, b->numel) : db;
        int64_t nbb = g.sb ? g.nb : 1, steps = g.sb ? 1 : g.nb;
        if (!tmp) rc = AUR_ENOMEM;
        /* a shared b sums the batches one after another (in order: deterministic) */
        for (int64_t s = 0; s < steps && !rc; s++) {
            int acc = !ac || s > 0;
            aur__mat as = aur__matv(g.a.p + s * g.sa, g.a.rs, g.a.cs);
            const aur_real *dys = dy + s * sy;
            if (!tb) /* db (K x N) += opA^T dy */
                rc = aur__gemm_batched(t, nbb, g.K, g.N, g.M, aur__matv(as.p, as.cs, as.rs), g.sa,
                                       aur__matv(dys, ldy, 1), sy, tmp, g.sb, g.N, acc);
            else /* db (N x K) += dy^T opA */
                rc = aur__gemm_batched(t, nbb, g.N, g.K, g.M, aur__matv(dys, 1, ldy), sy, as, g.sa, tmp, g.sb, g.K,
                                       acc);
        }
        if (!rc && ac) aur__acc_into(ac, db, tmp, b->numel);
    }
    aur__arena_release(&t->main[AUR_CPU], mk);
    return rc;
}

AURDEF aur_tensor *aur_matmul(aur_tape *t, aur_tensor *a, aur_tensor *b, int ta, int tb)
{
    aur_tensor *in[2] = {a, b};
    char s1[64], s2[64];
    if (aur__check("matmul", in, 2)) return NULL;
    int bad = a->ndim < 2 || b->ndim < 2;
    if (!bad && b->ndim > 2) {
        bad = b->ndim != a->ndim;
        for (int i = 0; i + 2 < a->ndim && !bad; i++) bad = a->shape[i] != b->shape[i];
    }
    if (!bad) {
        aur__mm_geom g = aur__mm_geometry(a, b, ta, tb);
        bad = (tb ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2]) != g.K;
    }
    if (bad) {
        aur__err(AUR_ESHAPE, "matmul: a %s%s and b %s%s do not fit (want (..., M, K) x (..., K, N) or a 2-D b)",
                 aur_shape_str(a->shape, a->ndim, s1, sizeof s1), ta ? "^T" : "",
                 aur_shape_str(b->shape, b->ndim, s2, sizeof s2), tb ? "^T" : "");
        return NULL;
    }
    aur__mm_geom g = aur__mm_geometry(a, b, ta, tb);
    aur_shape ys = aur_tensor_shape(a);
    ys.d[ys.ndim - 2] = g.M;
    ys.d[ys.ndim - 1] = g.N;
    aur_tensor *y = aur__output(t, ys, a->device, in, 2);
    if (!y) return NULL;
    if (a->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_matmul_fwd, t, &g, a->numel, b->numel, aur__wr(y))) return NULL;
    } else if (a->device == AUR_CPU) {
        aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
        g.a.p = aur__autocast_in(t, t->autocast, g.a.p, a->numel);
        g.b.p = aur__autocast_in(t, t->autocast, g.b.p, b->numel);
        if (!g.a.p || !g.b.p ||
            aur__gemm_batched(t, g.nb, g.M, g.N, g.K, g.a, g.sa, g.b, g.sb, aur__wr(y), g.M * g.N, g.N, 0))
            return NULL;
        if (t->autocast) aur__round_bf16_inplace(aur__wr(y), y->numel);
        aur__arena_release(&t->main[AUR_CPU], mk);
    }
    aur__mark_bf16(y, t->autocast);
    aur__node *n = aur__record(t, y, "matmul", aur__matmul_back, in, 2);
    if (!n) return NULL;
    if (b->requires_grad) aur__save(t, n, a);
    if (a->requires_grad) aur__save(t, n, b);
    n->iarg[0] = ta;
    n->iarg[1] = tb;
    n->iarg[7] = t->autocast;
    return y;
}

/* ==== ops: elementwise with broadcasting ==== */

static int aur__broadcast(const char *op, const aur_tensor *a, const aur_tensor *b, aur__bcast *g)
{
    char s1[64], s2[64];
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t sta[AUR_MAX_DIMS], stb[AUR_MAX_DIMS];
    aur__strides(a->shape, a->ndim, sta);
    aur__strides(b->shape, b->ndim, stb);
    g->ndim = nd;
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t na = da >= 0 ? a->shape[da] : 1, nb = db >= 0 ? b->shape[db] : 1;
        if (na != nb && na != 1 && nb != 1)
            return aur__err(AUR_ESHAPE, "%s: shapes %s and %s do not broadcast", op,
                            aur_shape_str(a->shape, a->ndim, s1, sizeof s1), aur_shape_str(b->shape, b->ndim, s2, sizeof s2));
        g->shape[d] = na > nb ? na : nb;
        g->sa[d] = (da >= 0 && na == g->shape[d]) ? sta[da] : 0;
        g->sb[d] = (db >= 0 && nb == g->shape[d]) ? stb[db] : 0;
    }
    aur__strides(g->shape, nd, g->so);
    return 0;
}

/* Offsets of row r (all dims but the last) in a and b. */
static void aur__bcast_row(const aur__bcast *g, int64_t r, int64_t *oa, int64_t *ob)
{
    int64_t idx[AUR_MAX_DIMS];
    aur__unravel(r, g->shape, g->ndim - 1, idx);
    *oa = *ob = 0;
    for (int d = 0; d < g->ndim - 1; d++) {
        *oa += idx[d] * g->sa[d];
        *ob += idx[d] * g->sb[d];
    }
}

static void aur__binary_fwd(int kind, const aur__bcast *g, aur_real *y, const aur_real *a, const aur_real *b)
{
    int64_t last = g->ndim ? g->shape[g->ndim - 1] : 1, rows = 1;
    for (int d = 0; d + 1 < g->ndim; d++) rows *= g->shape[d];
    int64_t ja = g->ndim ? g->sa[g->ndim - 1] : 1, jb = g->ndim ? g->sb[g->ndim - 1] : 1;
    AUR__OMP_FOR_IF(rows * last > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob;
        aur__bcast_row(g, r, &oa, &ob);
        const aur_real *ar = a + oa, *br = b + ob;
        aur_real *yr = y + r * last;
        if (kind == AUR__ADD)
            for (int64_t j = 0; j < last; j++) yr[j] = ar[j * ja] + br[j * jb];
        else if (kind == AUR__SUB)
            for (int64_t j = 0; j < last; j++) yr[j] = ar[j * ja] - br[j * jb];
        else
            for (int64_t j = 0; j < last; j++) yr[j] = ar[j * ja] * br[j * jb];
    }
}

/* d (strides sd over the output) += sign * dy * other (strides so), summing
   over broadcast dims. Parallel only when d is not broadcast (no two rows
   write the same element), so the sums are deterministic. */
static void aur__binary_acc(const aur__bcast *g, aur_real *d, const int64_t *sd, const aur_real *dy,
                            const aur_real *other, const int64_t *so, aur_real sign)
{
    int64_t last = g->ndim ? g->shape[g->ndim - 1] : 1, rows = 1;
    int full = 1;
    for (int i = 0; i < g->ndim; i++) full &= sd[i] == g->so[i];
    for (int i = 0; i + 1 < g->ndim; i++) rows *= g->shape[i];
    int64_t jd = g->ndim ? sd[g->ndim - 1] : 1, jo = g->ndim && other ? so[g->ndim - 1] : 0;
    AUR__OMP_FOR_IF(full && rows * last > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t idx[AUR_MAX_DIMS], od = 0, oo = 0;
        aur__unravel(r, g->shape, g->ndim - 1, idx);
        for (int i = 0; i + 1 < g->ndim; i++) {
            od += idx[i] * sd[i];
            if (other) oo += idx[i] * so[i];
        }
        const aur_real *dyr = dy + r * last;
        if (other)
            for (int64_t j = 0; j < last; j++) d[od + j * jd] += sign * dyr[j] * other[oo + j * jo];
        else
            for (int64_t j = 0; j < last; j++) d[od + j * jd] += sign * dyr[j];
    }
}

static int aur__binary_back(aur_tape *t, aur__node *n)
{
    aur_tensor *a = n->in[0], *b = n->in[1];
    int kind = (int)n->iarg[0];
    aur__bcast g;
    aur__broadcast(n->op, a, b, &g);
    aur_real *da = aur__grad(t, a), *db = aur__grad(t, b);
    if (a->device == AUR_META) return 0; /* shapes only */
    if (a->device == AUR_CUDA) return AUR__GPU(aur_cuda_binary_bwd, t, kind, &g, da, db, n->out->grad, aur__cr(a), aur__cr(b));
    if (da) aur__binary_acc(&g, da, g.sa, n->out->grad, kind == AUR__MUL ? aur__cr(b) : NULL, g.sb, 1);
    if (db) aur__binary_acc(&g, db, g.sb, n->out->grad, kind == AUR__MUL ? aur__cr(a) : NULL, g.sa, kind == AUR__SUB ? -1 : 1);
    return 0;
}

static aur_tensor *aur__binary(aur_tape *t, int kind, const char *op, aur_tensor *a, aur_tensor *b)
{
    aur_tensor *in[2] = {a, b};
    aur__bcast g;
    if (aur__check(op, in, 2) || aur__broadcast(op, a, b, &g)) return NULL;
    aur_tensor *y = aur__output(t, aur_shapev(g.ndim, g.shape), a->device, in, 2);
    if (!y) return NULL;
    if (a->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_binary_fwd, kind, &g, aur__wr(y), aur__cr(a), aur__cr(b))) return NULL;
    } else if (a->device == AUR_CPU)
        aur__binary_fwd(kind, &g, aur__wr(y), aur__cr(a), aur__cr(b));
    aur__node *n = aur__record(t, y, op, aur__binary_back, in, 2);
    if (!n) return NULL;
    if (kind == AUR__MUL && b->requires_grad) aur__save(t, n, a); /* a sum or difference reads neither */
    if (kind == AUR__MUL && a->requires_grad) aur__save(t, n, b);
    n->iarg[0] = kind;
    return y;
}

AURDEF aur_tensor *aur_add(aur_tape *t, aur_tensor *a, aur_tensor *b) { return aur__binary(t, AUR__ADD, "add", a, b); }
AURDEF aur_tensor *aur_sub(aur_tape *t, aur_tensor *a, aur_tensor *b) { return aur__binary(t, AUR__SUB, "sub", a, b); }
AURDEF aur_tensor *aur_mul(aur_tape *t, aur_tensor *a, aur_tensor *b) { return aur__binary(t, AUR__MUL, "mul", a, b); }

/* ==== op: scale ==== */

static int aur__scale_back(aur_tape *t, aur__node *n)
{
    aur_real *dx = aur__grad(t, n->in[0]), s = (aur_real)n->farg[0];
    const aur_real *dy = n->out->grad;
    int64_t N = n->out->numel;
    if (n->out->device == AUR_META) return 0;
    if (n->out->device == AUR_CUDA) return AUR__GPU(aur_cuda_axpy, dx, dy, s, N);
    AUR__OMP_FOR_IF(N > AUR__PAR_MIN)
    for (int64_t i = 0; i < N; i++) dx[i] += s * dy[i];
    return 0;
}

AURDEF aur_tensor *aur_scale(aur_tape *t, aur_tensor *x, double s)
{
    if (aur__check("scale", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    aur_real sr = (aur_real)s, *yd = aur__wr(y);
    const aur_real *xd = aur__cr(x);
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_scale, yd, xd, sr, x->numel)) return NULL;
    } else if (x->device == AUR_CPU) {
        AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
        for (int64_t i = 0; i < x->numel; i++) yd[i] = xd[i] * sr;
    }
    aur__node *n = aur__record(t, y, "scale", aur__scale_back, &x, 1);
    if (!n) return NULL;
    n->farg[0] = s;
    return y;
}

/* ==== op: layer norm ====
   torch.nn.LayerNorm over the last dim C: y = (x - mean) * rstd * w + b with
   the biased variance. Statistics in double; saves mean and rstd per row. */

static void aur__layernorm_fwd(aur_real *y, aur_real *mean, aur_real *rstd, const aur_real *x, const aur_real *w,
                               const aur_real *b, int64_t N, int64_t C, double eps)
{
    AUR__OMP_FOR_IF(N * C > AUR__PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const aur_real *xr = x + r * C;
        double s = 0, v = 0;
        for (int64_t j = 0; j < C; j++) s += xr[j];
        double m = C ? s / (double)C : 0;
        for (int64_t j = 0; j < C; j++) v += (xr[j] - m) * (xr[j] - m);
        aur_real mr = (aur_real)m, rs = (aur_real)(1.0 / sqrt((C ? v / (double)C : 0) + eps));
        mean[r] = mr;
        rstd[r] = rs;
        aur_real *yr = y + r * C;
        for (int64_t j = 0; j < C; j++) {
            aur_real h = (xr[j] - mr) * rs;
            yr[j] = w ? h * w[j] + b[j] : h;
        }
    }
}

/* dx += rstd (g - mean(g) - xhat mean(g xhat)) with g = dy w; dxhat_w = dy xhat (for dw). */
static void aur__layernorm_bwd(aur_real *dx, aur_real *dy_xhat, const aur_real *dy, const aur_real *x,
                               const aur_real *w, const aur_real *mean, const aur_real *rstd, int64_t N, int64_t C)
{
    AUR__OMP_FOR_IF(N * C > AUR__PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const aur_real *xr = x + r * C, *dyr = dy + r * C;
        double sg = 0, sgx = 0;
        for (int64_t j = 0; j < C; j++) {
            double h = (xr[j] - mean[r]) * rstd[r], g = dyr[j] * (w ? w[j] : 1);
            sg += g;
            sgx += g * h;
            if (dy_xhat) dy_xhat[r * C + j] = (aur_real)(dyr[j] * h);
        }
        if (!dx) continue;
        double mg = sg / (double)C, mgx = sgx / (double)C;
        for (int64_t j = 0; j < C; j++) {
            double h = (xr[j] - mean[r]) * rstd[r], g = dyr[j] * (w ? w[j] : 1);
            dx[r * C + j] += (aur_real)(rstd[r] * (g - mg - h * mgx));
        }
    }
}

/* y = layernorm(x) on x's device, with each row's mean and 1/std in stats (2 N). */
static int aur__layernorm_run(aur_tensor *y, aur_real *stats, const aur_tensor *x, const aur_tensor *w, const aur_tensor *b, double eps)
{
    int64_t C = x->shape[x->ndim - 1], N = x->numel / C;
    const aur_real *wd = w ? aur__cr(w) : NULL, *bd = b ? aur__cr(b) : NULL;
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_layernorm_fwd, aur__wr(y), stats, stats + N, aur__cr(x), wd, bd, N, C, eps);
    if (x->device == AUR_CPU) aur__layernorm_fwd(aur__wr(y), stats, stats + N, aur__cr(x), wd, bd, N, C, eps);
    return 0;
}

/* y's bytes again: the same forward over the same input (its statistics come out the same). */
static int aur__layernorm_rebuild(aur_tape *t, const aur__rebuild *r, aur_tensor *y)
{
    const aur_tensor *x = r->in[0];
    aur__mark mk = aur__arena_mark(&t->main[x->device]);
    aur_real *stats = aur__reals(t, x->device, 2 * (x->numel / x->shape[x->ndim - 1]));
    int rc = stats ? aur__layernorm_run(y, stats, x, r->in[1], r->in[2], r->arg) : AUR_ENOMEM;
    aur__arena_release(&t->main[x->device], mk);
    return rc;
}

static int aur__layernorm_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int64_t C = x->shape[x->ndim - 1], N = C ? x->numel / C : 0;
    aur_real *dx = aur__grad(t, x), *dw = aur__grad(t, w), *db = aur__grad(t, b);
    const aur_real *dy = n->out->grad;
    const aur_real *mean = (const aur_real *)n->saved[0], *rstd = (const aur_real *)n->saved[1];
    aur__mark mk = aur__arena_mark(&t->main[x->device]);
    aur_real *dyx = dw ? aur__reals(t, x->device, x->numel) : NULL;
    if (dw && !dyx) return AUR_ENOMEM;
    int rc = 0;
    if (x->device == AUR_CUDA) {
        rc = AUR__GPU(aur_cuda_layernorm_bwd, t, dx, dw, db, dyx, dy, aur__cr(x), w ? aur__cr(w) : NULL, mean, rstd, N, C);
    } else if (x->device == AUR_CPU) {
        aur__layernorm_bwd(dx, dyx, dy, aur__cr(x), w ? aur__cr(w) : NULL, mean, rstd, N, C);
        if (dw) rc = aur__sum_rows(t, dw, dyx, N, C, 1);
        if (db && !rc) rc = aur__sum_rows(t, db, dy, N, C, 1);
    }
    aur__arena_release(&t->main[x->device], mk);
    return rc;
}

AURDEF aur_tensor *aur_layernorm(aur_tape *t, aur_tensor *x, aur_tensor *w, aur_tensor *b, double eps)
{
    aur_tensor *in[3] = {x, w, b};
    char s1[64];
    if (x && (!w) != (!b)) {
        aur__err(AUR_EINVAL, "layernorm: give both weight and bias, or neither");
        return NULL;
    }
    if (aur__check("layernorm", in, w ? 3 : 1)) return NULL;
    int64_t C = x->ndim ? x->shape[x->ndim - 1] : 0;
    if (x->ndim < 1 || C == 0 ||
        (w && (w->numel != C || b->numel != C))) {
        aur__err(AUR_ESHAPE, "layernorm: x %s with weight/bias of %lld/%lld elements (want both or neither, C each)",
                 aur_shape_str(x->shape, x->ndim, s1, sizeof s1), w ? (long long)w->numel : 0LL,
                 b ? (long long)b->numel : 0LL);
        return NULL;
    }
    int64_t N = x->numel / C;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, in, w ? 3 : 1);
    aur__storage *kept = NULL;
    aur_real *stats = y ? (aur_real *)aur__buffer(t, x->device, sizeof(aur_real) * (size_t)(2 * N), &kept) : NULL;
    if (!stats || aur__layernorm_run(y, stats, x, w, b, eps)) return NULL;
    aur__node *n = aur__record(t, y, "layernorm", aur__layernorm_back, in, 3);
    if (!n) return NULL;
    aur__keep_buffer(t, n, kept);
    aur__rebuildable(t, y, aur__layernorm_rebuild, x, w, b, 0, eps, NULL, NULL);
    if (x->requires_grad || (w && w->requires_grad)) aur__save(t, n, x); /* the bias's gradient needs only dy */
    if (x->requires_grad) aur__save(t, n, w);
    n->saved[0] = stats;
    n->saved[1] = stats + N;
    return y;
}

/* ==== ops: activations ==== */

static const char *const aur__unary_names[] = {"gelu", "gelu_tanh", "silu", "sigmoid", "log", "sin", "cos"};
#define AUR__SQRT1_2 0.70710678118654752440
#define AUR__SQRT_2_PI 0.79788456080286535588 /* sqrt(2/pi) */
#define AUR__INV_SQRT_2PI 0.39894228040143267794

static aur_real aur__sigm(aur_real x) { return 1 / (1 + AUR__EXP(-x)); }

static void aur__unary_fwd(int kind, aur_real *y, const aur_real *x, int64_t n)
{
    const aur_real k0 = (aur_real)AUR__SQRT_2_PI, k1 = (aur_real)0.044715, r2 = (aur_real)AUR__SQRT1_2;
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        aur_real v = x[i];
        switch (kind) {
        case AUR__GELU: y[i] = (aur_real)0.5 * v * (1 + AUR__ERF(v * r2)); break;
        case AUR__GELU_TANH: y[i] = (aur_real)0.5 * v * (1 + AUR__TANH(k0 * (v + k1 * v * v * v))); break;
        case AUR__SILU: y[i] = v * aur__sigm(v); break;
        case AUR__SIGMOID: y[i] = aur__sigm(v); break;
        case AUR__LOGARITHM: y[i] = AUR__LOG(v); break;
        case AUR__SINE: y[i] = AUR__SIN(v); break;
        default: y[i] = AUR__COS(v); break;
        }
    }
}

/* dx (+)= dy f'(x); fresh: dx is dy's own bytes (aur__grad_in_place), written over as 0 + dy f'(x) would be */
static void aur__unary_bwd(int kind, aur_real *dx, const aur_real *dy, const aur_real *x, const aur_real *y, int64_t n, int fresh)
{
    const aur_real k0 = (aur_real)AUR__SQRT_2_PI, k1 = (aur_real)0.044715, r2 = (aur_real)AUR__SQRT1_2;
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        aur_real v = x[i], d;
        switch (kind) {
        case AUR__GELU: /* Phi(x) + x phi(x) */
            d = (aur_real)0.5 * (1 + AUR__ERF(v * r2)) + v * (aur_real)AUR__INV_SQRT_2PI * AUR__EXP((aur_real)-0.5 * v * v);
            break;
        case AUR__GELU_TANH: {
            aur_real th = AUR__TANH(k0 * (v + k1 * v * v * v));
            d = (aur_real)0.5 * (1 + th) + (aur_real)0.5 * v * (1 - th * th) * k0 * (1 + 3 * k1 * v * v);
            break;
        }
        case AUR__SILU: {
            aur_real s = aur__sigm(v);
            d = s * (1 + v * (1 - s));
            break;
        }
        case AUR__SIGMOID: d = y[i] * (1 - y[i]); break;
        case AUR__LOGARITHM: d = 1 / v; break;
        case AUR__SINE: d = AUR__COS(v); break;
        default: d = -AUR__SIN(v); break;
        }
        dx[i] = (fresh ? (aur_real)0 : dx[i]) + dy[i] * d;
    }
}

/* y = f(x) on x's device. */
static int aur__unary_run(int kind, aur_tensor *y, const aur_tensor *x)
{
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_unary_fwd, kind, aur__wr(y), aur__cr(x), x->numel);
    if (x->device == AUR_CPU) aur__unary_fwd(kind, aur__wr(y), aur__cr(x), x->numel);
    return 0;
}

static int aur__unary_rebuild(aur_tape *t, const aur__rebuild *r, aur_tensor *y)
{
    (void)t;
    return aur__unary_run(r->kind, y, r->in[0]);
}

static int aur__unary_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    const aur_real *dy = n->out->grad;
    int fresh = aur__grad_in_place(x, n->out);
    aur_real *dx = fresh ? x->grad : aur__grad(t, x);
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_unary_bwd, (int)n->iarg[0], dx, dy, aur__cr(x), aur__cr(n->out), x->numel, fresh);
    aur__unary_bwd((int)n->iarg[0], dx, dy, aur__cr(x), aur__cr(n->out), x->numel, fresh);
    return 0;
}

static aur_tensor *aur__unary(aur_tape *t, int kind, aur_tensor *x)
{
    const char *op = aur__unary_names[kind];
    if (aur__check(op, &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y || aur__unary_run(kind, y, x)) return NULL;
    aur__node *n = aur__record(t, y, op, aur__unary_back, &x, 1);
    if (!n) return NULL;
    aur__save(t, n, kind == AUR__SIGMOID ? y : x); /* sigmoid' = y (1 - y) */
    if (kind != AUR__SIGMOID) aur__rebuildable(t, y, aur__unary_rebuild, x, NULL, NULL, kind, 0, NULL, NULL);
    n->iarg[0] = kind;
    return y;
}

AURDEF aur_tensor *aur_gelu(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__GELU, x); }
AURDEF aur_tensor *aur_gelu_tanh(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__GELU_TANH, x); }
AURDEF aur_tensor *aur_silu(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__SILU, x); }
AURDEF aur_tensor *aur_sigmoid(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__SIGMOID, x); }
AURDEF aur_tensor *aur_log(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__LOGARITHM, x); }
AURDEF aur_tensor *aur_sin(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__SINE, x); }
AURDEF aur_tensor *aur_cos(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__COSINE, x); }

/* ==== op: softmax over the last dim ==== */

static void aur__softmax_row(aur_real *y, const aur_real *x, int64_t n)
{
    aur_real mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    double s = 0;
    for (int64_t j = 0; j < n; j++) {
        y[j] = AUR__EXP(x[j] - mx);
        s += y[j];
    }
    aur_real inv = (aur_real)(1.0 / s);
    for (int64_t j = 0; j < n; j++) y[j] *= inv;
}

/* dx += y (dy - sum(dy y)) for one row. */
static void aur__softmax_row_bwd(aur_real *dx, const aur_real *dy, const aur_real *y, int64_t n)
{
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += (double)dy[j] * y[j];
    for (int64_t j = 0; j < n; j++) dx[j] += y[j] * (dy[j] - (aur_real)s);
}

static int aur__softmax_back(aur_tape *t, aur__node *n)
{
    aur_tensor *y = n->out;
    int64_t C = y->shape[y->ndim - 1], R = C ? y->numel / C : 0;
    aur_real *dx = aur__grad(t, n->in[0]);
    if (y->device == AUR_META) return 0; /* shapes only */
    if (y->device == AUR_CUDA) return AUR__GPU(aur_cuda_softmax_bwd, dx, y->grad, aur__cr(y), R, C);
    AUR__OMP_FOR_IF(y->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < R; r++) aur__softmax_row_bwd(dx + r * C, y->grad + r * C, aur__cr(y) + r * C, C);
    return 0;
}

AURDEF aur_tensor *aur_softmax(aur_tape *t, aur_tensor *x)
{
    if (aur__check("softmax", &x, 1)) return NULL;
    if (x->ndim < 1) {
        aur__err(AUR_ESHAPE, "softmax: needs at least one dim");
        return NULL;
    }
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    int64_t C = x->shape[x->ndim - 1], R = C ? x->numel / C : 0;
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_softmax_fwd, aur__wr(y), aur__cr(x), R, C)) return NULL;
    } else if (x->device == AUR_CPU) {
        AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
        for (int64_t r = 0; r < R; r++) aur__softmax_row(aur__wr(y) + r * C, aur__cr(x) + r * C, C);
    }
    aur__node *n = aur__record(t, y, "softmax", aur__softmax_back, &x, 1);
    if (!n) return NULL;
    aur__save(t, n, y);
    return y;
}

/* ==== op: scaled dot-product attention ====
   Per batch: P = softmax(q k^T * scale + mask), o = P v. P is not kept:
   backward rebuilds it per batch (on a GPU from each row's log-sum-exp).
   Backward: dP = do v^T, dv += P^T do, dS = P (dP - rowsum(dP P)),
   dq += scale dS k, dk += scale dS^T q, dmask += dS (summed where broadcast). */


static int64_t aur__mask_offset(const aur__attn *g, int64_t b)
{
    int64_t idx[AUR_MAX_DIMS], off = 0;
    aur__unravel(b, g->lead_shape, g->lead, idx);
    for (int i = 0; i < g->lead; i++) off += idx[i] * g->ms[i];
    return off;
}

static int aur__attn_geometry(const aur_tensor *q, const aur_tensor *k, const aur_tensor *v, const aur_tensor *mask,
                              double scale, aur__attn *g)
{
    char s1[64], s2[64], s3[64];
    int R = q->ndim, bad = R < 2 || k->ndim != R || v->ndim != R;
    for (int i = 0; i + 2 < R && !bad; i++) bad = k->shape[i] != q->shape[i] || v->shape[i] != q->shape[i];
    if (!bad) bad = k->shape[R - 1] != q->shape[R - 1] || v->shape[R - 2] != k->shape[R - 2];
    if (bad)
        return aur__err(AUR_ESHAPE, "sdpa: q %s, k %s, v %s do not fit (want (..., Lq, d), (..., Lk, d), (..., Lk, dv))",
                        aur_shape_str(q->shape, q->ndim, s1, sizeof s1), aur_shape_str(k->shape, k->ndim, s2, sizeof s2),
                        aur_shape_str(v->shape, v->ndim, s3, sizeof s3));
    g->lead = R - 2;
    g->lead_shape = q->shape;
    g->Lq = q->shape[R - 2];
    g->d = q->shape[R - 1];
    g->Lk = k->shape[R - 2];
    g->dv = v->shape[R - 1];
    g->nb = 1;
    for (int i = 0; i < R - 2; i++) g->nb *= q->shape[i];
    g->scale = scale > 0 ? scale : 1.0 / sqrt((double)(g->d ? g->d : 1));
    memset(g->ms, 0, sizeof g->ms);
    if (!mask) return 0;
    if (mask->ndim > R) return aur__err(AUR_ESHAPE, "sdpa: the mask has more dims than q");
    int64_t st[AUR_MAX_DIMS], full[AUR_MAX_DIMS + 2];
    aur__strides(mask->shape, mask->ndim, st);
    for (int i = 0; i < R; i++) full[i] = i < R - 2 ? q->shape[i] : (i == R - 2 ? g->Lq : g->Lk);
    for (int i = 0; i < mask->ndim; i++) {
        int d = R - mask->ndim + i;
        if (mask->shape[i] != full[d] && mask->shape[i] != 1)
            return aur__err(AUR_ESHAPE, "sdpa: mask %s does not broadcast to the scores (..., %lld, %lld)",
                            aur_shape_str(mask->shape, mask->ndim, s1, sizeof s1), (long long)g->Lq, (long long)g->Lk);
        g->ms[d] = mask->shape[i] == 1 ? 0 : st[i];
    }
    return 0;
}

#ifdef AUR__HAS_CUDA /* ---- CUDA builds only: the GPU forward and backward (several launches each) ---- */
static const aur_real *aur__sdpa_operand(aur_tape *t, int ac, const aur_real *x, int64_t n)
{
    return ac ? aur__cuda_rounded(t, x, n) : x;
}

/* lse (kept for backward) gets each score row's log-sum-exp; the weights themselves are scratch. */
static int aur__sdpa_fwd_cuda(aur_tape *t, const aur__attn *g, aur_tensor *y, aur_real *lse, const aur_tensor *q,
                              const aur_tensor *k, const aur_tensor *v, const aur_tensor *mask)
{
    int ac = t->autocast;
    int fused = aur__attn_fusable(g, t->fused_attention); /* no score matrix at all */
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    aur_real *P = fused ? NULL : aur__reals(t, AUR_CUDA, g->nb * g->Lq * g->Lk);
    const aur_real *qd = aur__sdpa_operand(t, ac, aur__cr(q), q->numel), *kd = aur__sdpa_operand(t, ac, aur__cr(k), k->numel);
    const aur_real *vd = aur__sdpa_operand(t, ac, aur__cr(v), v->numel);
    const aur_real *md = mask ? aur__sdpa_operand(t, ac, aur__cr(mask), mask->numel) : NULL;
    int rc = (P || fused) && qd && kd && vd && (md || !mask) ? 0 : aur__err(AUR_ENOMEM, "sdpa: out of GPU memory for the attention weights");
    if (!rc) rc = fused ? aur_cuda_attn_fwd(g, aur__wr(y), lse, qd, kd, vd, md) : aur_cuda_sdpa_fwd(g, aur__wr(y), P, lse, qd, kd, vd, md);
    if (!rc && ac) rc = aur__cuda_round(aur__wr(y), aur__cr(y), 0, y->numel);
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}

/* The mask gradient as a broadcast sum: dS over (lead..., Lq, Lk) into the mask's strides. */
static aur__bcast aur__sdpa_mask_bcast(const aur__attn *g, int R)
{
    aur__bcast b;
    memset(&b, 0, sizeof b);
    b.ndim = R;
    for (int i = 0; i < R; i++) {
        b.shape[i] = i < g->lead ? g->lead_shape[i] : i == g->lead ? g->Lq : g->Lk;
        b.sb[i] = g->ms[i];
    }
    aur__strides(b.shape, R, b.so);
    memcpy(b.sa, b.so, sizeof b.sa);
    return b;
}

static int aur__sdpa_back_cuda(aur_tape *t, aur__node *n, const aur__attn *g, aur_real *dq, aur_real *dk, aur_real *dv,
                               aur_real *dm, const aur_real *lse)
{
    aur_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2], *mask = n->in[3];
    int ac = (int)n->iarg[7]; /* autocast as in the forward: the operands rounded to BF16, F32 math, as on the CPU */
    int64_t LL = g->Lq * g->Lk;
    int fused = aur__attn_fusable(g, (int)n->iarg[6]) && !dm; /* a mask gradient needs the score gradient itself */
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    /* fused: one number per query row (rowsum(dP P)); otherwise the weights P and their gradient dS */
    aur_real *D = fused ? aur__reals(t, AUR_CUDA, g->nb * g->Lq) : NULL;
    aur_real *P = fused ? NULL : aur__reals(t, AUR_CUDA, g->nb * LL), *dS = fused ? NULL : aur__reals(t, AUR_CUDA, g->nb * LL);
    aur__bcast mb = aur__sdpa_mask_bcast(g, q->ndim);
    const aur_real *dO = aur__sdpa_operand(t, ac, n->out->grad, n->out->numel), *qd = aur__sdpa_operand(t, ac, aur__cr(q), q->numel);
    const aur_real *kd = aur__sdpa_operand(t, ac, aur__cr(k), k->numel), *vd = aur__sdpa_operand(t, ac, aur__cr(v), v->numel);
    const aur_real *md = mask ? aur__sdpa_operand(t, ac, aur__cr(mask), mask->numel) : NULL;
    int rc = (fused ? D != NULL : P && dS) && dO && qd && kd && vd && (md || !mask) ? 0
             : aur__err(AUR_ENOMEM, "sdpa: no GPU memory for the attention weights and their gradient");
    if (!rc) rc = fused ? aur_cuda_attn_bwd(g, dq, dk, dv, D, lse, dO, qd, kd, vd, md)
                        : aur_cuda_sdpa_bwd(g, dq, dk, dv, dm, P, dS, lse, dO, qd, kd, vd, md, &mb);
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}
#endif

/* The attention weights of batch b into P (Lq x Lk): softmax(q k^T scale + mask).
   Backward rebuilds them with this same code (bit for bit) instead of keeping them. */
static void aur__sdpa_weights(const aur__attn *g, aur_real *ws, aur_real *P, const aur_real *qd, const aur_real *kd, const aur_real *md,
                              int64_t b)
{
    aur__gemm(ws, g->Lq, g->Lk, g->d, aur__matv(qd + b * g->Lq * g->d, g->d, 1), aur__matv(kd + b * g->Lk * g->d, 1, g->d), P, g->Lk, 0, 0);
    int64_t off = md ? aur__mask_offset(g, b) : 0;
    aur_real sc = (aur_real)g->scale;
    for (int64_t i = 0; i < g->Lq; i++) {
        aur_real *r = P + i * g->Lk;
        for (int64_t j = 0; j < g->Lk; j++) r[j] = r[j] * sc + (md ? md[off + i * g->ms[g->lead] + j * g->ms[g->lead + 1]] : 0);
        aur__softmax_row(r, r, g->Lk);
    }
}

/* One thread's workspace for every product of a batch's attention (each of
   M, N, K is one of Lq, Lk, d, dv). */
static int64_t aur__sdpa_gemm_ws(const aur__attn *g)
{
    int64_t x = g->Lq;
    if (g->Lk > x) x = g->Lk;
    if (g->d > x) x = g->d;
    if (g->dv > x) x = g->dv;
    return aur__gemm_ws(x, x, x, 1);
}

static int aur__sdpa_back(aur_tape *t, aur__node *n)
{
    aur_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2], *mask = n->in[3];
    aur__attn g;
    aur__attn_geometry(q, k, v, mask, n->farg[0], &g);
    aur_real *dq = aur__grad(t, q), *dk = aur__grad(t, k), *dv = aur__grad(t, v), *dm = aur__grad(t, mask);
    if (q->device == AUR_META) return 0; /* shapes only */
    if (q->device == AUR_CUDA) return AUR__GPU(aur__sdpa_back_cuda, t, n, &g, dq, dk, dv, dm, (const aur_real *)n->saved[0]);
    int threads = aur__threads(), ac = (int)n->iarg[7]; /* autocast as in the forward */
    int64_t per = aur__sdpa_gemm_ws(&g), LL = g.Lq * g.Lk, slice = per + 2 * aur__lines(LL);
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]), mt = aur__arena_mark(&t->per_thread);
    aur_real *ws = aur__thread_reals(t, slice, threads);
    aur_real *dS_all = dm ? aur__reals(t, AUR_CPU, g.nb * LL) : NULL;
    const aur_real *dO = aur__autocast_in(t, ac, n->out->grad, n->out->numel), *qd = aur__autocast_in(t, ac, aur__cr(q), q->numel);
    const aur_real *kd = aur__autocast_in(t, ac, aur__cr(k), k->numel), *vd = aur__autocast_in(t, ac, aur__cr(v), v->numel);
    const aur_real *md = mask ? aur__autocast_in(t, ac, aur__cr(mask), mask->numel) : NULL;
    if (!ws || (dm && !dS_all) || !dO || !qd || !kd || !vd || (mask && !md)) return AUR_ENOMEM;
    AUR__OMP_FOR_DYN_IF(threads > 1 && g.nb > 1)
    for (int64_t b = 0; b < g.nb; b++) {
        aur_real *w = ws + aur__thread_id() * slice, *Pb = w + per, *dS = Pb + aur__lines(LL);
        const aur_real *qb = qd + b * g.Lq * g.d, *kb = kd + b * g.Lk * g.d;
        const aur_real *vb = vd + b * g.Lk * g.dv, *dOb = dO + b * g.Lq * g.dv;
        aur__sdpa_weights(&g, w, Pb, qd, kd, md, b);
        if (dv) aur__gemm(w, g.Lk, g.dv, g.Lq, aur__matv(Pb, 1, g.Lk), aur__matv(dOb, g.dv, 1), dv + b * g.Lk * g.dv, g.dv, 1, 0);
        if (!dq && !dk && !dm) continue;
        aur__gemm(w, g.Lq, g.Lk, g.dv, aur__matv(dOb, g.dv, 1), aur__matv(vb, 1, g.dv), dS, g.Lk, 0, 0);
        for (int64_t i = 0; i < g.Lq; i++) { /* dS = P (dP - rowsum(dP P)) */
            aur_real *r = dS + i * g.Lk;
            const aur_real *p = Pb + i * g.Lk;
            double s = 0;
            for (int64_t j = 0; j < g.Lk; j++) s += (double)r[j] * p[j];
            for (int64_t j = 0; j < g.Lk; j++) r[j] = p[j] * (r[j] - (aur_real)s);
        }
        if (dS_all) memcpy(dS_all + b * LL, dS, (size_t)LL * sizeof(aur_real));
        aur_real sc = (aur_real)g.scale;
        for (int64_t i = 0; i < LL; i++) dS[i] *= sc;
        if (dq) aur__gemm(w, g.Lq, g.d, g.Lk, aur__matv(dS, g.Lk, 1), aur__matv(kb, g.d, 1), dq + b * g.Lq * g.d, g.d, 1, 0);
        if (dk) aur__gemm(w, g.Lk, g.d, g.Lq, aur__matv(dS, 1, g.Lk), aur__matv(qb, g.d, 1), dk + b * g.Lk * g.d, g.d, 1, 0);
    }
    for (int64_t b = 0; dm && b < g.nb; b++) { /* in batch order: deterministic */
        int64_t off = aur__mask_offset(&g, b);
        const aur_real *s = dS_all + b * LL;
        for (int64_t i = 0; i < g.Lq; i++)
            for (int64_t j = 0; j < g.Lk; j++) dm[off + i * g.ms[g.lead] + j * g.ms[g.lead + 1]] += s[i * g.Lk + j];
    }
    aur__arena_release(&t->main[AUR_CPU], mk);
    aur__arena_release(&t->per_thread, mt);
    return 0;
}

/* Backward reads q, k, v and the mask (and on a GPU the rows' log-sum-exp, kept in lse). */
static aur_tensor *aur__sdpa_record(aur_tape *t, aur_tensor *y, aur_tensor **in, aur__storage *lse, double scale)
{
    aur__mark_bf16(y, t->autocast); /* rounded on every device */
    aur__node *n = aur__record(t, y, "sdpa", aur__sdpa_back, in, 4);
    if (!n) return NULL;
    for (int i = 0; i < 4; i++) aur__save(t, n, in[i]);
    if (lse) {
        n->saved[0] = lse->ptr;
        aur__keep_buffer(t, n, lse);
    }
    n->farg[0] = scale;
    n->iarg[6] = t->fused_attention; /* a GPU backward takes the forward's path */
    n->iarg[7] = t->autocast;
    return y;
}

AURDEF aur_tensor *aur_sdpa(aur_tape *t, aur_tensor *q, aur_tensor *k, aur_tensor *v, aur_tensor *mask, double scale)
{
    aur_tensor *in[4] = {q, k, v, mask};
    aur__attn g;
    if (aur__check("sdpa", in, mask ? 4 : 3) || aur__attn_geometry(q, k, v, mask, scale, &g)) return NULL;
    aur_shape ys = aur_tensor_shape(q);
    ys.d[ys.ndim - 1] = g.dv;
    aur_tensor *y = aur__output(t, ys, q->device, in, 4);
    if (!y) return NULL;
    if (q->device != AUR_CPU) { /* keeps the rows' log-sum-exp, not P (the meta device accounts for it as a GPU) */
        aur__storage *kept = NULL;
        aur_real *lse = (aur_real *)aur__buffer(t, q->device, sizeof(aur_real) * (size_t)(g.nb * g.Lq), &kept);
        if (!lse || (q->device == AUR_CUDA && AUR__GPU(aur__sdpa_fwd_cuda, t, &g, y, lse, q, k, v, mask))) return NULL;
        return aur__sdpa_record(t, y, in, kept, scale);
    }
    int64_t LL = g.Lq * g.Lk, ws_gemm = aur__sdpa_gemm_ws(&g), per = ws_gemm + aur__lines(LL);
    int threads = aur__threads();
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]), mt = aur__arena_mark(&t->per_thread);
    aur_real *ws = aur__thread_reals(t, per, threads);
    /* under autocast the operands (and the mask) are BF16, accumulation F32, the result BF16 */
    const aur_real *qd = aur__autocast_in(t, t->autocast, aur__cr(q), q->numel), *kd = aur__autocast_in(t, t->autocast, aur__cr(k), k->numel);
    const aur_real *vd = aur__autocast_in(t, t->autocast, aur__cr(v), v->numel);
    const aur_real *md = mask ? aur__autocast_in(t, t->autocast, aur__cr(mask), mask->numel) : NULL;
    if (!ws || !qd || !kd || !vd || (mask && !md)) return NULL;
    AUR__OMP_FOR_DYN_IF(threads > 1 && g.nb > 1)
    for (int64_t b = 0; b < g.nb; b++) {
        aur_real *w = ws + aur__thread_id() * per, *Pb = w + ws_gemm;
        aur__sdpa_weights(&g, w, Pb, qd, kd, md, b);
        aur__gemm(w, g.Lq, g.dv, g.Lk, aur__matv(Pb, g.Lk, 1), aur__matv(vd + b * g.Lk * g.dv, g.dv, 1), aur__wr(y) + b * g.Lq * g.dv,
                  g.dv, 0, 0);
    }
    if (t->autocast) aur__round_bf16_inplace(aur__wr(y), y->numel);
    aur__arena_release(&t->main[AUR_CPU], mk);
    aur__arena_release(&t->per_thread, mt);
    return aur__sdpa_record(t, y, in, NULL, scale);
}

/* ==== ops: concat, slice, split, pad ====
   Each moves blocks: a tensor seen as (outer, axis, inner) is copied block by
   block. Backward adds the same blocks the other way. */

/* Copies rows: for o < outer, dst[o*dst_row + dst_off ..+len] (+)= src[o*src_row + src_off ..+len]. */
static int aur__copy_rows(aur_device dev, aur_real *dst, int64_t dst_row, int64_t dst_off, const aur_real *src,
                           int64_t src_row, int64_t src_off, int64_t outer, int64_t len, int accumulate)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CUDA) return AUR__GPU(aur_cuda_copy_rows, dst, dst_row, dst_off, src, src_row, src_off, outer, len, accumulate);
    AUR__OMP_FOR_IF(outer * len > AUR__PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        aur_real *d = dst + o * dst_row + dst_off;
        const aur_real *s = src + o * src_row + src_off;
        if (accumulate)
            for (int64_t j = 0; j < len; j++) d[j] += s[j];
        else
            memcpy(d, s, (size_t)len * sizeof(aur_real));
    }
    return 0;
}

static int64_t aur__outer(const aur_tensor *x, int axis)
{
    int64_t n = 1;
    for (int i = 0; i < axis; i++) n *= x->shape[i];
    return n;
}

static int64_t aur__inner(const aur_tensor *x, int axis)
{
    int64_t n = 1;
    for (int i = axis + 1; i < x->ndim; i++) n *= x->shape[i];
    return n;
}

static int aur__concat_back(aur_tape *t, aur__node *n)
{
    int axis = (int)n->iarg[0];
    int64_t outer = aur__outer(n->out, axis), row = n->out->shape[axis] * aur__inner(n->out, axis), off = 0;
    int rc = 0;
    for (int i = 0; i < n->n_in && !rc; i++) {
        aur_tensor *x = n->in[i];
        int64_t len = x->shape[axis] * aur__inner(x, axis);
        aur_real *dx = aur__grad(t, x);
        if (dx) rc = aur__copy_rows(x->device, dx, len, 0, n->out->grad, row, off, outer, len, 1);
        off += len;
    }
    return rc;
}

AURDEF aur_tensor *aur_concat(aur_tape *t, aur_tensor *const *xs, int n, int axis)
{
    int a = 0;
    char s1[64], s2[64];
    if (n < 1) {
        aur__err(AUR_EINVAL, "concat: no inputs");
        return NULL;
    }
    if (aur__check("concat", xs, n) || aur__axis("concat", axis, xs[0]->ndim, &a))
        return NULL;
    aur_shape ys = aur_tensor_shape(xs[0]);
    for (int i = 1; i < n; i++) {
        int bad = xs[i]->ndim != ys.ndim;
        for (int d = 0; d < ys.ndim && !bad; d++) bad = d != a && xs[i]->shape[d] != ys.d[d];
        if (bad) {
            aur__err(AUR_ESHAPE, "concat: input %d %s does not fit input 0 %s along axis %d", i,
                     aur_shape_str(xs[i]->shape, xs[i]->ndim, s1, sizeof s1),
                     aur_shape_str(xs[0]->shape, xs[0]->ndim, s2, sizeof s2), axis);
            return NULL;
        }
        ys.d[a] += xs[i]->shape[a];
    }
    aur_tensor *y = aur__output(t, ys, xs[0]->device, xs, n);
    if (!y) return NULL;
    int64_t outer = aur__outer(y, a), row = ys.d[a] * aur__inner(y, a), off = 0;
    for (int i = 0; i < n; i++) {
        int64_t len = xs[i]->shape[a] * aur__inner(xs[i], a);
        if (aur__copy_rows(y->device, aur__wr(y), row, off, aur__cr(xs[i]), len, 0, outer, len, 0)) return NULL;
        off += len;
    }
    aur__node *nd = aur__record(t, y, "concat", aur__concat_back, xs, n);
    if (!nd) return NULL;
    nd->iarg[0] = a;
    return y;
}

static int aur__slice_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    int axis = (int)n->iarg[0];
    int64_t inner = aur__inner(x, axis), len = n->out->shape[axis] * inner;
    aur_real *dx = aur__grad(t, x);
    return aur__copy_rows(x->device, dx, x->shape[axis] * inner, n->iarg[1] * inner, n->out->grad, len, 0, aur__outer(x, axis), len, 1);
}

AURDEF aur_tensor *aur_slice(aur_tape *t, aur_tensor *x, int axis, int64_t start, int64_t len)
{
    int a = 0;
    if (aur__check("slice", &x, 1) || aur__axis("slice", axis, x->ndim, &a)) return NULL;
    if (start < 0 || len < 0 || start + len > x->shape[a]) {
        aur__err(AUR_ESHAPE, "slice: [%lld, %lld) is outside axis %d of length %lld", (long long)start,
                 (long long)(start + len), axis, (long long)x->shape[a]);
        return NULL;
    }
    aur_shape ys = aur_tensor_shape(x);
    ys.d[a] = len;
    int64_t inner = aur__inner(x, a);
    aur_tensor *y;
    if (aur__outer(x, a) == 1) { /* one contiguous run of x: a view of its bytes */
        if (!(y = aur__view(t, x, ys))) return NULL;
        y->data = aur__wr(x) + start * inner;
        y->offset += sizeof(aur_real) * (size_t)(start * inner);
        y->requires_grad = t->grad_on && x->requires_grad;
    } else {
        if (!(y = aur__output(t, ys, x->device, &x, 1))) return NULL;
        if (aur__copy_rows(x->device, aur__wr(y), len * inner, 0, aur__cr(x), x->shape[a] * inner, start * inner, aur__outer(x, a),
                           len * inner, 0))
            return NULL;
        aur__mark_bf16(y, aur__is_bf16(x));
    }
    aur__node *n = aur__record(t, y, "slice", aur__slice_back, &x, 1);
    if (!n) return NULL;
    n->iarg[0] = a;
    n->iarg[1] = start;
    return y;
}

AURDEF int aur_split(aur_tape *t, aur_tensor *x, int axis, int n, const int64_t *sizes, aur_tensor **out)
{
    int a = 0;
    if (aur__check("split", &x, 1) || aur__axis("split", axis, x->ndim, &a)) return AUR_EINVAL;
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    if (total != x->shape[a])
        return aur__err(AUR_ESHAPE, "split: sizes sum to %lld, axis %d has %lld", (long long)total, axis,
                        (long long)x->shape[a]);
    int64_t start = 0;
    for (int i = 0; i < n; i++) {
        out[i] = aur_slice(t, x, a, start, sizes[i]);
        if (!out[i]) return AUR_EINVAL;
        start += sizes[i];
    }
    return 0;
}

/* Row offsets of x placed inside a larger tensor y at per-dim offsets pos. */
static int64_t aur__box_row(const aur_tensor *x, const int64_t *ystride, const int64_t *pos, int64_t r)
{
    int64_t idx[AUR_MAX_DIMS], off = 0;
    aur__unravel(r, x->shape, x->ndim - 1, idx);
    for (int d = 0; d + 1 < x->ndim; d++) off += (idx[d] + pos[d]) * ystride[d];
    return off + pos[x->ndim - 1];
}

/* The map of a tensor of shape `shape` into one with strides `stride`, shifted by add (wrapping where wrap):
   what the GPU's strided copy (pad, permute, roll) walks. */
static aur__strided aur__strided_map(const int64_t *shape, int nd, const int64_t *stride, const int64_t *add, int wrap)
{
    aur__strided m;
    memset(&m, 0, sizeof m);
    m.nd = nd;
    for (int d = 0; d < nd; d++) {
        m.shape[d] = shape[d];
        m.stride[d] = stride[d];
        m.add[d] = add ? add[d] : 0;
        m.wrap[d] = wrap ? shape[d] : 0;
    }
    return m;
}

static int aur__pad_rows(aur_tensor *x, aur_real *xd, const aur_tensor *y, aur_real *yd, const int64_t *before,
                         int to_y)
{
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) { /* x is the dense side, y the strided one */
        int64_t yst[AUR_MAX_DIMS];
        aur__strides(y->shape, y->ndim, yst);
        aur__strided m = aur__strided_map(x->shape, x->ndim, yst, before, 0);
        return AUR__GPU(aur_cuda_strided, &m, to_y ? AUR__SCATTER : AUR__GATHER_ADD, xd, yd);
    }
    int64_t st[AUR_MAX_DIMS], last = x->ndim ? x->shape[x->ndim - 1] : 1, rows = last ? x->numel / last : 0;
    aur__strides(y->shape, y->ndim, st);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = x->ndim ? aur__box_row(x, st, before, r) : 0;
        if (to_y)
            memcpy(yd + off, xd + r * last, (size_t)last * sizeof(aur_real));
        else
            for (int64_t j = 0; j < last; j++) xd[r * last + j] += yd[off + j];
    }
    return 0;
}

static int aur__pad_back(aur_tape *t, aur__node *n)
{
    aur_real *dx = aur__grad(t, n->in[0]);
    return aur__pad_rows(n->in[0], dx, n->out, n->out->grad, n->iarg, 0);
}

AURDEF aur_tensor *aur_pad(aur_tape *t, aur_tensor *x, const int64_t *before, const int64_t *after, double value)
{
    if (aur__check("pad", &x, 1)) return NULL;
    aur_shape ys = aur_tensor_shape(x);
    for (int d = 0; d < x->ndim; d++) {
        if (before[d] < 0 || after[d] < 0) {
            aur__err(AUR_EINVAL, "pad: negative padding on dim %d (use aur_slice to crop)", d);
            return NULL;
        }
        ys.d[d] += before[d] + after[d];
    }
    aur_tensor *y = aur__output(t, ys, x->device, &x, 1);
    if (!y) return NULL;
    aur_real v = (aur_real)value, *yd = aur__wr(y);
    if (y->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_fill, yd, v, y->numel)) return NULL;
    } else if (y->device == AUR_CPU)
        for (int64_t i = 0; i < y->numel; i++) yd[i] = v;
    if (aur__pad_rows(x, aur__wr(x), y, yd, before, 1)) return NULL;
    aur__node *n = aur__record(t, y, "pad", aur__pad_back, &x, 1);
    if (!n) return NULL;
    for (int d = 0; d < x->ndim; d++) n->iarg[d] = before[d];
    return y;
}

/* ==== ops: permute, reshape, roll ==== */

/* y (shape of x permuted) from x, or dx += dy the other way. */
static int aur__permute_rows(const aur_tensor *x, aur_real *xd, const aur_tensor *y, aur_real *yd, const int *perm,
                             int to_y)
{
    int nd = y->ndim;
    int64_t xs[AUR_MAX_DIMS], last = nd ? y->shape[nd - 1] : 1, rows = last ? y->numel / last : 0;
    aur__strides(x->shape, x->ndim, xs);
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) { /* y is the dense side; x is read with permuted strides */
        int64_t ps[AUR_MAX_DIMS];
        for (int d = 0; d < nd; d++) ps[d] = xs[perm[d]];
        aur__strided m = aur__strided_map(y->shape, nd, ps, NULL, 0);
        return AUR__GPU(aur_cuda_strided, &m, to_y ? AUR__GATHER : AUR__SCATTER_ADD, yd, xd);
    }
    int64_t js = nd ? xs[perm[nd - 1]] : 1;
    AUR__OMP_FOR_IF(y->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t idx[AUR_MAX_DIMS], off = 0;
        aur__unravel(r, y->shape, nd - 1, idx);
        for (int d = 0; d + 1 < nd; d++) off += idx[d] * xs[perm[d]];
        aur_real *yr = yd + r * last;
        if (to_y)
            for (int64_t j = 0; j < last; j++) yr[j] = xd[off + j * js];
        else
            for (int64_t j = 0; j < last; j++) xd[off + j * js] += yr[j];
    }
    return 0;
}

static int aur__permute_back(aur_tape *t, aur__node *n)
{
    int perm[AUR_MAX_DIMS];
    for (int d = 0; d < n->out->ndim; d++) perm[d] = (int)n->iarg[d];
    return aur__permute_rows(n->in[0], aur__grad(t, n->in[0]), n->out, n->out->grad, perm, 0);
}

AURDEF aur_tensor *aur_permute(aur_tape *t, aur_tensor *x, const int *perm)
{
    if (aur__check("permute", &x, 1)) return NULL;
    int seen[AUR_MAX_DIMS] = {0};
    aur_shape ys = aur_tensor_shape(x);
    for (int d = 0; d < x->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= x->ndim || seen[perm[d]]++) {
            aur__err(AUR_EINVAL, "permute: perm is not a permutation of 0..%d", x->ndim - 1);
            return NULL;
        }
        ys.d[d] = x->shape[perm[d]];
    }
    aur_tensor *y = aur__output(t, ys, x->device, &x, 1);
    if (!y) return NULL;
    if (aur__permute_rows(x, aur__wr(x), y, aur__wr(y), perm, 1)) return NULL;
    aur__mark_bf16(y, aur__is_bf16(x));
    aur__node *n = aur__record(t, y, "permute", aur__permute_back, &x, 1);
    if (!n) return NULL;
    for (int d = 0; d < x->ndim; d++) n->iarg[d] = perm[d];
    return y;
}

/* dx += dy: the backward of every op that only relabels or rounds (reshape, cast, remainder). */
static int aur__identity_back(aur_tape *t, aur__node *n)
{
    aur_real *dx = aur__grad(t, n->in[0]);
    const aur_real *dy = n->out->grad;
    int64_t N = n->out->numel;
    if (n->out->device == AUR_META) return 0;
    if (n->out->device == AUR_CUDA) return AUR__GPU(aur_cuda_axpy, dx, dy, 1, N);
    AUR__OMP_FOR_IF(N > AUR__PAR_MIN)
    for (int64_t i = 0; i < N; i++) dx[i] += dy[i];
    return 0;
}

/* The output shares x's data: tensors are never written after creation. */
AURDEF aur_tensor *aur_reshape(aur_tape *t, aur_tensor *x, aur_shape shape)
{
    char s1[64], s2[64];
    if (!x) return NULL;
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < shape.ndim; d++) {
        if (shape.d[d] == -1 && infer < 0) infer = d;
        else known *= shape.d[d];
    }
    if (infer >= 0 && known > 0 && x->numel % known == 0) shape.d[infer] = x->numel / known;
    if (shape.ndim < 0 || shape.ndim > AUR_MAX_DIMS || aur_shape_numel(shape) != x->numel || aur__shape_ok(shape, "reshape")) {
        aur__err(AUR_ESHAPE, "reshape: %s cannot become %s", aur_shape_str(x->shape, x->ndim, s1, sizeof s1),
                 aur_shape_str(shape.d, shape.ndim > 0 && shape.ndim <= AUR_MAX_DIMS ? shape.ndim : 0, s2, sizeof s2));
        return NULL;
    }
    aur_tensor *y = aur__view(t, x, shape);
    if (!y) return NULL;
    y->requires_grad = t->grad_on && x->requires_grad;
    return aur__record(t, y, "reshape", aur__identity_back, &x, 1) ? y : NULL;
}

/* y = roll(x, shifts) (to_y), or dx += roll(dy, -shifts). */
static int aur__roll_rows(aur_real *xd, aur_real *yd, const aur_tensor *x, const int64_t *shift, int to_y)
{
    int nd = x->ndim;
    int64_t st[AUR_MAX_DIMS], last = nd ? x->shape[nd - 1] : 1, rows = last ? x->numel / last : 0;
    int64_t s = nd && last ? ((shift[nd - 1] % last) + last) % last : 0;
    aur__strides(x->shape, nd, st);
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) { /* y[idx] = x[(idx - shift) mod shape] */
        int64_t back[AUR_MAX_DIMS];
        for (int d = 0; d < nd; d++) back[d] = -(shift[d] % (x->shape[d] ? x->shape[d] : 1));
        aur__strided m = aur__strided_map(x->shape, nd, st, back, 1);
        return AUR__GPU(aur_cuda_strided, &m, to_y ? AUR__GATHER : AUR__SCATTER_ADD, yd, xd);
    }
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t idx[AUR_MAX_DIMS], src = 0;
        aur__unravel(r, x->shape, nd - 1, idx);
        for (int d = 0; d + 1 < nd; d++) {
            int64_t n = x->shape[d];
            src += (((idx[d] - shift[d]) % n + n) % n) * st[d];
        }
        aur_real *yr = yd + r * last, *xr = xd + src;
        for (int64_t j = 0; j < last; j++) { /* y[j] = x[j - s] */
            int64_t k = j - s < 0 ? j - s + last : j - s;
            if (to_y) yr[j] = xr[k];
            else xr[k] += yr[j];
        }
    }
    return 0;
}

static int aur__roll_back(aur_tape *t, aur__node *n)
{
    return aur__roll_rows(aur__grad(t, n->in[0]), n->out->grad, n->in[0], n->iarg, 0);
}

AURDEF aur_tensor *aur_roll(aur_tape *t, aur_tensor *x, const int64_t *shifts)
{
    if (aur__check("roll", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    if (aur__roll_rows(aur__wr(x), aur__wr(y), x, shifts, 1)) return NULL;
    aur__node *n = aur__record(t, y, "roll", aur__roll_back, &x, 1);
    if (!n) return NULL;
    for (int d = 0; d < x->ndim; d++) n->iarg[d] = shifts[d];
    return y;
}

/* ==== ops: reductions ==== */

/* x seen as (outer, n, inner) reduced over n. */
static aur_shape aur__reduced_shape(const aur_tensor *x, int a, int keepdim)
{
    aur_shape s = aur_tensor_shape(x);
    if (keepdim) {
        s.d[a] = 1;
    } else {
        for (int d = a; d + 1 < s.ndim; d++) s.d[d] = s.d[d + 1];
        s.ndim--;
        if (s.ndim == 0) s = aur_shape1(1);
    }
    return s;
}

static int aur__sum_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    int a = (int)n->iarg[0];
    int64_t outer = aur__outer(x, a), len = x->shape[a], inner = aur__inner(x, a);
    aur_real *dx = aur__grad(t, x), s = (aur_real)n->farg[0];
    const aur_real *dy = n->out->grad;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_sum_axis, dx, dy, outer, len, inner, s, 1);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < len; k++)
            for (int64_t i = 0; i < inner; i++) dx[(o * len + k) * inner + i] += dy[o * inner + i] * s;
    return 0;
}

static aur_tensor *aur__reduce_sum(aur_tape *t, aur_tensor *x, int axis, int keepdim, int mean, const char *op)
{
    int a = 0;
    if (aur__check(op, &x, 1) || aur__axis(op, axis, x->ndim, &a)) return NULL;
    aur_tensor *y = aur__output(t, aur__reduced_shape(x, a, keepdim), x->device, &x, 1);
    if (!y) return NULL;
    int64_t outer = aur__outer(x, a), len = x->shape[a], inner = aur__inner(x, a);
    double s = mean ? 1.0 / (double)len : 1.0;
    const aur_real *xd = aur__cr(x);
    aur_real *yd = aur__wr(y);
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_sum_axis, yd, xd, outer, len, inner, s, 0)) return NULL;
    } else if (x->device == AUR_CPU) {
        AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                double acc = 0;
                for (int64_t k = 0; k < len; k++) acc += xd[(o * len + k) * inner + i];
                yd[o * inner + i] = (aur_real)(acc * s);
            }
    }
    aur__node *n = aur__record(t, y, op, aur__sum_back, &x, 1);
    if (!n) return NULL;
    n->iarg[0] = a;
    n->farg[0] = s;
    return y;
}

AURDEF aur_tensor *aur_sum(aur_tape *t, aur_tensor *x, int axis, int keepdim) { return aur__reduce_sum(t, x, axis, keepdim, 0, "sum"); }
AURDEF aur_tensor *aur_mean(aur_tape *t, aur_tensor *x, int axis, int keepdim) { return aur__reduce_sum(t, x, axis, keepdim, 1, "mean"); }

static aur_tensor *aur__reduce_all(aur_tape *t, aur_tensor *x, int mean)
{
    if (!x) return NULL;
    aur_tensor *flat = aur_reshape(t, x, aur_shape1(x->numel));
    return aur__reduce_sum(t, flat, 0, 0, mean, mean ? "mean_all" : "sum_all");
}
AURDEF aur_tensor *aur_sum_all(aur_tape *t, aur_tensor *x) { return aur__reduce_all(t, x, 0); }
AURDEF aur_tensor *aur_mean_all(aur_tape *t, aur_tensor *x) { return aur__reduce_all(t, x, 1); }

static int aur__max_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    const int64_t *arg = (const int64_t *)n->saved[0];
    aur_real *dx = aur__grad(t, x);
    const aur_real *dy = n->out->grad;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_max_bwd, dx, dy, arg, n->out->numel);
    for (int64_t i = 0; i < n->out->numel; i++) dx[arg[i]] += dy[i];
    return 0;
}

AURDEF aur_tensor *aur_max(aur_tape *t, aur_tensor *x, int axis, int keepdim)
{
    int a = 0;
    if (aur__check("max", &x, 1) || aur__axis("max", axis, x->ndim, &a)) return NULL;
    if (x->shape[a] == 0) {
        aur__err(AUR_ESHAPE, "max: axis %d is empty", axis);
        return NULL;
    }
    aur_tensor *y = aur__output(t, aur__reduced_shape(x, a, keepdim), x->device, &x, 1);
    aur__storage *kept = NULL;
    int64_t *arg = y ? (int64_t *)aur__buffer(t, x->device, sizeof(int64_t) * (size_t)y->numel, &kept) : NULL;
    if (!arg) return NULL;
    int64_t outer = aur__outer(x, a), len = x->shape[a], inner = aur__inner(x, a);
    const aur_real *xd = aur__cr(x);
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_max_axis, aur__wr(y), arg, xd, outer, len, inner)) return NULL;
    } else if (x->device == AUR_CPU)
        for (int64_t e = 0; e < outer * inner; e++) {
            arg[e] = aur__argmax_along(xd, e / inner, e % inner, len, inner);
            aur__wr(y)[e] = xd[arg[e]];
        }
    aur__node *n = aur__record(t, y, "max", aur__max_back, &x, 1);
    if (!n) return NULL;
    aur__keep_buffer(t, n, kept); /* the index of each maximum, not x */
    n->saved[0] = arg;
    return y;
}

/* ==== ops: losses ====
   Each returns the mean as a (1) tensor. Sums run in double over fixed
   chunks, so the value does not depend on the thread count. */


static double aur__chunked_sum(const double *part, int chunks)
{
    double s = 0;
    for (int c = 0; c < chunks; c++) s += part[c];
    return s;
}

static int aur__pointwise_loss_back(aur_tape *t, aur__node *n)
{
    aur_tensor *p = n->in[0], *y = n->in[1], *pw = n->in[2];
    aur_real *dp = aur__grad(t, p), *dy = aur__grad(t, y), g;
    int kind = (int)n->iarg[0];
    int64_t N = p->numel, C = p->shape[p->ndim - 1];
    if (p->device == AUR_META) return 0; /* shapes only */
    if (aur__copy_bytes(&g, AUR_CPU, n->out->grad, n->out->device, sizeof g)) return AUR_ECUDA;
    double scale = (double)g / n->farg[0]; /* the number of elements averaged */
    if (p->device == AUR_CUDA) return AUR__GPU(aur_cuda_loss_bwd, kind, dp, dy, aur__cr(p), aur__cr(y), pw ? aur__cr(pw) : NULL, C, scale, N);
    AUR__OMP_FOR_IF(N > AUR__PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        double a, b;
        aur__elem_loss(kind, aur__cr(p)[i], aur__cr(y)[i], pw ? aur__cr(pw)[i % C] : 1, &a, &b);
        if (dp) dp[i] += (aur_real)(a * scale);
        if (dy) dy[i] += (aur_real)(b * scale);
    }
    return 0;
}

/* x's values on the host: x itself on the CPU, else a copy in the CPU arena. */
static const aur_real *aur__host_copy(aur_tape *t, const aur_tensor *x)
{
    if (x->device == AUR_CPU) return aur__cr(x);
    aur_real *h = aur__reals(t, AUR_CPU, x->numel);
    if (!h || aur__copy_bytes(h, AUR_CPU, x->data, x->device, (size_t)x->numel * sizeof(aur_real))) return NULL;
    return h;
}

/* The first element of x, on any device (NaN if it cannot be read). */
static double aur__value(const aur_tensor *x)
{
    aur_real v = NAN;
    if (aur__copy_bytes(&v, AUR_CPU, x->data, x->device, sizeof v)) return NAN;
    return (double)v;
}

/* Writes a one-element tensor on any device. */
static int aur__set_scalar(aur_tensor *y, double v)
{
    aur_real r = (aur_real)v;
    return aur__copy_bytes(y->data, y->device, &r, AUR_CPU, sizeof r);
}

#ifdef AUR__HAS_CUDA /* ---- CUDA builds only: the losses' GPU sums (a launch and two copies) ---- */
/* The chunk sums (and the count of non-finite pairs) on the GPU, brought to the host. */
static int aur__loss_chunks_cuda(aur_tape *t, int kind, const aur_tensor *p, const aur_tensor *y, const aur_tensor *pw,
                                 double *part, int chunks, int64_t *bad)
{
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    double *dpart = (double *)aur__alloc(t, AUR_CUDA, sizeof(double) * (size_t)chunks);
    int64_t *dbad = (int64_t *)aur__alloc(t, AUR_CUDA, sizeof(int64_t) * (size_t)chunks), hbad[256];
    int rc = !dpart || !dbad || chunks > 256 ? aur__err(AUR_ENOMEM, "loss: no GPU memory for the partial sums") : 0;
    if (!rc) rc = aur_cuda_loss_chunks(kind, dpart, dbad, aur__cr(p), aur__cr(y), pw ? aur__cr(pw) : NULL,
                                       p->shape[p->ndim - 1], p->numel, chunks);
    if (!rc) rc = aur__copy_bytes(part, AUR_CPU, dpart, AUR_CUDA, sizeof(double) * (size_t)chunks);
    if (!rc) rc = aur__copy_bytes(hbad, AUR_CPU, dbad, AUR_CUDA, sizeof(int64_t) * (size_t)chunks);
    *bad = 0;
    for (int c = 0; c < chunks && !rc; c++) *bad += hbad[c];
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}
#endif

static aur_tensor *aur__pointwise_loss(aur_tape *t, int kind, const char *op, aur_tensor *p, aur_tensor *y, aur_tensor *pw)
{
    enum { CHUNKS = 64 };
    aur_tensor *in[3] = {p, y, pw};
    char s1[64], s2[64];
    if (aur__check(op, in, pw ? 3 : 2)) return NULL;
    int same = p->ndim == y->ndim && p->ndim >= 1;
    for (int d = 0; same && d < p->ndim; d++) same = p->shape[d] == y->shape[d];
    if (!same || p->numel == 0 || (pw && (pw->ndim != 1 || pw->shape[0] != p->shape[p->ndim - 1]))) {
        aur__err(AUR_ESHAPE, "%s: prediction %s and target %s must have the same non-empty shape%s", op,
                 aur_shape_str(p->shape, p->ndim, s1, sizeof s1), aur_shape_str(y->shape, y->ndim, s2, sizeof s2),
                 pw ? " (and pos_weight the size of the last dim)" : "");
        return NULL;
    }
    aur_tensor *out = aur__output(t, aur_shape1(1), p->device, in, 2);
    if (!out) return NULL;
    int64_t N = p->numel, C = p->shape[p->ndim - 1], per = (N + CHUNKS - 1) / CHUNKS, count = N;
    double part[CHUNKS];
    if (p->device == AUR_CUDA) {
        int64_t bad = 0;
        if (AUR__GPU(aur__loss_chunks_cuda, t, kind, p, y, pw, part, CHUNKS, &bad)) return NULL;
        if (kind == AUR__MSE_FINITE) count -= bad;
    } else if (p->device == AUR_META) {
        memset(part, 0, sizeof part);
    } else {
        if (kind == AUR__MSE_FINITE) /* only the pairs where both are finite count */
            for (int64_t i = 0; i < N; i++) count -= !(isfinite(aur__cr(p)[i]) && isfinite(aur__cr(y)[i]));
        AUR__OMP_FOR_IF(N > AUR__PAR_MIN)
        for (int c = 0; c < CHUNKS; c++) {
            double s = 0, a, b;
            for (int64_t i = c * per; i < (c + 1) * per && i < N; i++)
                s += aur__elem_loss(kind, aur__cr(p)[i], aur__cr(y)[i], pw ? aur__cr(pw)[i % C] : 1, &a, &b);
            part[c] = s;
        }
    }
    if (aur__set_scalar(out, aur__chunked_sum(part, CHUNKS) / (double)count)) return NULL; /* 0/0 = NaN with nothing to average */
    aur__node *n = aur__save_inputs(t, aur__record(t, out, op, aur__pointwise_loss_back, in, 3));
    if (!n) return NULL;
    n->iarg[0] = kind;
    n->farg[0] = (double)count;
    return out;
}

AURDEF aur_tensor *aur_mse_loss(aur_tape *t, aur_tensor *pred, aur_tensor *target)
{
    return aur__pointwise_loss(t, AUR__MSE, "mse_loss", pred, target, NULL);
}
AURDEF aur_tensor *aur_mse_loss_finite(aur_tape *t, aur_tensor *pred, aur_tensor *target)
{
    return aur__pointwise_loss(t, AUR__MSE_FINITE, "mse_loss_finite", pred, target, NULL);
}
AURDEF aur_tensor *aur_mae_loss(aur_tape *t, aur_tensor *pred, aur_tensor *target)
{
    return aur__pointwise_loss(t, AUR__MAE, "mae_loss", pred, target, NULL);
}
AURDEF aur_tensor *aur_bce_logits_loss(aur_tape *t, aur_tensor *logits, aur_tensor *target, aur_tensor *pos_weight)
{
    return aur__pointwise_loss(t, AUR__BCE, "bce_logits_loss", logits, target, pos_weight);
}

/* On the GPU: each row's loss (0 where ignored), brought to the host to be added in order. NULL on the CPU. */
static double *aur__row_losses(aur_tape *t, const aur_tensor *logits, const aur_tensor *labels, int64_t ignore, double s)
{
    if (logits->device != AUR_CUDA) return NULL;
    int64_t N = logits->shape[0];
    double *dev = (double *)aur__alloc(t, AUR_CUDA, sizeof(double) * (size_t)N);
    double *host = (double *)aur__alloc(t, AUR_CPU, sizeof(double) * (size_t)N);
    if (!dev || !host ||
        AUR__GPU(aur_cuda_cross_entropy, NULL, dev, aur__cr(logits), aur__cr(labels), N, logits->shape[1], ignore, s, 0) ||
        aur__copy_bytes(host, AUR_CPU, dev, AUR_CUDA, sizeof(double) * (size_t)N))
        return NULL;
    return host;
}

/* torch cross_entropy with mean reduction over the rows whose label is not
   ignore_index: (1 - s) nll + s mean_c(-log p_c), s = label_smoothing. */
static int aur__cross_entropy_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *lab = n->in[1];
    int64_t N = x->shape[0], C = x->shape[1], ignore = n->iarg[0];
    double s = n->farg[0], valid = n->farg[1];
    aur_real *dx = aur__grad(t, x), g;
    if (x->device == AUR_META) return 0; /* shapes only */
    int rc = aur__copy_bytes(&g, AUR_CPU, n->out->grad, n->out->device, sizeof g);
    if (!rc && x->device == AUR_CUDA) return AUR__GPU(aur_cuda_cross_entropy, dx, NULL, aur__cr(x), aur__cr(lab), N, C, ignore, s, (double)g / valid);
    for (int64_t r = 0; r < N && !rc; r++) {
        int64_t y = (int64_t)aur__cr(lab)[r];
        if (y != ignore) aur__ce_row_grad(dx + r * C, aur__cr(x) + r * C, C, y, s, (double)g / valid);
    }
    return rc;
}

AURDEF aur_tensor *aur_cross_entropy(aur_tape *t, aur_tensor *logits, aur_tensor *labels, int64_t ignore_index,
                                     double label_smoothing)
{
    aur_tensor *in[2] = {logits, labels};
    if (aur__check("cross_entropy", in, 2)) return NULL;
    if (logits->ndim != 2 || labels->numel != logits->shape[0]) {
        aur__err(AUR_ESHAPE, "cross_entropy: want logits (N, C) and N labels");
        return NULL;
    }
    if (!(label_smoothing >= 0 && label_smoothing <= 1)) {
        aur__err(AUR_EINVAL, "cross_entropy: label_smoothing %g is outside [0, 1]", label_smoothing);
        return NULL;
    }
    int64_t N = logits->shape[0], C = logits->shape[1], valid = 0;
    double total = 0;
    const aur_real *lab = aur__host_copy(t, labels); /* the labels are checked on the host */
    if (!lab) return NULL;
    if (logits->device == AUR_META) valid = N; /* no labels to read */
    for (int64_t r = 0; r < N && logits->device != AUR_META; r++) {
        aur_real yl = lab[r];
        int64_t y = (int64_t)yl;
        if ((aur_real)y != yl || (y != ignore_index && (y < 0 || y >= C))) {
            aur__err(AUR_EINVAL, "cross_entropy: label %lld is %g: not a class index in [0, %lld) or ignore_index %lld",
                     (long long)r, (double)yl, (long long)C, (long long)ignore_index);
            return NULL;
        }
        valid += y != ignore_index;
    }
    double *row_loss = aur__row_losses(t, logits, labels, ignore_index, label_smoothing); /* GPU only */
    if (logits->device == AUR_CUDA && !row_loss) return NULL;
    for (int64_t r = 0; r < N && logits->device != AUR_META; r++) { /* rows in order on both devices */
        int64_t y = (int64_t)lab[r];
        if (y != ignore_index) total += row_loss ? row_loss[r] : aur__ce_row_loss(aur__cr(logits) + r * C, C, y, label_smoothing);
    }
    aur_tensor *out = aur__output(t, aur_shape1(1), logits->device, in, 1);
    if (!out || aur__set_scalar(out, total / (double)valid)) return NULL; /* no valid rows: NaN, as torch */
    aur__node *n = aur__save_inputs(t, aur__record(t, out, "cross_entropy", aur__cross_entropy_back, in, 2));
    if (!n) return NULL;
    n->iarg[0] = ignore_index;
    n->farg[0] = label_smoothing;
    n->farg[1] = (double)valid;
    return out;
}

/* ==== op: dropout ====
   A counter-based generator: element i of the call that starts at stream
   offset o keeps its value when hash(seed, o + i) >= p. Nothing is stored:
   backward (and checkpoint recomputation) regenerate the same mask. */


static void aur__dropout_apply(aur_real *y, const aur_real *x, int64_t n, uint64_t seed, uint64_t offset, double p,
                               int accumulate)
{
    aur_real scale = (aur_real)(1.0 / (1.0 - p));
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        aur_real v = aur__dropout_keep(seed, offset + (uint64_t)i, p) ? x[i] * scale : 0;
        y[i] = accumulate ? y[i] + v : v;
    }
}

/* Both devices draw the same mask: the CUDA kernel calls aur__dropout_keep too. */
static int aur__dropout_run(aur_device dev, aur_real *y, const aur_real *x, int64_t n, uint64_t seed, uint64_t offset,
                            double p, int accumulate)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CUDA) return AUR__GPU(aur_cuda_dropout, y, x, n, seed, offset, p, accumulate);
    aur__dropout_apply(y, x, n, seed, offset, p, accumulate);
    return 0;
}

static int aur__dropout_back(aur_tape *t, aur__node *n)
{
    aur_real *dx = aur__grad(t, n->in[0]);
    return aur__dropout_run(n->out->device, dx, n->out->grad, n->out->numel, (uint64_t)n->iarg[0], (uint64_t)n->iarg[1],
                            n->farg[0], 1);
}

AURDEF aur_tensor *aur_dropout(aur_tape *t, aur_tensor *x, double p)
{
    if (aur__check("dropout", &x, 1)) return NULL;
    if (!(p >= 0 && p < 1)) {
        aur__err(AUR_EINVAL, "dropout: p = %g is outside [0, 1)", p);
        return NULL;
    }
    if (!t->training || p == 0) return x;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    uint64_t offset = t->rng_offset;
    t->rng_offset += (uint64_t)x->numel;
    if (aur__dropout_run(x->device, aur__wr(y), aur__cr(x), x->numel, t->seed, offset, p, 0)) return NULL;
    aur__node *n = aur__record(t, y, "dropout", aur__dropout_back, &x, 1);
    if (!n) return NULL;
    n->iarg[0] = (int64_t)t->seed;
    n->iarg[1] = (int64_t)offset;
    n->farg[0] = p;
    return y;
}

/* ==== ops: clamp, expand, per-channel normalisation, row gather ==== */

/* y = rule(x, x2, a, b) element by element (aur__pw_value), on either device. */
static int aur__pointwise(int kind, aur_tensor *y, const aur_tensor *x, const aur_tensor *x2, double a, double b)
{
    const aur_real *xd = aur__cr(x), *x2d = x2 ? aur__cr(x2) : NULL;
    aur_real *yd = aur__wr(y), av = (aur_real)a, bv = (aur_real)b;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_pointwise_fwd, kind, yd, xd, x2d, a, b, x->numel);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t i = 0; i < x->numel; i++) yd[i] = aur__pw_value(kind, xd[i], x2d ? x2d[i] : 0, av, bv);
    return 0;
}

/* dx (and dx2) += its gradient (aur__pw_grad) element by element, on either device. */
static int aur__pointwise_back(int kind, aur_real *dx, aur_real *dx2, const aur_real *dy, const aur_tensor *x,
                               const aur_tensor *x2, double a, double b)
{
    const aur_real *xd = aur__cr(x), *x2d = x2 ? aur__cr(x2) : NULL;
    aur_real av = (aur_real)a, bv = (aur_real)b;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_pointwise_bwd, kind, dx, dx2, dy, xd, x2d, a, b, x->numel);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t i = 0; i < x->numel; i++)
        aur__pw_grad(kind, xd[i], x2d ? x2d[i] : 0, av, bv, dy[i], dx ? dx + i : NULL, dx2 ? dx2 + i : NULL);
    return 0;
}

static int aur__clamp_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    return aur__pointwise_back(AUR__PW_CLAMP, aur__grad(t, x), NULL, n->out->grad, x, NULL, n->farg[0], n->farg[1]);
}

AURDEF aur_tensor *aur_clamp(aur_tape *t, aur_tensor *x, double lo, double hi)
{
    if (aur__check("clamp", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y || aur__pointwise(AUR__PW_CLAMP, y, x, NULL, lo, hi)) return NULL;
    aur__node *n = aur__save_inputs(t, aur__record(t, y, "clamp", aur__clamp_back, &x, 1));
    if (!n) return NULL;
    n->farg[0] = lo;
    n->farg[1] = hi;
    return y;
}

static int aur__expand_back(aur_tape *t, aur__node *n)
{
    aur__bcast g;
    aur__broadcast("expand", n->out, n->in[0], &g);
    if (n->out->device == AUR_META) return aur__grad(t, n->in[0]), 0;
    if (n->out->device == AUR_CUDA) return AUR__GPU(aur_cuda_broadcast_sum, t, &g, aur__grad(t, n->in[0]), n->out->grad);
    aur__binary_acc(&g, aur__grad(t, n->in[0]), g.sb, n->out->grad, NULL, g.sa, 1);
    return 0;
}

/* y from x, broadcast (numpy rules). */
static int aur__expand_rows(aur_tensor *y, const aur_tensor *x)
{
    aur__bcast g;
    aur__broadcast("expand", y, x, &g);
    int64_t last = g.ndim ? g.shape[g.ndim - 1] : 1, rows = last ? y->numel / last : 0, jb = g.ndim ? g.sb[g.ndim - 1] : 1;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_expand_fwd, aur__wr(y), aur__cr(x), &g, y->numel);
    AUR__OMP_FOR_IF(y->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob;
        aur__bcast_row(&g, r, &oa, &ob);
        for (int64_t j = 0; j < last; j++) aur__wr(y)[r * last + j] = aur__cr(x)[ob + j * jb];
    }
    return 0;
}

static int aur__expand_rebuild(aur_tape *t, const aur__rebuild *r, aur_tensor *y)
{
    (void)t;
    return aur__expand_rows(y, r->in[0]);
}

AURDEF aur_tensor *aur_expand(aur_tape *t, aur_tensor *x, aur_shape shape)
{
    char s1[64], s2[64];
    if (aur__check("expand", &x, 1) || aur__shape_ok(shape, "expand")) return NULL;
    aur_tensor *y = aur__output(t, shape, x->device, &x, 1);
    aur__bcast g;
    if (!y) return NULL;
    if (aur__broadcast("expand", y, x, &g) || g.ndim != shape.ndim || aur_shape_numel(aur_shapev(g.ndim, g.shape)) != y->numel) {
        aur__err(AUR_ESHAPE, "expand: %s does not broadcast to %s", aur_shape_str(x->shape, x->ndim, s1, sizeof s1),
                 aur_shape_str(shape.d, shape.ndim, s2, sizeof s2));
        return NULL;
    }
    if (aur__expand_rows(y, x)) return NULL;
    aur__node *n = aur__record(t, y, "expand", aur__expand_back, &x, 1);
    if (!n) return NULL;
    aur__rebuildable(t, y, aur__expand_rebuild, x, NULL, NULL, 0, 0, NULL, NULL); /* a broadcast copy: redone, not kept */
    return y;
}

/* x viewed as (outer, C, inner) with C along axis. */
static void aur__channel_geometry(const aur_tensor *x, int axis, int64_t *outer, int64_t *C, int64_t *inner)
{
    *outer = aur__outer(x, axis);
    *C = x->shape[axis];
    *inner = aur__inner(x, axis);
}

static int aur__normalise_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    const float *sc = (const float *)n->saved[0];
    int64_t outer, C, inner;
    aur_real *dx = aur__grad(t, x);
    const aur_real *dy = n->out->grad;
    aur__channel_geometry(x, (int)n->iarg[0], &outer, &C, &inner);
    int inverse = (int)n->iarg[1];
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_normalise, dx, dy, NULL, sc, C, inner, inverse, 1, x->numel);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < C; c++) {
            aur_real f = inverse ? (aur_real)sc[c] : (aur_real)1 / (aur_real)sc[c];
            for (int64_t i = 0; i < inner; i++) dx[(o * C + c) * inner + i] += dy[(o * C + c) * inner + i] * f;
        }
    return 0;
}

AURDEF aur_tensor *aur_normalise(aur_tape *t, aur_tensor *x, int axis, const double *loc, const double *scale, int inverse)
{
    int a = 0;
    if (aur__check("normalise", &x, 1) || aur__axis("normalise", axis, x->ndim, &a)) return NULL;
    int64_t outer, C, inner;
    aur__channel_geometry(x, a, &outer, &C, &inner);
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    float *ls = y ? (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(2 * C + 1)) : NULL;
    if (!ls) return NULL;
    for (int64_t c = 0; c < C; c++) { /* torch rounds the Python floats to float32 */
        ls[c] = (float)loc[c];
        ls[C + c] = (float)scale[c];
        if (!(ls[C + c] != 0) || !isfinite(ls[C + c]) || !isfinite(ls[c])) {
            aur__err(AUR_EINVAL, "normalise: channel %lld has location %g and scale %g", (long long)c, loc[c], scale[c]);
            return NULL;
        }
    }
    const aur_real *xd = aur__cr(x);
    aur_real *yd = aur__wr(y);
    if (x->device == AUR_CUDA) { /* the statistics go to the GPU, kept there for backward */
        float *dls = (float *)aur__alloc(t, AUR_CUDA, sizeof(float) * (size_t)(2 * C));
        if (!dls || aur__copy_bytes(dls, AUR_CUDA, ls, AUR_CPU, sizeof(float) * (size_t)(2 * C)) ||
            AUR__GPU(aur_cuda_normalise, yd, xd, dls, dls + C, C, inner, inverse, 0, x->numel))
            return NULL;
        ls = dls;
    } else if (x->device == AUR_CPU) {
        AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t c = 0; c < C; c++) {
                const aur_real l = (aur_real)ls[c], s = (aur_real)ls[C + c];
                const aur_real *xr = xd + (o * C + c) * inner;
                aur_real *yr = yd + (o * C + c) * inner;
                /* two rounded operations each way (no FMA), as PyTorch's CPU kernels */
                if (inverse)
                    for (int64_t i = 0; i < inner; i++) {
                        volatile aur_real p = xr[i] * s;
                        yr[i] = p + l;
                    }
                else
                    for (int64_t i = 0; i < inner; i++) yr[i] = (xr[i] - l) / s;
            }
    }
    aur__node *n = aur__record(t, y, "normalise", aur__normalise_back, &x, 1);
    if (!n) return NULL;
    n->iarg[0] = a;
    n->iarg[1] = inverse;
    n->saved[0] = ls + C;
    return y;
}

static int aur__gather_back(aur_tape *t, aur__node *n)
{
    const aur_index *ix = (const aur_index *)n->saved[0];
    int64_t nb = n->iarg[0], d = n->iarg[1];
    aur_real *dx = aur__grad(t, n->in[0]);
    const aur_real *dy = n->out->grad;
    if (n->out->device == AUR_META) return 0;
    if (n->out->device == AUR_CUDA)
        return AUR__GPU(aur_cuda_gather, dx, dy, (const int64_t *)n->saved[1], nb, ix->n_out, ix->n_in, d, 1, ix->injective);
    for (int64_t b = 0; b < nb; b++) {
        aur_real *dxb = dx + b * ix->n_in * d;
        const aur_real *dyb = dy + b * ix->n_out * d;
        /* an injective table writes each source row once: safe to split over threads */
        AUR__OMP_FOR_IF(ix->injective && ix->n_out * d > AUR__PAR_MIN)
        for (int64_t i = 0; i < ix->n_out; i++) {
            if (ix->idx[i] < 0) continue;
            aur_real *dst = dxb + ix->idx[i] * d;
            for (int64_t j = 0; j < d; j++) dst[j] += dyb[i * d + j];
        }
    }
    return 0;
}

/* y's rows from x's by the table (dev_idx: its copy on the GPU). */
static int aur__gather_rows(aur_tensor *y, const aur_tensor *x, int64_t nb, int64_t d, const aur_index *ix, const int64_t *dev_idx)
{
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_gather, aur__wr(y), aur__cr(x), dev_idx, nb, ix->n_out, ix->n_in, d, 0, 0);
    for (int64_t b = 0; b < nb; b++) {
        const aur_real *xb = aur__cr(x) + b * ix->n_in * d;
        aur_real *yb = aur__wr(y) + b * ix->n_out * d;
        AUR__OMP_FOR_IF(ix->n_out * d > AUR__PAR_MIN)
        for (int64_t i = 0; i < ix->n_out; i++) {
            if (ix->idx[i] < 0) memset(yb + i * d, 0, (size_t)d * sizeof(aur_real));
            else memcpy(yb + i * d, xb + ix->idx[i] * d, (size_t)d * sizeof(aur_real));
        }
    }
    return 0;
}

static int aur__gather_rebuild(aur_tape *t, const aur__rebuild *r, aur_tensor *y)
{
    (void)t;
    const aur_tensor *x = r->in[0];
    int64_t nb = (int64_t)r->arg;
    return aur__gather_rows(y, x, nb, x->numel / (nb * ((const aur_index *)r->aux[0])->n_in), (const aur_index *)r->aux[0],
                            (const int64_t *)r->aux[1]);
}

/* aur_gather with the table's GPU copy given (a model's cached one), or NULL: copied for this step. */
static aur_tensor *aur__gather(aur_tape *t, aur_tensor *x, int64_t nb, int64_t d, const aur_index *ix, const int64_t *table,
                               aur_shape out_shape)
{
    if (aur__check("gather", &x, 1)) return NULL;
    if (nb < 1 || d < 1 || x->numel != nb * ix->n_in * d || aur_shape_numel(out_shape) != nb * ix->n_out * d) {
        aur__err(AUR_ESHAPE, "gather: %lld elements as (%lld, %lld, %lld) rows -> %lld rows of the table", (long long)x->numel,
                 (long long)nb, (long long)ix->n_in, (long long)d, (long long)ix->n_out);
        return NULL;
    }
    aur_tensor *y = aur__output(t, out_shape, x->device, &x, 1);
    if (!y) return NULL;
    const int64_t *dev_idx = table; /* the table on the GPU */
    if (x->device == AUR_CUDA && !table) {
        size_t bytes = sizeof(int64_t) * (size_t)ix->n_out;
        int64_t *copy = (int64_t *)aur__alloc(t, AUR_CUDA, bytes);
        if (!copy || aur__copy_bytes(copy, AUR_CUDA, ix->idx, AUR_CPU, bytes)) return NULL;
        dev_idx = copy;
    }
    if (aur__gather_rows(y, x, nb, d, ix, dev_idx)) return NULL;
    aur__mark_bf16(y, aur__is_bf16(x)); /* a copy (zeros where the table says none) */
    aur__node *n = aur__record(t, y, "gather", aur__gather_back, &x, 1);
    if (!n) return NULL;
    aur__rebuildable(t, y, aur__gather_rebuild, x, NULL, NULL, 0, (double)nb, ix, dev_idx); /* a copy: redone, not kept */
    n->saved[0] = (void *)ix;
    n->saved[1] = (void *)dev_idx;
    n->iarg[0] = nb;
    n->iarg[1] = d;
    return y;
}

AURDEF aur_tensor *aur_gather(aur_tape *t, aur_tensor *x, int64_t nb, int64_t d, const aur_index *ix, aur_shape out_shape)
{
    return aur__gather(t, x, nb, d, ix, NULL, out_shape);
}

/* ==== ops: atan2, nan_to_num, masked fill, remainder ==== */

static int aur__atan2_back(aur_tape *t, aur__node *n)
{
    aur_tensor *y = n->in[0], *x = n->in[1];
    return aur__pointwise_back(AUR__PW_ATAN2, aur__grad(t, y), aur__grad(t, x), n->out->grad, y, x, 0, 0);
}

AURDEF aur_tensor *aur_atan2(aur_tape *t, aur_tensor *y, aur_tensor *x)
{
    aur_tensor *in[2] = {y, x};
    if (aur__check("atan2", in, 2)) return NULL;
    if (y->numel != x->numel) {
        aur__err(AUR_ESHAPE, "atan2: %lld and %lld elements", (long long)y->numel, (long long)x->numel);
        return NULL;
    }
    aur_tensor *out = aur__output(t, aur_tensor_shape(y), y->device, in, 2);
    if (!out || aur__pointwise(AUR__PW_ATAN2, out, y, x, 0, 0)) return NULL;
    return aur__save_inputs(t, aur__record(t, out, "atan2", aur__atan2_back, in, 2)) ? out : NULL;
}


static int aur__grid_sample_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *grid = n->in[1];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], Ho = grid->shape[1], Wo = grid->shape[2];
    aur_real *dx = aur__grad(t, x), *dg = aur__grad(t, grid);
    const aur_real *g = n->out->grad, *gd = aur__cr(grid), *xd = aur__cr(x);
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_grid_sample, NULL, dx, dg, g, xd, gd, N, C, H, W, Ho * Wo);
    for (int64_t e = 0; dg && e < N * Ho * Wo; e++) aur__gs_dgrid(dg, g, xd, gd, C, H, W, Ho * Wo, e);
    for (int64_t bc = 0; dx && bc < N * C; bc++) aur__gs_dx(dx, g, gd, C, H, W, Ho * Wo, bc);
    return 0;
}

AURDEF aur_tensor *aur_grid_sample(aur_tape *t, aur_tensor *x, aur_tensor *grid)
{
    aur_tensor *in[2] = {x, grid};
    if (aur__check("grid_sample", in, 2)) return NULL;
    if (x->ndim != 4 || grid->ndim != 4 || grid->shape[0] != x->shape[0] || grid->shape[3] != 2) {
        char s1[64], s2[64];
        aur__err(AUR_ESHAPE, "grid_sample: x %s and grid %s; expected (N, C, H, W) and (N, Ho, Wo, 2)", aur_shape_str(x->shape, x->ndim, s1, sizeof s1),
                 aur_shape_str(grid->shape, grid->ndim, s2, sizeof s2));
        return NULL;
    }
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], Ho = grid->shape[1], Wo = grid->shape[2];
    aur_tensor *out = aur__output(t, aur_shape4(N, C, Ho, Wo), x->device, in, 2);
    if (!out) return NULL;
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_grid_sample, aur__wr(out), NULL, NULL, NULL, aur__cr(x), aur__cr(grid), N, C, H, W, Ho * Wo)) return NULL;
    } else if (x->device == AUR_CPU)
        for (int64_t e = 0; e < N * Ho * Wo; e++) aur__gs_sample(aur__wr(out), aur__cr(x), aur__cr(grid), C, H, W, Ho * Wo, e);
    return aur__save_inputs(t, aur__record(t, out, "grid_sample", aur__grid_sample_back, in, 2)) ? out : NULL;
}

/* dx += dy where keep (the source is finite, or the mask is clear). */
static int aur__pass_where_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *mask = n->in[1];
    return aur__pointwise_back(mask ? AUR__PW_MASKED_FILL : AUR__PW_NAN_TO_NUM, aur__grad(t, x), NULL, n->out->grad, x, mask, 0, 0);
}

AURDEF aur_tensor *aur_nan_to_num(aur_tape *t, aur_tensor *x, double nan)
{
    if (aur__check("nan_to_num", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    if (aur__pointwise(AUR__PW_NAN_TO_NUM, y, x, NULL, nan, 0)) return NULL;
    aur_tensor *in[2] = {x, NULL}; /* no mask: the backward tells nan_to_num from masked_fill by it */
    return aur__save_inputs(t, aur__record(t, y, "nan_to_num", aur__pass_where_back, in, 2)) ? y : NULL;
}

AURDEF aur_tensor *aur_masked_fill(aur_tape *t, aur_tensor *x, aur_tensor *mask, double value)
{
    aur_tensor *in[2] = {x, mask};
    if (aur__check("masked_fill", in, 2)) return NULL;
    if (mask->numel != x->numel) {
        aur__err(AUR_ESHAPE, "masked_fill: a mask of %lld elements for %lld", (long long)mask->numel, (long long)x->numel);
        return NULL;
    }
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    if (aur__pointwise(AUR__PW_MASKED_FILL, y, x, mask, value, 0)) return NULL;
    return aur__save_inputs(t, aur__record(t, y, "masked_fill", aur__pass_where_back, in, 2)) ? y : NULL;
}

AURDEF aur_tensor *aur_remainder(aur_tape *t, aur_tensor *x, double m)
{
    if (aur__check("remainder", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    if (aur__pointwise(AUR__PW_REMAINDER, y, x, NULL, m, 0)) return NULL;
    return aur__record(t, y, "remainder", aur__identity_back, &x, 1) ? y : NULL;
}

/* ==== ops: device and dtype changes ==== */

static int aur__to_device_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *y = n->out;
    aur_real *dx = aur__grad(t, x);
    if (x->device == AUR_META || y->device == AUR_META) return 0; /* shapes only */
    aur__mark mk = aur__arena_mark(&t->main[x->device]);
    aur_real *tmp = aur__reals(t, x->device, y->numel);
    int rc = tmp ? aur__copy_bytes(tmp, x->device, y->grad, y->device, (size_t)y->numel * sizeof(aur_real)) : AUR_ENOMEM;
    if (!rc && x->device == AUR_CUDA) rc = AUR__GPU(aur_cuda_axpy, dx, tmp, 1, y->numel);
    else
        for (int64_t i = 0; i < y->numel && !rc; i++) dx[i] += tmp[i];
    aur__arena_release(&t->main[x->device], mk);
    return rc;
}

AURDEF aur_tensor *aur_to_device(aur_tape *t, aur_tensor *x, aur_device device)
{
    if (!x) return NULL;
    if (x->device == device) return x;
    aur_tensor *y = aur__tensor(t, x->dtype, device, aur_tensor_shape(x));
    if (!y || aur__copy_bytes(y->data, device, x->data, x->device, aur__nbytes(x))) return NULL;
    y->requires_grad = t->grad_on && x->requires_grad && x->dtype == AUR_F32;
    return aur__record(t, y, "to_device", aur__to_device_back, &x, 1) ? y : NULL;
}

static aur_tensor *aur__cast_record(aur_tape *t, aur_tensor *x, aur_tensor *y)
{
    y->requires_grad = t->grad_on && x->requires_grad;
    return aur__record(t, y, "cast", aur__identity_back, &x, 1) ? y : NULL;
}

AURDEF aur_tensor *aur_cast(aur_tape *t, aur_tensor *x, aur_dtype dtype)
{
    if (!x) return NULL;
    if (x->dtype == dtype) return x;
    aur_tensor *y = aur__tensor(t, dtype, x->device, aur_tensor_shape(x));
    if (!y) return NULL;
    if (x->device == AUR_META) return aur__cast_record(t, x, y);
    if (x->device == AUR_CUDA)
        return AUR__GPU(aur_cuda_cast, y->data, x->data, dtype == AUR_BF16, x->numel) ? NULL : aur__cast_record(t, x, y);
    for (int64_t i = 0; i < x->numel; i++) {
        if (dtype == AUR_BF16) ((uint16_t *)y->data)[i] = aur_f32_to_bf16((float)aur__cr(x)[i]);
        else aur__wr(y)[i] = aur_bf16_to_f32(((const uint16_t *)x->data)[i]);
    }
    return aur__cast_record(t, x, y);
}

/* ==== JSON files ==== */

#define AUR__JSON_MAX_BYTES ((size_t)64 << 20) /* configs, states and adapter configs are kilobytes */

/* The line of text[at]. */
static int aur__line_of(const char *text, size_t at)
{
    int line = 1;
    for (size_t i = 0; i < at; i++) line += text[i] == '\n';
    return line;
}

/* The whole of a regular text file of at most max bytes (what: its kind, for the message), NUL-ended (free with AUR_FREE). */
static char *aur__read_text_file(const char *path, size_t max, const char *what, size_t *n)
{
    struct stat st;
    FILE *fp = fopen(path, "rb");
    if (!fp) return aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno)), (char *)NULL;
    int bad = fstat(fileno(fp), &st) ? aur__err(AUR_EIO, "%s: cannot stat: %s", path, strerror(errno))
              : !S_ISREG(st.st_mode)   ? aur__err(AUR_EINVAL, "%s: not a regular file", path)
              : (size_t)st.st_size > max
                  ? aur__err(AUR_EINVAL, "%s: %lld bytes; %s of at most %zu MiB is expected", path, (long long)st.st_size, what, max >> 20)
                  : 0;
    aur__buf b;
    memset(&b, 0, sizeof b);
    char chunk[65536];
    size_t got;
    while (!bad && b.n <= max && (got = fread(chunk, 1, sizeof chunk, fp)) > 0) aur__buf_append(&b, chunk, got);
    if (!bad && (ferror(fp) || b.failed || b.n > max)) bad = aur__err(AUR_EIO, "%s: cannot read (or it grew while read)", path);
    fclose(fp);
    if (!bad) aur__buf_append(&b, "", 1); /* the NUL */
    if (bad || b.failed) {
        AUR_FREE(b.p);
        return NULL;
    }
    *n = b.n - 1;
    return b.p;
}

static char *aur__read_small_file(const char *path, size_t *n) { return aur__read_text_file(path, AUR__JSON_MAX_BYTES, "a JSON file", n); }

/* cJSON's parser clears a process-wide slot (cJSON_GetErrorPtr's) on every
   call: two threads parsing at once race on it. The library's parses take
   turns; where parsing stopped comes back per call in *end. */
static pthread_mutex_t aur__cjson_lock = PTHREAD_MUTEX_INITIALIZER;

static cJSON *aur__cjson_parse(const char *text, size_t n, const char **end)
{
    pthread_mutex_lock(&aur__cjson_lock);
    cJSON *j = cJSON_ParseWithLengthOpts(text, n, end, 0);
    pthread_mutex_unlock(&aur__cjson_lock);
    return j;
}

static int aur__json_cmp_key(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* A key that obj holds twice, or NULL; *rc is set when the check itself fails.
   Sorting keeps it O(n log n): Aurora's statistics may hold 100,000s of keys. */
static const char *aur__json_twice(const cJSON *obj, int *rc)
{
    int n = cJSON_GetArraySize(obj), k = 0;
    if (n < 2) return NULL;
    const cJSON **by = (const cJSON **)aur__malloc(sizeof *by * (size_t)n, "a key check");
    if (!by) return *rc = AUR_ENOMEM, (const char *)NULL;
    for (const cJSON *c = obj->child; c; c = c->next) by[k++] = c;
    aur__qsort(by, (size_t)n, sizeof *by, aur__json_cmp_key);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (!strcmp(by[i]->string, by[i - 1]->string)) dup = by[i]->string;
    AUR_FREE(by);
    return dup;
}

/* Duplicate keys are an error in every JSON this library reads (a run
   config, a trainer state, a LoRA config, a safetensors header): JSON leaves
   their meaning open, and readers differ (cJSON's lookup takes the first,
   Python's json the last), so a config would mean one thing here and another
   there. The message names the key and the object holding it. */
static int aur__json_unique(const cJSON *v, const char *where)
{
    int rc = 0;
    for (const cJSON *c = v ? v->child : NULL; c && !rc; c = c->next) rc = aur__json_unique(c, where);
    const char *dup = rc || !cJSON_IsObject(v) ? NULL : aur__json_twice(v, &rc);
    if (dup && v->string) return aur__err(AUR_EFORMAT, "%s: duplicate key '%s' in '%s'", where, dup, v->string);
    if (dup) return aur__err(AUR_EFORMAT, "%s: duplicate key '%s'", where, dup);
    return rc;
}

AURDEF cJSON *aur_json_parse(const char *text, size_t n, const char *name)
{
    const char *end = NULL;
    cJSON *j = aur__cjson_parse(text, n, &end);
    size_t at = end ? (size_t)(end - text) : 0;
    while (j && at < n && isspace((unsigned char)text[at])) at++;
    int rc = !j ? aur__err(AUR_EFORMAT, "%s: invalid JSON near line %d", name, aur__line_of(text, at))
             : at < n ? aur__err(AUR_EFORMAT, "%s: text after the JSON value, at line %d", name, aur__line_of(text, at))
                      : aur__json_unique(j, name);
    if (rc) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

AURDEF cJSON *aur_json_load(const char *path)
{
    size_t n = 0;
    char *text = aur__read_small_file(path, &n);
    cJSON *j = text ? aur_json_parse(text, n, path) : NULL;
    AUR_FREE(text);
    return j;
}

/* ---- typed values ----
   Every config (Aurora's keywords, Surya's, the run config, LoRA's, the
   trainer's state) reads its values here, so a type is checked one way and
   every refusal reads "<where> '<key>': expected <what>, found <value>".
   `where` says whose value it is ("Aurora keyword", "run config: optimizer");
   the key is the value's own (v->string).  A NULL value (the key is absent)
   keeps *out, the default; JSON null is a value like any other (refused where
   a scalar is expected, an empty list where a list may be empty).  Surya's
   config writes null for "the default": it passes NULL for null. */

/* The value, briefly, for "found ...". */
static const char *aur__json_found(const cJSON *v, char *buf, size_t size)
{
    if (cJSON_IsNumber(v)) snprintf(buf, size, "%.16g", v->valuedouble);
    else if (cJSON_IsString(v)) snprintf(buf, size, "\"%.40s%s\"", v->valuestring, strlen(v->valuestring) > 40 ? "..." : "");
    else if (cJSON_IsArray(v)) snprintf(buf, size, "a list of %d", cJSON_GetArraySize(v));
    else snprintf(buf, size, "%s", cJSON_IsTrue(v) ? "true" : cJSON_IsFalse(v) ? "false" : cJSON_IsNull(v) ? "null" : "an object");
    return buf;
}

static int aur__json_bad(const cJSON *v, const char *where, const char *key, const char *expected)
{
    char found[64];
    return aur__err(AUR_EINVAL, "%s '%s': expected %s, found %s", where, key, expected, aur__json_found(v, found, sizeof found));
}

/* `names` (NULL-ended) quoted and joined: "a", "b" or "c". */
static const char *aur__json_join(const char *const *names, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; names[i] && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s\"%s\"", !i ? "" : names[i + 1] ? ", " : " or ", names[i]);
    return buf;
}

/* A number in [lo, hi], whole if asked.  The message names the bounds
   but for int's limits and infinity, which say nothing beyond "an integer". */
static int aur__json_number(const cJSON *v, const char *where, const char *key, double lo, double hi, int whole, double *out)
{
    if (!v) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (d >= lo && d <= hi && (!whole || d == floor(d))) {
        *out = d;
        return 0;
    }
    int has_lo = lo != INT_MIN && lo != -HUGE_VAL, has_hi = hi != INT_MAX && hi != HUGE_VAL;
    char what[96];
    int n = snprintf(what, sizeof what, "%s", whole ? "an integer" : "a number");
    if (has_lo && has_hi) snprintf(what + n, sizeof what - (size_t)n, " in [%.16g, %.16g]", lo, hi);
    else if (has_lo || has_hi) snprintf(what + n, sizeof what - (size_t)n, " %s %.16g", has_lo ? ">=" : "<=", has_lo ? lo : hi);
    return aur__json_bad(v, where, key, what);
}

static const char *aur__json_key(const cJSON *v) { return v && v->string ? v->string : "?"; }

static int aur__json_num(const cJSON *v, const char *where, double lo, double hi, double *out)
{
    return aur__json_number(v, where, aur__json_key(v), lo, hi, 0, out);
}

static int aur__json_i64(const cJSON *v, const char *where, double lo, double hi, int64_t *out)
{
    double d = 0;
    int rc = aur__json_number(v, where, aur__json_key(v), lo, hi, 1, &d);
    if (v && !rc) *out = (int64_t)d;
    return rc;
}

/* lo and hi within int's range. */
static int aur__json_int(const cJSON *v, const char *where, double lo, double hi, int *out)
{
    int64_t x = 0;
    int rc = aur__json_i64(v, where, lo, hi, &x);
    if (v && !rc) *out = (int)x;
    return rc;
}

static int aur__json_bool(const cJSON *v, const char *where, int *out)
{
    if (v && !cJSON_IsBool(v)) return aur__json_bad(v, where, aur__json_key(v), "true or false");
    if (v) *out = cJSON_IsTrue(v);
    return 0;
}

/* A boolean that may also be written 0 or 1 (the run config has always taken both). */
static int aur__json_flag(const cJSON *v, const char *where, int *out)
{
    if (!cJSON_IsNumber(v) || (v->valuedouble != 0 && v->valuedouble != 1)) return aur__json_bool(v, where, out);
    *out = v->valuedouble == 1;
    return 0;
}

/* A string (borrowed from v). */
static int aur__json_str(const cJSON *v, const char *where, const char **out)
{
    if (v && !cJSON_IsString(v)) return aur__json_bad(v, where, aur__json_key(v), "a string");
    if (v) *out = v->valuestring;
    return 0;
}

/* One of the NULL-ended `names`: *out is its index. */
static int aur__json_enum(const cJSON *v, const char *where, const char *const *names, int *out)
{
    for (int i = 0; cJSON_IsString(v) && names[i]; i++)
        if (!strcmp(v->valuestring, names[i])) {
            *out = i;
            return 0;
        }
    char what[256];
    return v ? aur__json_bad(v, where, aur__json_key(v), aur__json_join(names, what, sizeof what)) : 0;
}

/* A list of min..max items (null: none where none will do) of `what`; its length in *n. */
static int aur__json_len(const cJSON *v, const char *where, int min, int max, const char *what, int *n)
{
    int len = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : cJSON_IsNull(v) && min == 0 ? 0 : -1;
    if (len >= min && len <= max) {
        *n = len;
        return 0;
    }
    char expected[96];
    if (min == max) snprintf(expected, sizeof expected, "a list of %d %s", min, what);
    else if (max == INT_MAX && !min) snprintf(expected, sizeof expected, "a list of %s", what);
    else if (!min) snprintf(expected, sizeof expected, "a list of at most %d %s", max, what);
    else snprintf(expected, sizeof expected, "a list of %d to %d %s", min, max, what);
    return aur__json_bad(v, where, aur__json_key(v), expected);
}

/* A list of min..max numbers into dout, or of integers (each an int) into iout. */
static int aur__json_list(const cJSON *v, const char *where, double *dout, int *iout, int min, int max, int *n)
{
    if (!v) return 0;
    int len = 0, i = 0, rc = aur__json_len(v, where, min, max, iout ? "integers" : "numbers", &len);
    double lo = iout ? INT_MIN : -HUGE_VAL, hi = iout ? INT_MAX : HUGE_VAL;
    char key[128];
    for (const cJSON *e = rc ? NULL : v->child; e && !rc; e = e->next, i++) {
        double d = 0;
        snprintf(key, sizeof key, "%s[%d]", aur__json_key(v), i);
        rc = aur__json_number(e, where, key, lo, hi, iout != NULL, &d);
        if (iout) iout[i] = (int)d;
        else dout[i] = d;
    }
    if (!rc) *n = len;
    return rc;
}

static int aur__json_nums(const cJSON *v, const char *where, double *out, int min, int max, int *n)
{
    return aur__json_list(v, where, out, NULL, min, max, n);
}

static int aur__json_ints(const cJSON *v, const char *where, int *out, int min, int max, int *n)
{
    return aur__json_list(v, where, NULL, out, min, max, n);
}

/* A list of at most max names, each shorter than len, into out (max rows of len). */
static int aur__json_names(const cJSON *v, const char *where, char *out, size_t len, int max, int *n)
{
    if (!v) return 0;
    int count = 0, i = 0, rc = aur__json_len(v, where, 0, max, "names", &count);
    char key[128], what[64];
    snprintf(what, sizeof what, "a name of at most %d characters", (int)len - 1);
    if (!rc) memset(out, 0, len * (size_t)max);
    for (const cJSON *e = rc ? NULL : v->child; e && !rc; e = e->next, i++) {
        snprintf(key, sizeof key, "%s[%d]", aur__json_key(v), i);
        if (!cJSON_IsString(e) || strlen(e->valuestring) >= len) rc = aur__json_bad(e, where, key, what);
        else memcpy(out + (size_t)i * len, e->valuestring, strlen(e->valuestring));
    }
    if (!rc) *n = count;
    return rc;
}

/* An object (or null) of name: [x, y], two numbers each ("[location, scale]"
   says which); the caller then reads e->child and e->child->next. */
static int aur__json_pairs(const cJSON *v, const char *where, const char *pair)
{
    char key[160];
    int rc = !v || cJSON_IsObject(v) || cJSON_IsNull(v) ? 0 : aur__json_bad(v, where, aur__json_key(v), "an object or null");
    for (const cJSON *e = cJSON_IsObject(v) ? v->child : NULL; e && !rc; e = e->next) {
        snprintf(key, sizeof key, "%s.%s", aur__json_key(v), e->string);
        if (cJSON_GetArraySize(e) != 2 || !cJSON_IsArray(e) || !cJSON_IsNumber(e->child) || !cJSON_IsNumber(e->child->next))
            rc = aur__json_bad(e, where, key, pair);
    }
    return rc;
}

/* An object whose keys are all in the NULL-ended `allowed`: a typo must not
   silently fall back to a default. */
static int aur__json_keys(const cJSON *obj, const char *where, const char *const *allowed)
{
    char found[64], known[512];
    if (!cJSON_IsObject(obj))
        return aur__err(AUR_EINVAL, "%s: expected an object, found %s", where, aur__json_found(obj, found, sizeof found));
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (int i = 0; allowed[i] && !ok; i++) ok = !strcmp(allowed[i], it->string);
        if (!ok)
            return aur__err(AUR_EINVAL, "%s: unknown key '%s' (expected %s)", where, it->string,
                            aur__json_join(allowed, known, sizeof known));
    }
    return 0;
}

/* obj's member `key`, or NULL (also when obj is not an object). */
static const cJSON *aur__json_at(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* ==== safetensors: reading ====
   Layout: u64 little-endian N | N bytes of JSON | data. The reader trusts
   nothing: every rule below is checked before a byte of data is used, and a
   failure names the file, the tensor and what was expected. */

#define AUR__ST_MAX_HEADER 100000000ull
#define AUR__ST_MAX_DEPTH 64
#define AUR__ST_MAX_INT 9007199254740992.0 /* 2^53 */

typedef struct aur__st_dtype {
    const char *name;
    int bits;
    int readable; /* we convert it into F32 */
} aur__st_dtype;

static const aur__st_dtype aur__st_dtypes[] = {
    {"F32", 32, 1},     {"BF16", 16, 1},    {"F16", 16, 1},     {"I64", 64, 1},     {"I32", 32, 1},
    {"U8", 8, 1},       {"BOOL", 8, 1},     {"F64", 64, 0},     {"I16", 16, 0},     {"I8", 8, 0},
    {"U16", 16, 0},     {"U32", 32, 0},     {"U64", 64, 0},     {"F8_E4M3", 8, 0},  {"F8_E5M2", 8, 0},
    {"F8_E8M0", 8, 0},  {"F6_E2M3", 6, 0},  {"F6_E3M2", 6, 0},  {"F4", 4, 0},       {"C64", 64, 0},
};

/* PyTorch's zip checkpoints are read into the same table (torch_ckpt.c) */
static int aur__torch_open(aur_st_file *f);
static int aur__torch_bytes(const aur_st_file *f, uint64_t at, void *dst, size_t n);
static void aur__torch_close(aur_st_file *f);

static const aur__st_dtype *aur__st_dtype_find(const char *name)
{
    for (size_t i = 0; i < sizeof aur__st_dtypes / sizeof aur__st_dtypes[0]; i++)
        if (!strcmp(aur__st_dtypes[i].name, name)) return &aur__st_dtypes[i];
    return NULL;
}

static uint64_t aur__le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int aur__is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The length of the UTF-8 sequence at h[i] (of n bytes), 0 if it is not
   one: overlong forms, surrogates and code points above U+10FFFF are not. */
static int aur__utf8_length(const unsigned char *h, uint64_t i, uint64_t n)
{
    unsigned char c = h[i];
    int len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len || i + (uint64_t)len > n) return 0;
    for (int k = 1; k < len; k++)
        if ((h[i + (uint64_t)k] & 0xc0) != 0x80) return 0;
    unsigned char c1 = len > 1 ? h[i + 1] : 0;
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) || (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) return 0;
    return len;
}

/* The number token at h[i]: safetensors' only numbers are shapes and
   offsets, which the reference reader takes as unsigned integers, so
   "1e0", "1.0", "-0" and "01" are refused as it refuses them. */
static int aur__st_scan_number(const char *path, const unsigned char *h, uint64_t n, uint64_t *i)
{
    uint64_t at = *i, k = at;
    int digits = 1;
    while (k < n && (isdigit(h[k]) || h[k] == '-' || h[k] == '+' || h[k] == '.' || h[k] == 'e' || h[k] == 'E')) digits &= isdigit(h[k++]) != 0;
    *i = k - 1;
    if (digits && !(h[at] == '0' && k - at > 1)) return 0;
    return aur__err(AUR_EFORMAT, "%s: the number '%.*s' at header offset %llu: shapes and offsets are written as unsigned integers (digits only)",
                    path, (int)(k - at > 24 ? 24 : k - at), (const char *)h + at, (unsigned long long)at);
}

/* Structural checks cJSON does not make: UTF-8, control bytes, an escaped
   NUL, numbers as plain integers, nesting depth, and nothing but whitespace
   after the top-level object. */
static int aur__st_scan_json(const char *path, const unsigned char *h, uint64_t n)
{
    int depth = 0, in_str = 0;
    uint64_t i = 0, end = 0;
    if (n == 0 || h[0] != '{') return aur__err(AUR_EFORMAT, "%s: the header does not start with '{'", path);
    for (i = 0; i < n; i++) {
        unsigned char c = h[i];
        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
            return aur__err(AUR_EFORMAT, "%s: control byte 0x%02x at header offset %llu (a NUL in a name?)", path, c,
                            (unsigned long long)i);
        int len = aur__utf8_length(h, i, n);
        if (!len) return aur__err(AUR_EFORMAT, "%s: the header is not valid UTF-8 (byte 0x%02x at offset %llu)", path, c, (unsigned long long)i);
        i += (uint64_t)len - 1;
        if (end) {
            if (!aur__is_ws(c))
                return aur__err(AUR_EFORMAT, "%s: bytes after the header's JSON object at offset %llu", path,
                                (unsigned long long)i);
            continue;
        }
        if (in_str) {
            if (c == '\\' && i + 1 < n) {
                if (h[i + 1] == 'u' && i + 5 < n && !memcmp(h + i + 2, "0000", 4))
                    return aur__err(AUR_EFORMAT, "%s: an escaped NUL (\\u0000) in the header", path);
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
            continue;
        }
        if (c == '"') in_str = 1;
        else if ((isdigit(c) || c == '-') && aur__st_scan_number(path, h, n, &i)) return AUR_EFORMAT;
        else if (c == '{' || c == '[') {
            if (++depth > AUR__ST_MAX_DEPTH)
                return aur__err(AUR_EFORMAT, "%s: the header nests deeper than %d", path, AUR__ST_MAX_DEPTH);
        } else if (c == '}' || c == ']') {
            if (--depth == 0) end = i + 1;
        }
    }
    if (!end) return aur__err(AUR_EFORMAT, "%s: the header's JSON object is not closed", path);
    return 0;
}

/* A JSON number that is an integer in [0, 2^53] (never through valueint). */
static int aur__json_u53(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= AUR__ST_MAX_INT) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int aur__st_cmp_name(const void *a, const void *b)
{
    return strcmp(((const aur_st_tensor *)a)->name, ((const aur_st_tensor *)b)->name);
}

static int aur__st_cmp_offset(const void *a, const void *b)
{
    const aur_st_tensor *x = *(const aur_st_tensor *const *)a, *y = *(const aur_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

static int aur__st_metadata(aur_st_file *f, const cJSON *meta)
{
    if (!cJSON_IsObject(meta)) return aur__err(AUR_EFORMAT, "%s: __metadata__ is not an object", f->path);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = (char **)aur__calloc(sizeof(char *) * (size_t)(n + 1), "metadata");
    f->meta_values = (char **)aur__calloc(sizeof(char *) * (size_t)(n + 1), "metadata");
    if (!f->meta_keys || !f->meta_values) return AUR_ENOMEM;
    for (const cJSON *m = meta->child; m; m = m->next) {
        if (!cJSON_IsString(m) || !m->string)
            return aur__err(AUR_EFORMAT, "%s: __metadata__['%s'] is not a string", f->path, m->string ? m->string : "?");
        f->meta_keys[f->n_meta] = aur__strdup(m->string);
        f->meta_values[f->n_meta] = aur__strdup(m->valuestring);
        if (!f->meta_keys[f->n_meta++] || !f->meta_values[f->n_meta - 1]) return AUR_ENOMEM;
    }
    return 0;
}

/* One tensor entry: dtype, shape, data_offsets, and their consistency. */
static int aur__st_entry(aur_st_file *f, const cJSON *e, aur_st_tensor *t)
{
    const char *p = f->path, *nm = t->name;
    if (!cJSON_IsObject(e)) return aur__err(AUR_EFORMAT, "%s: tensor '%s': the entry is not an object", p, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return aur__err(AUR_EFORMAT, "%s: tensor '%s': 'dtype' is missing or not a string", p, nm);
    const aur__st_dtype *info = aur__st_dtype_find(dt->valuestring);
    if (!info) return aur__err(AUR_EFORMAT, "%s: tensor '%s': unknown dtype '%.20s'", p, nm, dt->valuestring);
    snprintf(t->dtype, sizeof t->dtype, "%s", info->name);
    if (!cJSON_IsArray(sh)) return aur__err(AUR_EFORMAT, "%s: tensor '%s': 'shape' is missing or not an array", p, nm);
    int rank = cJSON_GetArraySize(sh);
    if (rank > AUR_ST_MAX_DIMS)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': rank %d is above %d", p, nm, rank, AUR_ST_MAX_DIMS);
    uint64_t numel = 1, nonzero = 1, v;
    int overflow = 0;
    t->ndim = 0;
    for (const cJSON *d = sh->child; d; d = d->next) {
        if (!aur__json_u53(d, &v))
            return aur__err(AUR_EFORMAT, "%s: tensor '%s': shape entry %d is not an integer in [0, 2^53]", p, nm, t->ndim);
        /* a zero dim elsewhere does not excuse an absurd shape: strides would overflow */
        if (v && nonzero > (UINT64_MAX / 64) / v) overflow = 1;
        if (v) nonzero *= v;
        numel *= v;
        t->shape[t->ndim++] = (int64_t)v;
    }
    if (overflow)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': the shape's byte size overflows", p, nm);
    t->numel = (int64_t)numel;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !aur__json_u53(of->child, &t->begin) ||
        !aur__json_u53(of->child->next, &t->end))
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': 'data_offsets' is not two integers in [0, 2^53]", p, nm);
    if (t->begin > t->end)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': data_offsets begin %llu > end %llu", p, nm,
                        (unsigned long long)t->begin, (unsigned long long)t->end);
    uint64_t bits = numel * (uint64_t)info->bits;
    if (bits % 8 || bits / 8 != t->end - t->begin)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': %s of %llu elements needs %llu bytes; data_offsets give %llu", p,
                        nm, info->name, (unsigned long long)numel, (unsigned long long)(bits / 8),
                        (unsigned long long)(t->end - t->begin));
    return 0;
}

/* After sorting by offset the ranges must tile the buffer exactly. */
static int aur__st_check_layout(aur_st_file *f)
{
    aur_st_tensor **by = (aur_st_tensor **)aur__malloc(sizeof(aur_st_tensor *) * (size_t)(f->n + 1), "a header index");
    if (!by) return AUR_ENOMEM;
    for (int i = 0; i < f->n; i++) by[i] = &f->tensors[i];
    aur__qsort(by, (size_t)f->n, sizeof *by, aur__st_cmp_offset);
    uint64_t at = 0;
    int rc = 0;
    for (int i = 0; i < f->n && !rc; i++) {
        if (by[i]->begin != at)
            rc = aur__err(AUR_EFORMAT, "%s: tensor '%s': data starts at %llu, expected %llu (%s)", f->path, by[i]->name,
                          (unsigned long long)by[i]->begin, (unsigned long long)at,
                          by[i]->begin > at ? "a hole before it" : "it overlaps the previous tensor");
        at = by[i]->end;
    }
    if (!rc && at != f->buffer_size)
        rc = aur__err(AUR_EFORMAT, "%s: the tensors cover %llu bytes but the data section has %llu (%s)", f->path,
                      (unsigned long long)at, (unsigned long long)f->buffer_size,
                      at > f->buffer_size ? "truncated file or offsets out of range" : "trailing bytes");
    AUR_FREE(by);
    return rc;
}

static int aur__st_parse(aur_st_file *f, const unsigned char *bytes, uint64_t size)
{
    const char *p = f->path;
    if (size < 8) return aur__err(AUR_EFORMAT, "%s: %llu bytes is too short for a safetensors file", p, (unsigned long long)size);
    uint64_t n = aur__le64(bytes);
    if (n > AUR__ST_MAX_HEADER) return aur__err(AUR_EFORMAT, "%s: header length %llu is above the limit 100000000", p, (unsigned long long)n);
    if (8 + n > size)
        return aur__err(AUR_EFORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)", p,
                        (unsigned long long)n, (unsigned long long)size);
    int rc = aur__st_scan_json(p, bytes + 8, n);
    if (rc) return rc;
    const char *stop = NULL;
    cJSON *root = aur__cjson_parse((const char *)bytes + 8, (size_t)n, &stop);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return aur__err(AUR_EFORMAT, "%s: the header is not valid JSON", p);
    }
    if ((rc = aur__json_unique(root, p))) { /* "dtype" twice in an entry, __metadata__ twice, a tensor name twice */
        cJSON_Delete(root);
        return rc;
    }
    f->buffer = bytes + 8 + n; /* aur_st_open reads files with pread instead */
    f->data_start = 8 + n;
    f->buffer_size = size - 8 - n;
    int count = cJSON_GetArraySize(root);
    f->tensors = (aur_st_tensor *)aur__calloc(sizeof(aur_st_tensor) * (size_t)(count + 1), "the tensor table");
    if (!f->tensors) rc = AUR_ENOMEM;
    for (const cJSON *e = root->child; e && !rc; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            rc = aur__st_metadata(f, e);
            continue;
        }
        aur_st_tensor *t = &f->tensors[f->n++];
        t->name = aur__strdup(e->string);
        rc = t->name ? aur__st_entry(f, e, t) : AUR_ENOMEM;
    }
    cJSON_Delete(root);
    if (rc) return rc;
    aur__qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, aur__st_cmp_name);
    return aur__st_check_layout(f);
}

AURDEF void aur_st_close(aur_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) AUR_FREE(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        AUR_FREE(f->meta_keys[i]);
        AUR_FREE(f->meta_values[i]);
    }
    AUR_FREE(f->tensors);
    AUR_FREE(f->meta_keys);
    AUR_FREE(f->meta_values);
    aur__torch_close(f);
    if (f->fd >= 0) close(f->fd);
    AUR_FREE(f->path);
    AUR_FREE(f);
}

/* n bytes at offset of the file (or of the in-memory data section), all of them. */
static int aur__st_pread(const aur_st_file *f, uint64_t offset, void *dst, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = pread(f->fd, (char *)dst + got, n - got, (off_t)(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return aur__err(AUR_EIO, "%s: %s at byte %llu (was the file cut short while open?)", f->path, r < 0 ? strerror(errno) : "the file ends",
                            (unsigned long long)(offset + got));
        got += (size_t)r;
    }
    return 0;
}

/* The bytes [begin, begin + n) of the data section. */
static int aur__st_bytes(const aur_st_file *f, uint64_t begin, void *dst, size_t n)
{
    if (f->torch) return aur__torch_bytes(f, begin, dst, n);
    if (f->buffer) {
        memcpy(dst, f->buffer + begin, n);
        return 0;
    }
    return aur__st_pread(f, f->data_start + begin, dst, n);
}

/* The length prefix and the header of an opened file of size bytes, into *out (8 + length bytes). */
static int aur__st_read_header(aur_st_file *f, uint64_t size, unsigned char **out)
{
    unsigned char len[8];
    if (size < 8) return aur__err(AUR_EFORMAT, "%s: %llu bytes is too short for a safetensors file", f->path, (unsigned long long)size);
    int rc = aur__st_pread(f, 0, len, 8);
    uint64_t n = rc ? 0 : aur__le64(len);
    if (!rc && (n > AUR__ST_MAX_HEADER || 8 + n > size)) return aur__st_parse(f, len, size); /* which says why */
    if (!rc && !(*out = (unsigned char *)aur__malloc((size_t)(8 + n), "a safetensors header"))) rc = AUR_ENOMEM;
    if (!rc) rc = aur__st_pread(f, 0, *out, (size_t)(8 + n));
    return rc;
}

/* 1 for a zip archive (torch.save's format), an error for torch's legacy
   pickle format, 0 for anything else (a safetensors file, or what its parser refuses). */
static int aur__st_format(aur_st_file *f, uint64_t size)
{
    /* torch's legacy files open with a pickle (protocol 2) of its magic number 0x1950a86a20f9469cfc6c */
    static const unsigned char legacy[14] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    unsigned char magic[14] = {0};
    if (size >= 14 && aur__st_pread(f, 0, magic, 14)) return AUR_EIO;
    if (size >= 14 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) return 1;
    if (size >= 14 && !memcmp(magic, legacy, sizeof legacy))
        return aur__err(AUR_EUNSUPPORTED, "%s: a PyTorch checkpoint in the legacy format (torch < 1.6, or _use_new_zipfile_serialization=False): "
                        "load and torch.save it again with a current torch", f->path);
    return 0;
}

AURDEF aur_st_file *aur_st_open(const char *path)
{
    uint16_t one = 1;
    if (*(unsigned char *)&one != 1) {
        aur__err(AUR_EUNSUPPORTED, "%s: safetensors needs a little-endian host", path);
        return NULL;
    }
    aur_st_file *f = (aur_st_file *)aur__calloc(sizeof *f, "a safetensors file");
    if (!f || !(f->path = aur__strdup(path))) {
        AUR_FREE(f);
        return NULL;
    }
    f->fd = -1;
    /* O_NONBLOCK: opening a FIFO must not hang; we then insist on a regular file */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc = 0;
    struct stat st;
    unsigned char *header = NULL;
    if (fd < 0) {
        rc = aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno));
    } else if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        rc = aur__err(AUR_EIO, "%s: not a regular file", path);
    } else {
        f->fd = fd, fd = -1;
        rc = aur__st_format(f, (uint64_t)st.st_size);
        if (rc == 1) rc = aur__torch_open(f); /* a PyTorch checkpoint */
        else if (!rc) rc = aur__st_read_header(f, (uint64_t)st.st_size, &header);
    }
    if (fd >= 0) close(fd);
    if (!rc && !f->torch) rc = aur__st_parse(f, header, (uint64_t)st.st_size);
    f->buffer = NULL; /* the data section is read from the file */
    AUR_FREE(header);
    if (rc) {
        aur_st_close(f);
        return NULL;
    }
    return f;
}

AURDEF const aur_st_tensor *aur_st_find(const aur_st_file *f, const char *name)
{
    aur_st_tensor key;
    memset(&key, 0, sizeof key);
    key.name = (char *)name;
    return (const aur_st_tensor *)bsearch(&key, f->tensors, (size_t)f->n, sizeof key, aur__st_cmp_name);
}

AURDEF const char *aur_st_meta(const aur_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

/* Element i of an entry as a double (the data may be unaligned: memcpy). */
static double aur__st_value(const unsigned char *d, const char *dtype, int64_t i)
{
    if (!strcmp(dtype, "F32")) {
        float v;
        memcpy(&v, d + 4 * i, 4);
        return v;
    }
    if (!strcmp(dtype, "BF16") || !strcmp(dtype, "F16")) {
        uint16_t v;
        memcpy(&v, d + 2 * i, 2);
        return dtype[0] == 'B' ? aur_bf16_to_f32(v) : aur_f16_to_f32(v);
    }
    if (!strcmp(dtype, "I64")) {
        int64_t v;
        memcpy(&v, d + 8 * i, 8);
        return (double)v;
    }
    if (!strcmp(dtype, "I32")) {
        int32_t v;
        memcpy(&v, d + 4 * i, 4);
        return v;
    }
    return d[i]; /* U8, BOOL */
}

/* The dtype's size and whether we convert it; an error naming the tensor if we do not. */
static int aur__st_readable(const aur_st_file *f, const aur_st_tensor *e, size_t *elem_size)
{
    const aur__st_dtype *info = aur__st_dtype_find(e->dtype);
    *elem_size = 0;
    if (!info || !info->readable)
        return aur__err(AUR_EUNSUPPORTED, "%s: tensor '%s': dtype %s is not supported (F32, BF16, F16, I64, I32, U8, BOOL)",
                        f->path, e->name, e->dtype);
    *elem_size = (size_t)(info->bits / 8);
    return 0;
}

AURDEF int aur_st_read_range(const aur_st_file *f, const aur_st_tensor *e, int64_t first, int64_t count, aur_real *dst)
{
    size_t size;
    int rc = aur__st_readable(f, e, &size);
    if (rc) return rc;
    if (first < 0 || count < 0 || first > e->numel - count)
        return aur__err(AUR_EINVAL, "%s: tensor '%s' has %lld elements; asked for %lld from %lld", f->path, e->name, (long long)e->numel,
                        (long long)count, (long long)first);
    uint64_t at = e->begin + (uint64_t)first * size;
    size_t n = (size_t)count * size;
    if (!strcmp(e->dtype, "F32") && sizeof(aur_real) == 4) return aur__st_bytes(f, at, dst, n); /* as stored */
    unsigned char *d = (unsigned char *)aur__malloc(n ? n : 1, "a tensor's bytes");
    rc = d ? aur__st_bytes(f, at, d, n) : AUR_ENOMEM;
    for (int64_t i = 0; !rc && i < count; i++) dst[i] = (aur_real)aur__st_value(d, e->dtype, i);
    AUR_FREE(d);
    return rc;
}

AURDEF int aur_st_read(const aur_st_file *f, const aur_st_tensor *e, aur_dtype dtype, void *dst)
{
    if (dtype != AUR_BF16) return aur_st_read_range(f, e, 0, e->numel, (aur_real *)dst);
    size_t size, n = (size_t)(e->end - e->begin);
    int rc = aur__st_readable(f, e, &size);
    if (rc || !strcmp(e->dtype, "BF16")) return rc ? rc : aur__st_bytes(f, e->begin, dst, n); /* as stored */
    unsigned char *d = (unsigned char *)aur__malloc(n ? n : 1, "a tensor's bytes");
    rc = d ? aur__st_bytes(f, e->begin, d, n) : AUR_ENOMEM;
    for (int64_t i = 0; !rc && i < e->numel; i++) ((uint16_t *)dst)[i] = aur_f32_to_bf16((float)aur__st_value(d, e->dtype, i));
    AUR_FREE(d);
    return rc;
}

AURDEF int aur_st_read_tensor(const aur_st_file *f, const aur_st_tensor *e, aur_tensor *t)
{
    char s1[64], s2[64];
    if (t->device == AUR_META) return aur__err(AUR_EUNSUPPORTED, "%s: tensor '%s' would go to the meta device, which holds no values", f->path, e->name);
    int same = e->ndim == t->ndim;
    for (int i = 0; same && i < e->ndim; i++) same = e->shape[i] == t->shape[i];
    if (!same)
        return aur__err(AUR_ESHAPE, "%s: tensor '%s' has shape %s, expected %s", f->path, e->name,
                        aur_shape_str(e->shape, e->ndim, s1, sizeof s1), aur_shape_str(t->shape, t->ndim, s2, sizeof s2));
    if (t->device == AUR_CPU) return aur_st_read(f, e, t->dtype, t->data);
    void *tmp = aur__malloc(aur__nbytes(t), "a host staging buffer");
    int rc = tmp ? aur_st_read(f, e, t->dtype, tmp) : AUR_ENOMEM;
    if (!rc) rc = aur__copy_bytes(t->data, t->device, tmp, AUR_CPU, aur__nbytes(t));
    AUR_FREE(tmp);
    return rc;
}

/* ==== safetensors: writing ====
   Entries sorted by dtype size (descending) then name, packed, the header
   padded with spaces to a multiple of 8, written to path.tmp, fsynced and
   renamed over path, so a crash never leaves a half-written file. */

typedef struct aur__st_out {
    char *name;
    char dtype[12];
    int ndim;
    int64_t shape[AUR_ST_MAX_DIMS];
    uint64_t nbytes;
    const void *src;
    aur_device device;
    int from_real; /* src holds aur_real, written as F32 */
} aur__st_out;

struct aur_st_writer {
    aur__st_out *e;
    int n, cap;
    char **meta; /* key, value, key, value, ... */
    int n_meta, cap_meta;
};

AURDEF aur_st_writer *aur_st_writer_create(void)
{
    return (aur_st_writer *)aur__calloc(sizeof(aur_st_writer), "a safetensors writer");
}

AURDEF void aur_st_writer_free(aur_st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) AUR_FREE(w->e[i].name);
    for (int i = 0; i < w->n_meta; i++) AUR_FREE(w->meta[i]);
    AUR_FREE(w->e);
    AUR_FREE(w->meta);
    AUR_FREE(w);
}

static aur__st_out *aur__st_push(aur_st_writer *w, const char *name, const char *dtype, int ndim, const int64_t *shape)
{
    const aur__st_dtype *info = aur__st_dtype_find(dtype);
    if (!info || ndim < 0 || ndim > AUR_ST_MAX_DIMS) {
        aur__err(AUR_EINVAL, "safetensors writer: tensor '%s': bad dtype '%s' or rank %d", name, dtype, ndim);
        return NULL;
    }
    if (aur__grow((void **)&w->e, &w->cap, w->n + 1, sizeof *w->e)) return NULL;
    aur__st_out *o = &w->e[w->n];
    memset(o, 0, sizeof *o);
    if (!(o->name = aur__strdup(name))) return NULL;
    snprintf(o->dtype, sizeof o->dtype, "%s", dtype);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (uint64_t)(o->shape[i] = shape[i]);
    o->ndim = ndim;
    o->nbytes = numel * (uint64_t)info->bits / 8;
    w->n++;
    return o;
}

AURDEF int aur_st_writer_add(aur_st_writer *w, const char *name, const aur_tensor *t)
{
    aur__st_out *o = aur__st_push(w, name, t->dtype == AUR_BF16 ? "BF16" : "F32", t->ndim, t->shape);
    if (!o) return AUR_EINVAL;
    o->src = t->data;
    o->device = t->device;
    o->from_real = t->dtype == AUR_F32;
    return 0;
}

AURDEF int aur_st_writer_add_raw(aur_st_writer *w, const char *name, const char *dtype, int ndim, const int64_t *shape,
                                 const void *bytes)
{
    aur__st_out *o = aur__st_push(w, name, dtype, ndim, shape);
    if (!o) return AUR_EINVAL;
    o->src = bytes;
    return 0;
}

AURDEF int aur_st_writer_meta(aur_st_writer *w, const char *key, const char *value)
{
    if (!strcmp(key, "format")) return 0; /* always "pt" */
    if (aur__grow((void **)&w->meta, &w->cap_meta, w->n_meta + 2, sizeof(char *))) return AUR_ENOMEM;
    w->meta[w->n_meta] = aur__strdup(key);
    w->meta[w->n_meta + 1] = aur__strdup(value);
    if (!w->meta[w->n_meta] || !w->meta[w->n_meta + 1]) return AUR_ENOMEM;
    w->n_meta += 2;
    return 0;
}

static int aur__st_out_cmp(const void *a, const void *b)
{
    const aur__st_out *x = (const aur__st_out *)a, *y = (const aur__st_out *)b;
    int bx = aur__st_dtype_find(x->dtype)->bits, by = aur__st_dtype_find(y->dtype)->bits;
    if (bx != by) return by - bx;
    return strcmp(x->name, y->name);
}

static int aur__st_out_name_cmp(const void *a, const void *b)
{
    return strcmp(((const aur__st_out *)a)->name, ((const aur__st_out *)b)->name);
}

static void aur__buf_json_string(aur__buf *b, const char *s)
{
    aur__buf_printf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') aur__buf_printf(b, "\\%c", *c);
        else if (*c < 0x20) aur__buf_printf(b, "\\u%04x", *c);
        else aur__buf_printf(b, "%c", *c);
    }
    aur__buf_printf(b, "\"");
}

static void aur__st_header(aur_st_writer *w, aur__buf *b)
{
    uint64_t off = 0;
    aur__buf_printf(b, "{\"__metadata__\":{\"format\":\"pt\"");
    for (int i = 0; i < w->n_meta; i += 2) {
        aur__buf_printf(b, ",");
        aur__buf_json_string(b, w->meta[i]);
        aur__buf_printf(b, ":");
        aur__buf_json_string(b, w->meta[i + 1]);
    }
    aur__buf_printf(b, "}");
    for (int i = 0; i < w->n; i++) {
        aur__st_out *o = &w->e[i];
        aur__buf_printf(b, ",");
        aur__buf_json_string(b, o->name);
        aur__buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", o->dtype);
        for (int d = 0; d < o->ndim; d++) aur__buf_printf(b, d ? ",%lld" : "%lld", (long long)o->shape[d]);
        aur__buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + o->nbytes));
        off += o->nbytes;
    }
    aur__buf_printf(b, "}");
    while (!b->failed && b->n % 8) aur__buf_printf(b, " ");
}

/* Writes one entry's bytes, converting aur_real to float32 and staging device data. */
static int aur__st_write_data(FILE *fp, const aur__st_out *o)
{
    const uint64_t CHUNK = 1 << 16;
    int direct = o->device == AUR_CPU && (!o->from_real || sizeof(aur_real) == 4);
    if (direct) return fwrite(o->src, 1, (size_t)o->nbytes, fp) == o->nbytes ? 0 : -1;
    size_t esz = o->from_real ? sizeof(aur_real) : 2, out_esz = o->from_real ? 4 : 2;
    uint64_t n = o->nbytes / out_esz;
    unsigned char *stage = (unsigned char *)aur__malloc((size_t)CHUNK * esz, "a write buffer");
    float *conv = (float *)aur__malloc((size_t)CHUNK * 4, "a write buffer");
    int rc = stage && conv ? 0 : -1;
    for (uint64_t i = 0; i < n && !rc; i += CHUNK) {
        size_t k = (size_t)(n - i < CHUNK ? n - i : CHUNK);
        rc = aur__copy_bytes(stage, AUR_CPU, (const char *)o->src + i * esz, o->device, k * esz) ? -1 : 0;
        if (rc) break;
        const void *out = stage;
        if (o->from_real) {
            for (size_t j = 0; j < k; j++) conv[j] = (float)((const aur_real *)stage)[j];
            out = conv;
        }
        rc = fwrite(out, out_esz, k, fp) == k ? 0 : -1;
    }
    AUR_FREE(stage);
    AUR_FREE(conv);
    return rc;
}

/* fsync the directory holding path, so the rename itself is durable. */
/* Makes the rename of path durable: an error (EIO) means the file may not survive a crash. */
static int aur__fsync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd >= 0 && fsync(fd) && errno != EINVAL) rc = aur__err(AUR_EIO, "%s: the directory could not be synced: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return rc;
}

AURDEF int aur_st_writer_write(aur_st_writer *w, const char *path)
{
    /* names must be unique: sort by name once to find repeats, then into file order */
    aur__qsort(w->e, (size_t)w->n, sizeof *w->e, aur__st_out_name_cmp);
    for (int i = 1; i < w->n; i++)
        if (!strcmp(w->e[i].name, w->e[i - 1].name))
            return aur__err(AUR_EINVAL, "%s: tensor name '%s' is given twice", path, w->e[i].name);
    aur__qsort(w->e, (size_t)w->n, sizeof *w->e, aur__st_out_cmp);
    aur__buf hdr;
    memset(&hdr, 0, sizeof hdr);
    aur__st_header(w, &hdr);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = hdr.failed ? NULL : fopen(tmp, "wb");
    int rc = fp ? 0 : -1;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)hdr.n >> (8 * i));
    if (!rc) rc = fwrite(len, 1, 8, fp) == 8 && fwrite(hdr.p, 1, hdr.n, fp) == hdr.n ? 0 : -1;
    for (int i = 0; i < w->n && !rc; i++) rc = aur__st_write_data(fp, &w->e[i]);
    if (!rc) rc = fflush(fp) || fsync(fileno(fp)) ? -1 : 0;
    int saved = errno;
    if (fp && fclose(fp) && !rc) rc = -1, saved = errno;
    if (!rc && rename(tmp, path)) rc = -1, saved = errno;
    AUR_FREE(hdr.p);
    if (rc) {
        unlink(tmp);
        return aur__err(AUR_EIO, "%s: cannot write: %s", path, hdr.failed ? "out of memory" : strerror(saved));
    }
    return aur__fsync_dir(path);
}

/* ==== PyTorch checkpoints: reading ====
   torch.save (torch/serialization.py: _save) writes a zip archive:
   <name>/data.pkl, a pickle of the object whose tensors' storages are
   persistent ids ("storage", torch.FloatStorage, key, location, numel), and
   <name>/data/<key>, each storage's bytes (little-endian, stored). The
   pickle is untrusted: as torch.load(weights_only=True) this runs no code
   and accepts only what a state dict needs (dicts, lists, tuples, numbers,
   strings, OrderedDict, the tensor and parameter rebuilders, the storage
   types); any other global is refused by name. The tensors then read as a
   safetensors file's: aur_st_open hands zip files here. */

#ifdef AUR_TORCH_CKPT
#include <zip.h>

/* what a pickle may build: a state dict of thousands of tensors needs far less */
#define AUR__PK_MAX_STACK (1 << 22)
#define AUR__PK_MAX_MEMO (1 << 24)
#define AUR__PK_MAX_VALUES (1 << 21)
#define AUR__PK_MAX_BYTES ((size_t)256 << 20)

/* OPAQUE: a value outside the state dict that weights_only would build (a set, a
   torch.Size, a dtype, a big integer ...); kept as a token, never constructed */
enum { AUR__PK_NONE, AUR__PK_BOOL, AUR__PK_INT, AUR__PK_FLOAT, AUR__PK_STR, AUR__PK_TUPLE, AUR__PK_LIST, AUR__PK_DICT,
       AUR__PK_GLOBAL, AUR__PK_STORAGE, AUR__PK_TENSOR, AUR__PK_OPAQUE };

typedef struct aur__pk {
    int kind, n, cap;
    int64_t i;             /* INT, BOOL; STORAGE: elements */
    char *s;               /* STR; GLOBAL: "module.name"; STORAGE: its key */
    struct aur__pk **v;    /* TUPLE, LIST: items; DICT: key, value, key, value... */
    const char *dtype;     /* STORAGE: "F32", ... */
    struct aur__pk *storage; /* TENSOR: */
    int64_t offset, shape[AUR_ST_MAX_DIMS], stride[AUR_ST_MAX_DIMS];
    int ndim;
} aur__pk;

typedef struct aur__unpickler {
    const unsigned char *p, *end;
    const char *path;
    aur__pk **stack, **memo, **all;
    int sp, stack_cap, n_memo, memo_cap, memo_entries, n_all, all_cap, *marks, n_marks, marks_cap;
    int64_t n_items; /* items added to containers, all together */
} aur__unpickler;

static int aur__pk_bad(const aur__unpickler *u, const char *what)
{
    return aur__err(AUR_EFORMAT, "%s: data.pkl: %s", u->path, what);
}

static aur__pk *aur__pk_new(aur__unpickler *u, int kind)
{
    if (u->n_all >= AUR__PK_MAX_VALUES) return aur__pk_bad(u, "more than 2M values"), (aur__pk *)NULL;
    aur__pk *v = (aur__pk *)aur__calloc(sizeof *v, "a pickle value");
    if (!v || aur__grow((void **)&u->all, &u->all_cap, u->n_all + 1, sizeof *u->all)) return AUR_FREE(v), (aur__pk *)NULL;
    u->all[u->n_all++] = v;
    v->kind = kind;
    return v;
}

static void aur__pk_free_all(aur__unpickler *u)
{
    for (int i = 0; i < u->n_all; i++) AUR_FREE(u->all[i]->s), AUR_FREE(u->all[i]->v), AUR_FREE(u->all[i]);
    AUR_FREE(u->all), AUR_FREE(u->stack), AUR_FREE(u->memo), AUR_FREE(u->marks);
}

static int aur__pk_push(aur__unpickler *u, aur__pk *v)
{
    if (!v) return AUR_ENOMEM;
    if (u->sp >= AUR__PK_MAX_STACK) return aur__pk_bad(u, "the stack grows past 4M values");
    if (aur__grow((void **)&u->stack, &u->stack_cap, u->sp + 1, sizeof *u->stack)) return AUR_ENOMEM;
    u->stack[u->sp++] = v;
    return 0;
}

static aur__pk *aur__pk_pop(aur__unpickler *u)
{
    if (u->sp <= (u->n_marks ? u->marks[u->n_marks - 1] : 0)) return aur__pk_bad(u, "an opcode pops an empty stack"), (aur__pk *)NULL;
    return u->stack[--u->sp];
}

static int aur__pk_add(aur__unpickler *u, aur__pk *c, aur__pk *item)
{
    if (++u->n_items > 4 * (int64_t)AUR__PK_MAX_VALUES) return aur__pk_bad(u, "containers of more than 8M items in all");
    if (aur__grow((void **)&c->v, &c->cap, c->n + 1, sizeof *c->v)) return AUR_ENOMEM;
    c->v[c->n++] = item;
    return 0;
}

/* n bytes of the pickle, or NULL past its end. */
static const unsigned char *aur__pk_take(aur__unpickler *u, uint64_t n)
{
    if ((uint64_t)(u->end - u->p) < n) return aur__pk_bad(u, "the pickle ends inside an opcode"), (const unsigned char *)NULL;
    const unsigned char *at = u->p;
    u->p += n;
    return at;
}

static uint64_t aur__pk_le(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static int aur__pk_str(aur__unpickler *u, uint64_t n)
{
    const unsigned char *b = aur__pk_take(u, n);
    aur__pk *v = b ? aur__pk_new(u, AUR__PK_STR) : NULL;
    if (!v) return b ? AUR_ENOMEM : AUR_EFORMAT;
    if (!(v->s = (char *)aur__malloc((size_t)n + 1, "a pickle string"))) return AUR_ENOMEM;
    memcpy(v->s, b, (size_t)n), v->s[n] = 0;
    v->i = (int64_t)n; /* a NUL inside shows as strlen(s) < i */
    return aur__pk_push(u, v);
}

static int aur__pk_int(aur__unpickler *u, int64_t i, int kind)
{
    aur__pk *v = aur__pk_new(u, kind);
    if (v) v->i = i;
    return aur__pk_push(u, v);
}

/* The items above the top mark, into a new container of that kind (the mark dropped). */
static int aur__pk_collect(aur__unpickler *u, aur__pk *into)
{
    if (!u->n_marks) return aur__pk_bad(u, "an opcode needs a mark that is not there");
    int from = u->marks[--u->n_marks], rc = 0;
    for (int k = from; k < u->sp && !rc; k++) rc = aur__pk_add(u, into, u->stack[k]);
    u->sp = from;
    return rc;
}

/* SETITEM(S), APPEND(S): the collected items into the container below the mark. */
static int aur__pk_extend(aur__unpickler *u, int pairs, int one)
{
    aur__pk tmp;
    memset(&tmp, 0, sizeof tmp);
    int rc = 0;
    if (one) {
        int k = pairs ? 2 : 1;
        if (u->sp - (u->n_marks ? u->marks[u->n_marks - 1] : 0) < k + 1) return aur__pk_bad(u, "SETITEM/APPEND without its operands");
        for (int j = 0; j < k && !rc; j++) rc = aur__pk_add(u, &tmp, u->stack[u->sp - k + j]);
        u->sp -= k;
    } else rc = aur__pk_collect(u, &tmp);
    aur__pk *c = rc ? NULL : aur__pk_pop(u);
    if (!rc && !c) rc = AUR_EFORMAT;
    if (!rc && c->kind != (pairs ? AUR__PK_DICT : AUR__PK_LIST)) rc = aur__pk_bad(u, pairs ? "SETITEMS on what is not a dict" : "APPENDS on what is not a list");
    if (!rc && pairs && tmp.n % 2) rc = aur__pk_bad(u, "SETITEMS with a key but no value");
    for (int j = 0; !rc && j < tmp.n; j++) rc = aur__pk_add(u, c, tmp.v[j]);
    AUR_FREE(tmp.v);
    return rc ? rc : aur__pk_push(u, c);
}

/* The storage types torch.save names, as safetensors dtypes. */
static const char *aur__torch_storage_dtype(const char *global)
{
    static const char *const map[][2] = {{"torch.FloatStorage", "F32"}, {"torch.BFloat16Storage", "BF16"}, {"torch.HalfStorage", "F16"},
                                          {"torch.DoubleStorage", "F64"}, {"torch.LongStorage", "I64"},     {"torch.IntStorage", "I32"},
                                          {"torch.ShortStorage", "I16"},  {"torch.CharStorage", "I8"},      {"torch.ByteStorage", "U8"},
                                          {"torch.BoolStorage", "BOOL"}};
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (!strcmp(global, map[k][0])) return map[k][1];
    return NULL;
}

/* Globals weights_only allows that a checkpoint holds beside its state dict
   (hyper-parameters, optimiser and callback state): their values become opaque tokens. */
static int aur__pk_opaque_global(const char *full)
{
    static const char *const names[] = {"builtins.set", "builtins.frozenset", "builtins.complex", "builtins.slice", "builtins.range",
                                        "builtins.bytearray", "__builtin__.set", "__builtin__.frozenset", "__builtin__.complex",
                                        "__builtin__.slice", "__builtin__.bytearray", "_codecs.encode", "collections.Counter",
                                        "torch.Size", "torch.device", NULL};
    static const char *const dtypes[] = {"float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32",
                                         "int", "int16", "short", "int8", "uint8", "bool", "complex64", "complex128", NULL};
    for (int k = 0; names[k]; k++)
        if (!strcmp(full, names[k])) return 1;
    for (int k = 0; dtypes[k]; k++)
        if (!strncmp(full, "torch.", 6) && !strcmp(full + 6, dtypes[k])) return 1;
    return 0;
}

/* GLOBAL: only the names a state dict needs (weights_only's allow-list, reduced to them). */
static int aur__pk_global(aur__unpickler *u, const char *module, const char *name)
{
    static const char *const allowed[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", NULL};
    char full[256];
    snprintf(full, sizeof full, "%.120s.%.120s", module, name);
    int ok = aur__torch_storage_dtype(full) != NULL || aur__pk_opaque_global(full);
    for (int k = 0; allowed[k] && !ok; k++) ok = !strcmp(full, allowed[k]);
    if (!ok)
        return aur__err(AUR_EFORMAT, "%s: data.pkl: global '%s' is not allowed: a checkpoint is read as torch.load(weights_only=True) "
                        "reads it, and only a state dict's tensors are taken", u->path, full);
    aur__pk *g = aur__pk_new(u, AUR__PK_GLOBAL);
    if (g && !(g->s = aur__strdup(full))) return AUR_ENOMEM;
    return aur__pk_push(u, g);
}

static int aur__pk_int_tuple(const aur__pk *t, int64_t *out, int max)
{
    if (t->kind != AUR__PK_TUPLE || t->n > max) return -1;
    for (int k = 0; k < t->n; k++) {
        if (t->v[k]->kind != AUR__PK_INT || t->v[k]->i < 0) return -1;
        out[k] = t->v[k]->i;
    }
    return t->n;
}

/* torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static aur__pk *aur__pk_tensor(aur__unpickler *u, const aur__pk *a)
{
    aur__pk *t = aur__pk_new(u, AUR__PK_TENSOR);
    if (!t) return NULL;
    int64_t stride[AUR_ST_MAX_DIMS];
    int ok = a->n >= 4 && a->v[0]->kind == AUR__PK_STORAGE && a->v[1]->kind == AUR__PK_INT && a->v[1]->i >= 0;
    t->ndim = ok ? aur__pk_int_tuple(a->v[2], t->shape, AUR_ST_MAX_DIMS) : -1;
    ok = ok && t->ndim >= 0 && aur__pk_int_tuple(a->v[3], stride, AUR_ST_MAX_DIMS) == t->ndim;
    if (!ok) return aur__pk_bad(u, "_rebuild_tensor_v2 without (storage, offset, size, stride)"), (aur__pk *)NULL;
    if (a->n >= 7 && a->v[6]->kind == AUR__PK_DICT && a->v[6]->n)
        return aur__pk_bad(u, "a tensor saved with metadata (a negated or conjugated view); save tensor.resolve_neg() instead"), (aur__pk *)NULL;
    t->storage = a->v[0], t->offset = a->v[1]->i;
    memcpy(t->stride, stride, sizeof stride);
    return t;
}

/* REDUCE: an allowed callable applied to its arguments. */
static int aur__pk_reduce(aur__unpickler *u)
{
    aur__pk *args = aur__pk_pop(u), *fn = args ? aur__pk_pop(u) : NULL;
    if (!fn) return AUR_EFORMAT;
    if (fn->kind != AUR__PK_GLOBAL || args->kind != AUR__PK_TUPLE) return aur__pk_bad(u, "REDUCE of what is not a global and a tuple");
    if (aur__pk_opaque_global(fn->s)) return aur__pk_push(u, aur__pk_new(u, AUR__PK_OPAQUE));
    if (!strcmp(fn->s, "collections.OrderedDict")) {
        if (args->n) return aur__pk_bad(u, "OrderedDict with arguments");
        return aur__pk_push(u, aur__pk_new(u, AUR__PK_DICT));
    }
    if (!strcmp(fn->s, "torch._utils._rebuild_tensor_v2")) {
        aur__pk *t = aur__pk_tensor(u, args);
        return t ? aur__pk_push(u, t) : AUR_EFORMAT;
    }
    if (!strcmp(fn->s, "torch._utils._rebuild_parameter")) { /* (tensor, requires_grad, backward_hooks): the tensor */
        if (args->n < 1 || args->v[0]->kind != AUR__PK_TENSOR) return aur__pk_bad(u, "_rebuild_parameter without a tensor");
        return aur__pk_push(u, args->v[0]);
    }
    return aur__pk_bad(u, "a storage type called as a function");
}

/* BINPERSID: ("storage", storage type, key, location, numel). */
static int aur__pk_persid(aur__unpickler *u)
{
    aur__pk *id = aur__pk_pop(u);
    if (!id) return AUR_EFORMAT;
    int ok = id->kind == AUR__PK_TUPLE && id->n == 5 && id->v[0]->kind == AUR__PK_STR && !strcmp(id->v[0]->s, "storage") &&
             id->v[1]->kind == AUR__PK_GLOBAL && id->v[2]->kind == AUR__PK_STR && id->v[4]->kind == AUR__PK_INT && id->v[4]->i >= 0;
    const char *dtype = ok ? aur__torch_storage_dtype(id->v[1]->s) : NULL;
    if (!dtype) return aur__pk_bad(u, "a persistent id that is not a storage");
    aur__pk *s = aur__pk_new(u, AUR__PK_STORAGE);
    if (!s || !(s->s = aur__strdup(id->v[2]->s))) return AUR_ENOMEM;
    s->dtype = dtype, s->i = id->v[4]->i;
    return aur__pk_push(u, s);
}

static int aur__pk_memo_put(aur__unpickler *u, uint64_t idx)
{
    if (!u->sp) return aur__pk_bad(u, "a memo of an empty stack");
    if (idx >= AUR__PK_MAX_MEMO) return aur__pk_bad(u, "a memo index past 16M");
    if (aur__grow((void **)&u->memo, &u->memo_cap, (int)idx + 1, sizeof *u->memo)) return AUR_ENOMEM;
    for (int k = u->n_memo; k <= (int)idx; k++) u->memo[k] = NULL;
    if ((int)idx >= u->n_memo) u->n_memo = (int)idx + 1;
    u->memo_entries += !u->memo[idx];
    u->memo[idx] = u->stack[u->sp - 1];
    return 0;
}

static int aur__pk_memo_get(aur__unpickler *u, uint64_t idx)
{
    if (idx >= (uint64_t)u->n_memo || !u->memo[idx]) return aur__pk_bad(u, "a memo index that was never put");
    return aur__pk_push(u, u->memo[idx]);
}

/* GLOBAL's "module\nname\n" */
static int aur__pk_global_text(aur__unpickler *u)
{
    const unsigned char *a = u->p, *nl1 = (const unsigned char *)memchr(a, '\n', (size_t)(u->end - a));
    const unsigned char *nl2 = nl1 ? (const unsigned char *)memchr(nl1 + 1, '\n', (size_t)(u->end - nl1 - 1)) : NULL;
    if (!nl2 || nl1 - a > 120 || nl2 - nl1 > 121) return aur__pk_bad(u, "GLOBAL without its two lines");
    char module[128], name[128];
    memcpy(module, a, (size_t)(nl1 - a)), module[nl1 - a] = 0;
    memcpy(name, nl1 + 1, (size_t)(nl2 - nl1 - 1)), name[nl2 - nl1 - 1] = 0;
    u->p = nl2 + 1;
    return aur__pk_global(u, module, name);
}

static int aur__pk_stack_global(aur__unpickler *u)
{
    aur__pk *name = aur__pk_pop(u), *module = name ? aur__pk_pop(u) : NULL;
    if (!module) return AUR_EFORMAT;
    if (name->kind != AUR__PK_STR || module->kind != AUR__PK_STR) return aur__pk_bad(u, "STACK_GLOBAL of what are not strings");
    return aur__pk_global(u, module->s, name->s);
}

static int aur__pk_tuple_of(aur__unpickler *u, int n)
{
    aur__pk *t = aur__pk_new(u, AUR__PK_TUPLE);
    if (!t) return AUR_ENOMEM;
    if (u->sp - (u->n_marks ? u->marks[u->n_marks - 1] : 0) < n) return aur__pk_bad(u, "TUPLE of more values than the stack holds");
    for (int k = 0; k < n; k++)
        if (aur__pk_add(u, t, u->stack[u->sp - n + k])) return AUR_ENOMEM;
    u->sp -= n;
    return aur__pk_push(u, t);
}

/* BUILD on a dict (OrderedDict's state: the state dict's _metadata): dropped. */
static int aur__pk_build(aur__unpickler *u)
{
    aur__pk *state = aur__pk_pop(u), *obj = state ? aur__pk_pop(u) : NULL;
    if (!obj) return AUR_EFORMAT;
    if (obj->kind == AUR__PK_OPAQUE) return aur__pk_push(u, obj);
    if (obj->kind != AUR__PK_DICT || (state->kind != AUR__PK_DICT && state->kind != AUR__PK_NONE && state->kind != AUR__PK_TUPLE))
        return aur__pk_bad(u, "BUILD of what is not a dict");
    return aur__pk_push(u, obj);
}

/* One opcode (protocols 2 to 5, the ones a state dict uses). 1 at STOP. */
static int aur__pk_step(aur__unpickler *u)
{
    const unsigned char *b = aur__pk_take(u, 1);
    if (!b) return AUR_EFORMAT;
    switch (*b) {
    case 0x80: return aur__pk_take(u, 1) ? 0 : AUR_EFORMAT;                     /* PROTO */
    case 0x95: return aur__pk_take(u, 8) ? 0 : AUR_EFORMAT;                     /* FRAME */
    case '}': return aur__pk_push(u, aur__pk_new(u, AUR__PK_DICT));            /* EMPTY_DICT */
    case ']': return aur__pk_push(u, aur__pk_new(u, AUR__PK_LIST));            /* EMPTY_LIST */
    case ')': return aur__pk_push(u, aur__pk_new(u, AUR__PK_TUPLE));           /* EMPTY_TUPLE */
    case 'N': return aur__pk_push(u, aur__pk_new(u, AUR__PK_NONE));            /* NONE */
    case 0x88: case 0x89: return aur__pk_int(u, *b == 0x88, AUR__PK_BOOL);     /* NEWTRUE, NEWFALSE */
    case '(':                                                                    /* MARK */
        if (u->n_marks >= AUR__PK_MAX_STACK) return aur__pk_bad(u, "more than 4M open marks");
        if (aur__grow((void **)&u->marks, &u->marks_cap, u->n_marks + 1, sizeof *u->marks)) return AUR_ENOMEM;
        u->marks[u->n_marks++] = u->sp;
        return 0;
    case 'K': if (!(b = aur__pk_take(u, 1))) return AUR_EFORMAT; return aur__pk_int(u, b[0], AUR__PK_INT);          /* BININT1 */
    case 'M': if (!(b = aur__pk_take(u, 2))) return AUR_EFORMAT; return aur__pk_int(u, (int64_t)aur__pk_le(b, 2), AUR__PK_INT);
    case 'J': if (!(b = aur__pk_take(u, 4))) return AUR_EFORMAT; return aur__pk_int(u, (int32_t)aur__pk_le(b, 4), AUR__PK_INT);
    case 0x8a: {                                                                 /* LONG1: little-endian two's complement */
        const unsigned char *n = aur__pk_take(u, 1), *d = n ? aur__pk_take(u, n[0]) : NULL;
        if (!d) return AUR_EFORMAT;
        if (n[0] > 8) return aur__pk_push(u, aur__pk_new(u, AUR__PK_OPAQUE)); /* past 64 bits: no shape or offset */
        uint64_t v = n[0] ? aur__pk_le(d, n[0]) : 0;
        if (n[0] && n[0] < 8 && (d[n[0] - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n[0]);
        return aur__pk_int(u, (int64_t)v, AUR__PK_INT);
    }
    case 'G': {                                                                  /* BINFLOAT: big-endian double */
        if (!(b = aur__pk_take(u, 8))) return AUR_EFORMAT;
        aur__pk *v = aur__pk_new(u, AUR__PK_FLOAT);
        return aur__pk_push(u, v);
    }
    case 'X': if (!(b = aur__pk_take(u, 4))) return AUR_EFORMAT; return aur__pk_str(u, aur__pk_le(b, 4));  /* BINUNICODE */
    case 0x8c: case 'U': if (!(b = aur__pk_take(u, 1))) return AUR_EFORMAT; return aur__pk_str(u, b[0]); /* SHORT_BINUNICODE, SHORT_BINSTRING */
    case 0x8d: if (!(b = aur__pk_take(u, 8))) return AUR_EFORMAT; return aur__pk_str(u, aur__pk_le(b, 8)); /* BINUNICODE8 */
    case 'c': return aur__pk_global_text(u);                                     /* GLOBAL */
    case 0x93: return aur__pk_stack_global(u);                                   /* STACK_GLOBAL */
    case 'q': if (!(b = aur__pk_take(u, 1))) return AUR_EFORMAT; return aur__pk_memo_put(u, b[0]);                /* BINPUT */
    case 'r': if (!(b = aur__pk_take(u, 4))) return AUR_EFORMAT; return aur__pk_memo_put(u, aur__pk_le(b, 4));    /* LONG_BINPUT */
    case 0x94: return aur__pk_memo_put(u, (uint64_t)u->memo_entries);            /* MEMOIZE: at len(memo), as Python */
    case 'h': if (!(b = aur__pk_take(u, 1))) return AUR_EFORMAT; return aur__pk_memo_get(u, b[0]);                /* BINGET */
    case 'j': if (!(b = aur__pk_take(u, 4))) return AUR_EFORMAT; return aur__pk_memo_get(u, aur__pk_le(b, 4));    /* LONG_BINGET */
    case 't': {                                                                  /* TUPLE */
        aur__pk *t = aur__pk_new(u, AUR__PK_TUPLE);
        int rc = t ? aur__pk_collect(u, t) : AUR_ENOMEM;
        return rc ? rc : aur__pk_push(u, t);
    }
    case 0x85: case 0x86: case 0x87: return aur__pk_tuple_of(u, *b - 0x84);     /* TUPLE1, 2, 3 */
    case 's': return aur__pk_extend(u, 1, 1);                                    /* SETITEM */
    case 'u': return aur__pk_extend(u, 1, 0);                                    /* SETITEMS */
    case 'a': return aur__pk_extend(u, 0, 1);                                    /* APPEND */
    case 'e': return aur__pk_extend(u, 0, 0);                                    /* APPENDS */
    case 'R': return aur__pk_reduce(u);                                          /* REDUCE */
    case 'Q': return aur__pk_persid(u);                                          /* BINPERSID */
    case 'b': return aur__pk_build(u);                                           /* BUILD */
    case '.': return 1;                                                          /* STOP */
    default: {
        char what[80];
        snprintf(what, sizeof what, "opcode 0x%02x is not one a state dict needs", *b);
        return aur__pk_bad(u, what);
    }
    }
}

/* Runs a pickle to STOP; *root is the one value left. */
static int aur__unpickle(aur__unpickler *u, const unsigned char *data, size_t n, const char *path, aur__pk **root)
{
    memset(u, 0, sizeof *u);
    u->p = data, u->end = data + n, u->path = path;
    int rc = 0;
    while (!rc) rc = aur__pk_step(u);
    if (rc < 0) return rc;
    if (u->sp != 1 || u->n_marks) return aur__pk_bad(u, "STOP with other than one value on the stack");
    *root = u->stack[0];
    return 0;
}

/* The dict of tensors: the object itself, or its "state_dict" / "model" / "model_state_dict" entry (Lightning's, common scripts'). */
static const aur__pk *aur__pk_state_dict(const aur__pk *root)
{
    static const char *const keys[] = {"state_dict", "model_state_dict", "model", NULL};
    if (root->kind != AUR__PK_DICT) return NULL;
    for (int k = 0; keys[k]; k++)
        for (int i = 0; i + 1 < root->n; i += 2)
            if (root->v[i]->kind == AUR__PK_STR && !strcmp(root->v[i]->s, keys[k]) && root->v[i + 1]->kind == AUR__PK_DICT) return root->v[i + 1];
    return root;
}

/* ---- the zip archive: storages as one run of bytes ----
   Storage k's bytes sit at [base_k, base_k + size_k) of a virtual data section,
   so a tensor's begin/end are offsets as a safetensors file's are. */
typedef struct aur__torch_entry {
    zip_int64_t index;
    uint64_t base, size;
    char key[64];
    const char *dtype; /* as its persistent id names it */
    int64_t numel;
} aur__torch_entry;

typedef struct aur__torch_zip {
    zip_t *z;
    aur__torch_entry *e;
    int n, cap;
    char prefix[256];
} aur__torch_zip;

static int aur__torch_elem(const char *dtype) { return aur__st_dtype_find(dtype)->bits / 8; }

/* The entry of a storage key (added on first use). */
static int aur__torch_storage(const aur_st_file *f, aur__torch_zip *tz, const aur__pk *s, const aur__torch_entry **out)
{
    for (int k = 0; k < tz->n; k++)
        if (!strcmp(tz->e[k].key, s->s)) {
            if (strcmp(tz->e[k].dtype, s->dtype) || tz->e[k].numel != s->i)
                return aur__err(AUR_EFORMAT, "%s: storage '%s' is named as %lld %s and as %lld %s elements", f->path, s->s, (long long)tz->e[k].numel,
                                tz->e[k].dtype, (long long)s->i, s->dtype);
            return *out = &tz->e[k], 0;
        }
    char name[512];
    snprintf(name, sizeof name, "%s/data/%.60s", tz->prefix, s->s);
    zip_int64_t idx = zip_name_locate(tz->z, name, 0);
    zip_stat_t st;
    if (strlen(s->s) >= 60 || idx < 0 || zip_stat_index(tz->z, (zip_uint64_t)idx, 0, &st) || !(st.valid & ZIP_STAT_SIZE))
        return aur__err(AUR_EFORMAT, "%s: storage '%s' is not in the archive (%s)", f->path, s->s, name);
    if ((uint64_t)s->i > st.size / (uint64_t)aur__torch_elem(s->dtype) || st.size != (uint64_t)s->i * (uint64_t)aur__torch_elem(s->dtype))
        return aur__err(AUR_EFORMAT, "%s: storage '%s' holds %llu bytes, but its %lld %s elements need %llu", f->path, s->s,
                        (unsigned long long)st.size, (long long)s->i, s->dtype, (unsigned long long)((uint64_t)s->i * (uint64_t)aur__torch_elem(s->dtype)));
    if (aur__grow((void **)&tz->e, &tz->cap, tz->n + 1, sizeof *tz->e)) return AUR_ENOMEM;
    aur__torch_entry *e = &tz->e[tz->n];
    e->index = idx, e->size = st.size, e->base = tz->n ? tz->e[tz->n - 1].base + tz->e[tz->n - 1].size : 0;
    snprintf(e->key, sizeof e->key, "%s", s->s);
    e->dtype = s->dtype, e->numel = s->i;
    *out = &tz->e[tz->n++];
    return 0;
}

/* A state dict entry as a table entry: contiguous, inside its storage. */
static int aur__torch_tensor(aur_st_file *f, aur__torch_zip *tz, const char *name, const aur__pk *t, aur_st_tensor *out)
{
    const aur__torch_entry *e = NULL;
    int rc = aur__torch_storage(f, tz, t->storage, &e);
    if (rc) return rc;
    int64_t numel = 1, expect = 1, span = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] > ((int64_t)1 << 48) || (t->shape[d] && span > INT64_MAX / t->shape[d]))
            return aur__err(AUR_EFORMAT, "%s: tensor '%s' has too many elements", f->path, name);
        span *= t->shape[d] ? t->shape[d] : 1, numel *= t->shape[d];
    }
    for (int d = t->ndim - 1; d >= 0 && numel; d--) { /* an empty tensor's strides say nothing */
        if (t->shape[d] > 1 && t->stride[d] != expect)
            return aur__err(AUR_EUNSUPPORTED, "%s: tensor '%s' is a non-contiguous view (strides); save tensor.contiguous() instead", f->path, name);
        expect *= t->shape[d];
    }
    if (t->offset > t->storage->i || numel > t->storage->i - t->offset)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s' (%lld elements from %lld) runs past its storage of %lld", f->path, name, (long long)numel,
                        (long long)t->offset, (long long)t->storage->i);
    memset(out, 0, sizeof *out);
    if (!(out->name = aur__strdup(name))) return AUR_ENOMEM;
    snprintf(out->dtype, sizeof out->dtype, "%s", t->storage->dtype);
    out->ndim = t->ndim, out->numel = numel;
    memcpy(out->shape, t->shape, sizeof t->shape);
    int elem = aur__torch_elem(t->storage->dtype);
    out->begin = e->base + (uint64_t)t->offset * (uint64_t)elem, out->end = out->begin + (uint64_t)numel * (uint64_t)elem;
    return 0;
}

/* The table of the state dict's tensors (non-tensor entries, such as a checkpoint's epoch, are not tensors of it). */
static int aur__torch_table(aur_st_file *f, aur__torch_zip *tz, const aur__pk *root)
{
    const aur__pk *sd = aur__pk_state_dict(root);
    if (!sd) return aur__err(AUR_EFORMAT, "%s: the checkpoint holds no dict of tensors", f->path);
    f->tensors = (aur_st_tensor *)aur__calloc(sizeof *f->tensors * (size_t)(sd->n / 2 + 1), "a checkpoint's table");
    if (!f->tensors) return AUR_ENOMEM;
    int rc = 0;
    for (int i = 0; i + 1 < sd->n && !rc; i += 2) {
        if (sd->v[i + 1]->kind != AUR__PK_TENSOR) continue;
        if (sd->v[i]->kind != AUR__PK_STR || (int64_t)strlen(sd->v[i]->s) != sd->v[i]->i)
            return aur__err(AUR_EFORMAT, "%s: a state dict key is not a string (or holds a NUL byte)", f->path);
        rc = aur__torch_tensor(f, tz, sd->v[i]->s, sd->v[i + 1], &f->tensors[f->n]);
        if (!rc) f->n++;
    }
    if (!rc && !f->n) rc = aur__err(AUR_EFORMAT, "%s: the checkpoint's dict holds no tensors", f->path);
    if (rc) return rc;
    qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, aur__st_cmp_name);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, f->tensors[i - 1].name)) return aur__err(AUR_EFORMAT, "%s: tensor '%s' twice", f->path, f->tensors[i].name);
    f->buffer_size = tz->n ? tz->e[tz->n - 1].base + tz->e[tz->n - 1].size : 0;
    return 0;
}

/* <prefix>/byteorder says "little" (or is absent: torch before 1.12 wrote little-endian only). */
static int aur__torch_byteorder(const aur_st_file *f, const aur__torch_zip *tz)
{
    char name[300], order[16] = "";
    snprintf(name, sizeof name, "%s/byteorder", tz->prefix);
    zip_int64_t idx = zip_name_locate(tz->z, name, 0);
    if (idx < 0) return 0;
    zip_file_t *zf = zip_fopen_index(tz->z, (zip_uint64_t)idx, 0);
    zip_int64_t got = zf ? zip_fread(zf, order, sizeof order - 1) : -1;
    if (zf) zip_fclose(zf);
    if (got < 0 || strncmp(order, "little", 6))
        return aur__err(AUR_EUNSUPPORTED, "%s: the storages are not little-endian (byteorder '%.8s')", f->path, got > 0 ? order : "?");
    return 0;
}

/* <prefix>/data.pkl, whole: the archive's one pickle. */
static int aur__torch_pickle(aur_st_file *f, aur__torch_zip *tz, unsigned char **data, size_t *n)
{
    zip_int64_t count = zip_get_num_entries(tz->z, 0), found = -1;
    for (zip_int64_t i = 0; i < count; i++) {
        const char *name = zip_get_name(tz->z, (zip_uint64_t)i, 0);
        size_t len = name ? strlen(name) : 0;
        if (len > 9 && len - 9 < sizeof tz->prefix && !strcmp(name + len - 9, "/data.pkl") && memchr(name, '/', len - 9) == NULL) {
            if (found >= 0) return aur__err(AUR_EFORMAT, "%s: more than one data.pkl in the archive", f->path);
            found = i;
            memcpy(tz->prefix, name, len - 9), tz->prefix[len - 9] = 0;
        }
    }
    zip_stat_t st;
    if (found < 0) return aur__err(AUR_EFORMAT, "%s: a zip archive without <name>/data.pkl: not a torch.save checkpoint", f->path);
    int rc = aur__torch_byteorder(f, tz);
    if (rc) return rc;
    if (zip_stat_index(tz->z, (zip_uint64_t)found, 0, &st) || st.size > AUR__PK_MAX_BYTES)
        return aur__err(AUR_EFORMAT, "%s: data.pkl of %llu bytes", f->path, (unsigned long long)st.size);
    *n = (size_t)st.size;
    *data = (unsigned char *)aur__malloc(*n ? *n : 1, "a checkpoint's pickle");
    zip_file_t *zf = *data ? zip_fopen_index(tz->z, (zip_uint64_t)found, 0) : NULL;
    zip_int64_t got = zf ? zip_fread(zf, *data, *n) : -1;
    if (zf) zip_fclose(zf);
    if (got != (zip_int64_t)*n) return aur__err(AUR_EFORMAT, "%s: cannot read data.pkl: %s", f->path, zip_strerror(tz->z));
    return 0;
}

static int aur__torch_open(aur_st_file *f)
{
    int err = 0;
    aur__torch_zip *tz = (aur__torch_zip *)aur__calloc(sizeof *tz, "a checkpoint archive");
    if (!tz) return AUR_ENOMEM;
    f->torch = tz;
    if (!(tz->z = zip_open(f->path, ZIP_RDONLY | ZIP_CHECKCONS, &err))) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        int rc = aur__err(AUR_EFORMAT, "%s: not a readable zip archive (a cut-short checkpoint?): %s", f->path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rc;
    }
    unsigned char *pickle = NULL;
    size_t n = 0;
    aur__unpickler u;
    aur__pk *root = NULL;
    int rc = aur__torch_pickle(f, tz, &pickle, &n);
    if (!rc) rc = aur__unpickle(&u, pickle, n, f->path, &root);
    else memset(&u, 0, sizeof u);
    if (!rc) rc = aur__torch_table(f, tz, root);
    aur__pk_free_all(&u);
    AUR_FREE(pickle);
    return rc;
}

/* n bytes at offset `at` of the virtual data section: from the one storage they lie in. */
static int aur__torch_bytes(const aur_st_file *f, uint64_t at, void *dst, size_t n)
{
    const aur__torch_zip *tz = (const aur__torch_zip *)f->torch;
    int lo = 0, hi = tz->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (tz->e[mid].base <= at) lo = mid;
        else hi = mid - 1;
    }
    const aur__torch_entry *e = &tz->e[lo];
    zip_file_t *zf = zip_fopen_index(tz->z, (zip_uint64_t)e->index, 0);
    if (!zf) return aur__err(AUR_EIO, "%s: cannot read storage '%s': %s", f->path, e->key, zip_strerror(tz->z));
    uint64_t skip = at - e->base;
    int rc = 0;
    if (skip && zip_fseek(zf, (zip_int64_t)skip, SEEK_SET)) { /* compressed: read up to it, on a fresh handle (a failed seek sticks) */
        zip_fclose(zf);
        if (!(zf = zip_fopen_index(tz->z, (zip_uint64_t)e->index, 0)))
            return aur__err(AUR_EIO, "%s: cannot read storage '%s': %s", f->path, e->key, zip_strerror(tz->z));
        unsigned char buf[65536];
        for (uint64_t left = skip; left && !rc;) {
            zip_int64_t r = zip_fread(zf, buf, left < sizeof buf ? left : sizeof buf);
            if (r <= 0) rc = AUR_EIO;
            else left -= (uint64_t)r;
        }
    }
    if (!rc && zip_fread(zf, dst, n) != (zip_int64_t)n) rc = AUR_EIO;
    zip_fclose(zf);
    return rc ? aur__err(AUR_EIO, "%s: storage '%s' ends early (was the file cut short?)", f->path, e->key) : 0;
}

static void aur__torch_close(aur_st_file *f)
{
    aur__torch_zip *tz = (aur__torch_zip *)f->torch;
    if (!tz) return;
    if (tz->z) zip_discard(tz->z);
    AUR_FREE(tz->e);
    AUR_FREE(tz);
    f->torch = NULL;
}

#else /* built without libzip */

static int aur__torch_open(aur_st_file *f)
{
    return aur__err(AUR_EUNSUPPORTED, "%s: a zip archive (a PyTorch checkpoint?): reading those needs the implementation compiled with "
                    "-DAUR_TORCH_CKPT and linked with -lzip (Debian: libzip-dev); or convert it with tools/ckpt_to_safetensors.py", f->path);
}
static int aur__torch_bytes(const aur_st_file *f, uint64_t at, void *dst, size_t n)
{
    (void)at, (void)dst, (void)n;
    return aur__err(AUR_EUNSUPPORTED, "%s: no PyTorch checkpoint reader in this build", f->path);
}
static void aur__torch_close(aur_st_file *f) { (void)f; }
#endif

/* ==== calendar: proleptic Gregorian dates ====
   Times in data files (CF "hours since 1900-01-01", the SDO index's
   timestamps) become Unix time here, as numpy's datetime64 counts them. */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
AUR__MAYBE_UNUSED static int64_t aur__days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1, doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* A time as pandas prints it ("2014-01-07 15:00:00"), for messages. */
AUR__MAYBE_UNUSED static const char *aur__format_time(int64_t ns, char *buf, size_t size)
{
    int64_t s = ns / 1000000000LL - (ns % 1000000000LL < 0), days = s / 86400 - (s % 86400 < 0), rest = s - days * 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097; /* Hinnant's civil_from_days */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
    snprintf(buf, size, "%04lld-%02d-%02d %02d:%02d:%02d", (long long)(yoe + era * 400 + (m <= 2)) % 100000, m % 100, d % 100,
             (int)(rest / 3600) % 100, (int)(rest / 60 % 60), (int)(rest % 60));
    return buf;
}

/* ==== NetCDF variables as xarray decodes them ====
   Weather files (aurora.h) and SDO files (surya.h) are read with libnetcdf
   (HDF5, the HDF5 filter plugins, and NCZarr for Zarr stores). xarray's
   CF decoding (xarray/coding/variables.py) decides what the Python stack
   sees: fill values become NaN, packed integers are unpacked with
   scale_factor and add_offset, each in the dtype xarray chooses. The
   helpers here reproduce that, value for value. */

#ifdef AUR_NETCDF
#include <dlfcn.h>
#include <netcdf.h>
#include <netcdf_filter.h>

/* Debian's HDF5 is built thread-safe, so its switch for printing error
   stacks is per thread, and libnetcdf turns it off only on the thread that
   first opened a file: on any other (a loader's), every attribute libnetcdf
   looks for and does not find prints an HDF5-DIAG trace. This turns it off
   on the calling thread, once. HDF5 is already loaded with libnetcdf, so
   its H5Eset_auto2 (herr_t (hid_t stack, H5E_auto2_t func, void *data);
   hid_t is 64-bit) is looked up rather than linked. */
static void aur__nc_quiet_thread(void)
{
    static AUR__TLS int done;
    if (done) return;
    done = 1;
    typedef int (*set_auto_fn)(int64_t, void *, void *);
    set_auto_fn set_auto;
    void *sym = dlsym(RTLD_DEFAULT, "H5Eset_auto2");
    memcpy(&set_auto, &sym, sizeof set_auto); /* a data pointer to a function pointer, as POSIX dlsym allows */
    if (set_auto) set_auto(0 /* H5E_DEFAULT */, NULL, NULL);
}

/* What a variable's values become in numpy (xarray's decoding). */
enum { AUR__DT_SMALLINT = 1, AUR__DT_BIGINT = 2, AUR__DT_F32 = 3, AUR__DT_F64 = 4 };

typedef struct aur__cf_var {
    int id, dtype, nfill;
    nc_type type;
    size_t H, W;                   /* a 2-D variable's sizes (SDO channels) */
    double scale, offset, fill[4]; /* fill: _FillValue and missing_value, as raw values */
    int has_scale, has_offset;
} aur__cf_var;

static int aur__nc_err(int status, const char *path, const char *what)
{
    return aur__err(status == NC_ENOMEM ? AUR_ENOMEM : AUR_EFORMAT, "%s: %s: %s", path, what, nc_strerror(status));
}

static int aur__nc_is_int(nc_type t) { return t != NC_FLOAT && t != NC_DOUBLE; }
static int aur__nc_size(nc_type t)
{
    return t == NC_BYTE || t == NC_UBYTE ? 1 : t == NC_SHORT || t == NC_USHORT ? 2 : t == NC_INT || t == NC_UINT || t == NC_FLOAT ? 4 : 8;
}
static int aur__nc_numeric(nc_type t) { return t >= NC_BYTE && t <= NC_UINT64 && t != NC_CHAR; }

/* A numeric attribute's values, at most max of them (*len how many); *type its type (NC_NAT if absent). */
static int aur__nc_att(int nc, int id, const char *name, double *v, size_t max, size_t *len, nc_type *type)
{
    *type = NC_NAT, *len = 0;
    if (nc_inq_att(nc, id, name, type, len) != NC_NOERR) return *type = NC_NAT, *len = 0, 0;
    if (*type == NC_CHAR || *type == NC_STRING || *len < 1 || *len > max) return AUR_EFORMAT;
    return nc_get_att_double(nc, id, name, v) == NC_NOERR ? 0 : AUR_EFORMAT;
}

/* A text attribute into buf ("" if absent or not text). */
static const char *aur__nc_text_att(int nc, int id, const char *name, char *buf, size_t size)
{
    nc_type t;
    size_t len;
    buf[0] = 0;
    if (nc_inq_att(nc, id, name, &t, &len) != NC_NOERR) return buf;
    if (t == NC_CHAR && len < size) {
        if (nc_get_att_text(nc, id, name, buf) == NC_NOERR) buf[len] = 0;
        else buf[0] = 0;
    } else if (t == NC_STRING && len == 1) {
        char *s = NULL;
        if (nc_get_att_string(nc, id, name, &s) == NC_NOERR && s) snprintf(buf, size, "%s", s);
        if (s) nc_free_string(1, &s);
    }
    return buf;
}

/* xarray's dtype for a variable: with a scale or an offset, _choose_float_dtype
   of the stored type: the scale's float type (float64 for a 4-byte integer,
   or a lone offset); else CFMaskCoder promotes masked integers to float (32
   bits for 1-2 byte ones); else the stored type. */
static int aur__cf_dtype(const aur__cf_var *v, nc_type scale_type, nc_type offset_type)
{
    int is_int = aur__nc_is_int(v->type), size = aur__nc_size(v->type);
    int masked = is_int && v->nfill ? (size <= 2 ? AUR__DT_F32 : AUR__DT_F64) : 0;
    if (v->has_scale || v->has_offset) {
        if (v->has_scale && v->has_offset && scale_type == offset_type)
            return is_int && size == 4 ? AUR__DT_F64 : scale_type == NC_FLOAT ? AUR__DT_F32 : AUR__DT_F64;
        if (v->has_offset) return AUR__DT_F64;
        return scale_type == NC_FLOAT ? AUR__DT_F32 : AUR__DT_F64;
    }
    if (masked) return masked;
    if (!is_int) return v->type == NC_FLOAT ? AUR__DT_F32 : AUR__DT_F64;
    return size <= 2 ? AUR__DT_SMALLINT : AUR__DT_BIGINT;
}

/* The filters a variable was written with must be installed (HDF5 filter plugins). */
static int aur__nc_filters(int nc, int id, const char *path, const char *name)
{
    unsigned ids[16];
    size_t n = 0;
    if (nc_inq_var_filter_ids(nc, id, &n, NULL) != NC_NOERR || n > 16 || nc_inq_var_filter_ids(nc, id, &n, ids) != NC_NOERR)
        return aur__err(AUR_EFORMAT, "%s: variable '%s': cannot list its HDF5 filters (or more than 16)", path, name);
    for (size_t k = 0; k < n; k++)
        if (nc_inq_filter_avail(nc, ids[k]) != NC_NOERR)
            return aur__err(AUR_EUNSUPPORTED, "%s: variable '%s' is compressed with HDF5 filter %u, which is not installed (Debian: "
                            "hdf5-filter-plugin, hdf5-filter-plugin-blosc-serial; or point HDF5_PLUGIN_PATH at hdf5plugin's plugins)",
                            path, name, ids[k]);
    return 0;
}

/* A numeric variable's CF attributes (fill values, packing) and decoded dtype; v->id and v->type set first. */
static int aur__cf_attributes(int nc, const char *path, const char *name, aur__cf_var *v)
{
    static const char *const fills[] = {"_FillValue", "missing_value"};
    nc_type scale_type, offset_type, t;
    size_t len;
    for (int k = 0; k < 2; k++) { /* CF allows a list of missing values */
        if (aur__nc_att(nc, v->id, fills[k], v->fill + v->nfill, 4 - (size_t)v->nfill, &len, &t))
            return aur__err(AUR_EFORMAT, "%s: variable '%s': attribute %s is not 1 to %d numbers", path, name, fills[k], 4 - v->nfill);
        v->nfill += (int)len;
    }
    int bad = aur__nc_att(nc, v->id, "scale_factor", &v->scale, 1, &len, &scale_type);
    bad = bad || aur__nc_att(nc, v->id, "add_offset", &v->offset, 1, &len, &offset_type);
    if (bad || (scale_type != NC_NAT && scale_type != NC_FLOAT && scale_type != NC_DOUBLE) ||
        (offset_type != NC_NAT && offset_type != NC_FLOAT && offset_type != NC_DOUBLE))
        return aur__err(AUR_EUNSUPPORTED, "%s: variable '%s': scale_factor and add_offset must be one float or double number each", path, name);
    if (nc_inq_att(nc, v->id, "_Unsigned", &t, &len) == NC_NOERR)
        return aur__err(AUR_EUNSUPPORTED, "%s: variable '%s' has the _Unsigned attribute; store it as an unsigned type instead", path, name);
    v->has_scale = scale_type != NC_NAT, v->has_offset = offset_type != NC_NAT;
    v->dtype = aur__cf_dtype(v, scale_type, offset_type);
    return aur__nc_filters(nc, v->id, path, name);
}

/* numpy's float32 / float64 rounding of a result (f32: round to float). */
static double aur__rnd(double x, int f32) { return f32 ? (double)(float)x : x; }

/* Values as xarray decodes them: fill values to NaN, then * scale_factor + add_offset,
   rounded to the decoded dtype. */
static void aur__cf_decode(const aur__cf_var *v, double *x, size_t n)
{
    int f32 = v->dtype == AUR__DT_F32;
    if (!v->has_scale && !v->has_offset) { /* float data (the newer stores'): fill values and the rounding only */
        for (size_t i = 0; i < n; i++) {
            int fill = 0;
            for (int k = 0; k < v->nfill; k++) fill |= x[i] == v->fill[k];
            x[i] = fill ? NAN : aur__rnd(x[i], f32);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int fill = 0;
        for (int k = 0; k < v->nfill; k++) fill |= x[i] == v->fill[k];
        /* volatile: numpy multiplies, rounds, then adds; a fused multiply-add (-ffp-contract) would not round between */
        volatile double y = fill ? NAN : aur__rnd(x[i], f32);
        if (v->has_scale) y = aur__rnd(y * aur__rnd(v->scale, f32), f32);
        if (v->has_offset) y = aur__rnd(y + aur__rnd(v->offset, f32), f32);
        x[i] = y;
    }
}
#endif

/* ==== models: the parameter table ==== */

struct aur_model {
    aur_tensor **params; /* in declaration order (the state_dict order) */
    int n, cap;
    aur__names index;    /* name -> params slot */
    aur_device device;
    int allocated;
    void *slab;          /* every parameter and buffer */
    size_t slab_bytes;
    aur_real *grad_slab; /* gradients of the trainable parameters */
    size_t grad_bytes;
    void *impl;          /* the concrete model (Aurora, Surya) built on this table, or NULL */
    void (*impl_free)(void *impl);
    struct aur__adapter *adapters; /* LoRA adapters by module (lora.h declares them) */
    int n_adapters, cap_adapters;
    double *reduce;      /* on a GPU: the deterministic norms' scratch (AUR__REDUCE_SLOTS + 1 + n doubles) */
    double *norms;       /* host: one gradient norm per parameter (clipping allocates nothing per step) */
    struct aur__mirror *mirrors; /* on a GPU: copies of the implementation's constant host tables */
    int n_mirrors, cap_mirrors;
};

/* A constant host table (index table, mask, DFT matrix) the model keeps for its
   lifetime, and its copy on the model's GPU, made once. */
typedef struct aur__mirror {
    const void *host;
    size_t bytes;
    void *dev;
} aur__mirror;

/* A LoRA adapter on the linear module `module`: y += scaling (dropout(x) A^T) B^T. */
typedef struct aur__adapter {
    char *module;
    aur_tensor *A, *B; /* "{module}.lora_A.default.weight" (r, in), "...lora_B..." (out, r) */
    double scaling, dropout;
    int merged;        /* folded into the base weight: the forward skips it */
} aur__adapter;

static const char *aur__param_name(const void *m, int k) { return ((const aur_model *)m)->params[k]->name; }

static int aur__index_find(const aur_model *m, const char *name) { return aur__names_find(&m->index, name, aur__param_name, m); }

AURDEF aur_model *aur_model_create(void) { return (aur_model *)aur__calloc(sizeof(aur_model), "a model"); }

AURDEF void aur_model_free(aur_model *m)
{
    if (!m) return;
    if (m->impl_free) m->impl_free(m->impl);
    for (int i = 0; i < m->n; i++) {
        AUR_FREE((char *)m->params[i]->name);
        AUR_FREE(m->params[i]);
    }
    aur__dev_free(m->device, m->slab);
    aur__dev_free(m->device, m->grad_slab);
    aur__dev_free(m->device, m->reduce);
    AUR_FREE(m->norms);
    for (int i = 0; i < m->n_mirrors; i++) aur__dev_free(m->device, m->mirrors[i].dev);
    AUR_FREE(m->mirrors);
    for (int i = 0; i < m->n_adapters; i++) AUR_FREE(m->adapters[i].module);
    AUR_FREE(m->adapters);
    AUR_FREE(m->params);
    AUR_FREE(m->index.slot);
    AUR_FREE(m);
}

AURDEF aur_tensor *aur_model_add(aur_model *m, const char *name, aur_shape shape, int is_buffer)
{
    if (m->allocated) {
        aur__err(AUR_EINVAL, "aur_model_add '%s': declare every parameter before aur_model_alloc", name);
        return NULL;
    }
    if (aur__shape_ok(shape, name)) return NULL;
    if (aur__index_find(m, name) >= 0) {
        aur__err(AUR_EINVAL, "aur_model_add: parameter '%s' is declared twice", name);
        return NULL;
    }
    if (aur__grow((void **)&m->params, &m->cap, m->n + 1, sizeof(aur_tensor *))) return NULL;
    aur_tensor *t = (aur_tensor *)aur__malloc(sizeof *t, "a parameter");
    char *nm = aur__strdup(name);
    if (!t || !nm) {
        AUR_FREE(t);
        AUR_FREE(nm);
        return NULL;
    }
    aur__tensor_init(t, AUR_F32, AUR_CPU, shape);
    t->name = nm;
    t->model = m;
    t->is_buffer = is_buffer != 0;
    t->requires_grad = !is_buffer;
    m->params[m->n] = t;
    if (aur__names_add(&m->index, m->n, aur__param_name, m)) {
        AUR_FREE(nm);
        AUR_FREE(t);
        return NULL;
    }
    m->n++;
    return t;
}

static size_t aur__slot_bytes(const aur_tensor *t) { return aur__align((size_t)t->numel * sizeof(aur_real)); }

/* (Re)builds the gradient slab for the parameters trainable now. */
static int aur__model_grads(aur_model *m)
{
    size_t total = 0, off = 0;
    for (int i = 0; i < m->n; i++)
        if (m->params[i]->requires_grad) total += aur__slot_bytes(m->params[i]);
    aur__dev_free(m->device, m->grad_slab);
    m->grad_slab = NULL;
    m->grad_bytes = 0;
    if (total) {
        m->grad_slab = (aur_real *)aur__dev_alloc(m->device, total, "the gradient slab");
        if (!m->grad_slab || aur__zero_bytes(m->grad_slab, m->device, total)) return AUR_ENOMEM;
        m->grad_bytes = total;
    }
    for (int i = 0; i < m->n; i++) {
        aur_tensor *t = m->params[i];
        t->grad = t->requires_grad ? (aur_real *)((char *)m->grad_slab + off) : NULL;
        t->grad_written = 0;
        if (t->requires_grad) off += aur__slot_bytes(t);
    }
    return 0;
}

AURDEF int aur_model_alloc(aur_model *m, aur_device device)
{
    if (m->allocated) return aur__err(AUR_EINVAL, "aur_model_alloc: already allocated");
    size_t total = 0, off = 0;
    for (int i = 0; i < m->n; i++) total += aur__slot_bytes(m->params[i]);
    m->device = device;
    m->slab = aur__dev_alloc(device, total, "the parameter slab");
    if (!m->slab || aur__zero_bytes(m->slab, device, total)) return AUR_ENOMEM;
    if (!(m->norms = (double *)aur__malloc(sizeof(double) * (size_t)(m->n + 1), "gradient norms"))) return AUR_ENOMEM;
    size_t reduce = sizeof(double) * (size_t)(AUR__REDUCE_SLOTS + 1 + m->n); /* partial sums, a result, one per parameter */
    if (device != AUR_CPU && !(m->reduce = (double *)aur__dev_alloc(device, reduce, "norm scratch"))) return AUR_ENOMEM;
    m->slab_bytes = total;
    for (int i = 0; i < m->n; i++) {
        m->params[i]->data = (char *)m->slab + off;
        m->params[i]->device = device;
        off += aur__slot_bytes(m->params[i]);
    }
    m->allocated = 1;
    return aur__model_grads(m);
}

AURDEF int aur_model_add_adapter(aur_model *m, const char *module, int r, double scaling, double dropout)
{
    char name[512];
    snprintf(name, sizeof name, "%s.weight", module);
    int wi = aur__index_find(m, name);
    const aur_tensor *w = wi < 0 ? NULL : m->params[wi];
    if (!w || (w->ndim != 2 && w->ndim != 4) || r < 1)
        return aur__err(AUR_EINVAL, "LoRA on '%s': not a Linear or Conv2d module (no 2-D or 4-D %s) or rank %d < 1", module, name, r);
    /* PEFT's shapes: Linear A (r, in), B (out, r); Conv2d A (r, in, kh, kw) (a convolution like the base's), B (out, r, 1, 1) */
    int64_t out = w->shape[0], in = w->shape[1];
    aur_shape a_shape = w->ndim == 4 ? aur_shape4(r, in, w->shape[2], w->shape[3]) : aur_shape2(r, in);
    aur_shape b_shape = w->ndim == 4 ? aur_shape4(out, r, 1, 1) : aur_shape2(out, r);
    if (aur__grow((void **)&m->adapters, &m->cap_adapters, m->n_adapters + 1, sizeof(aur__adapter))) return AUR_ENOMEM;
    aur__adapter *a = &m->adapters[m->n_adapters];
    memset(a, 0, sizeof *a);
    snprintf(name, sizeof name, "%s.lora_A.default.weight", module);
    a->A = aur_model_add(m, name, a_shape, 0);
    snprintf(name, sizeof name, "%s.lora_B.default.weight", module);
    a->B = a->A ? aur_model_add(m, name, b_shape, 0) : NULL;
    a->module = a->B ? aur__strdup(module) : NULL;
    if (!a->module) return a->B ? AUR_ENOMEM : AUR_EINVAL;
    a->scaling = scaling;
    a->dropout = dropout;
    m->n_adapters++;
    return 0;
}

static const aur__adapter *aur__find_adapter(const aur_model *m, const char *module)
{
    for (int i = 0; i < m->n_adapters; i++)
        if (!strcmp(m->adapters[i].module, module)) return &m->adapters[i];
    return NULL;
}

/* A Conv2d weight (out, in, kh, kw) as the matrix (out, in kh kw) of its
   product with flattened patches; a Linear weight as it is. */
static aur_tensor *aur__as_matrix(aur_tape *t, aur_tensor *w)
{
    return w->ndim == 2 ? w : aur_reshape(t, w, aur_shape2(w->shape[0], w->numel / w->shape[0]));
}

AURDEF aur_tensor *aur_model_linear(aur_tape *t, const aur_model *m, const char *module, aur_tensor *x, int bias)
{
    char name[512];
    snprintf(name, sizeof name, "%s.weight", module);
    aur_tensor *w = aur_model_param(m, name), *b = NULL;
    if (bias) snprintf(name, sizeof name, "%s.bias", module), b = aur_model_param(m, name);
    if (!w || (bias && !b)) return NULL;
    aur_tensor *y = aur_linear(t, x, aur__as_matrix(t, w), b);
    const aur__adapter *a = m->n_adapters ? aur__find_adapter(m, module) : NULL;
    if (!a || a->merged) return y;
    /* PEFT's order: the base result, then + lora_B(lora_A(dropout(x))) * scaling */
    aur_tensor *low = aur_linear(t, aur_linear(t, aur_dropout(t, x, a->dropout), aur__as_matrix(t, a->A), NULL), aur__as_matrix(t, a->B), NULL);
    return aur_add(t, y, aur_scale(t, low, a->scaling));
}

AURDEF int aur_model_count(const aur_model *m) { return m->n; }
AURDEF aur_tensor *aur_model_at(const aur_model *m, int i) { return i >= 0 && i < m->n ? m->params[i] : NULL; }

AURDEF aur_tensor *aur_model_param(const aur_model *m, const char *name)
{
    int i = aur__index_find(m, name);
    if (i < 0) {
        aur__err(AUR_EINVAL, "no parameter named '%s'", name);
        return NULL;
    }
    return m->params[i];
}

/* aur_model_param with a printf-style name (the models' modules look their weights up this way). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static aur_tensor *aur__paramf(const aur_model *m, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return aur_model_param(m, name);
}

AURDEF int64_t aur_model_numel(const aur_model *m, int trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < m->n; i++)
        if (!m->params[i]->is_buffer && (!trainable_only || m->params[i]->requires_grad)) n += m->params[i]->numel;
    return n;
}

AURDEF size_t aur_model_bytes(const aur_model *m, size_t *grad_bytes)
{
    if (grad_bytes) *grad_bytes = m->grad_bytes;
    return m->slab_bytes;
}

/* '*' matches any run (dots included), '?' one character. */
static int aur__glob(const char *p, const char *pend, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (p < pend && (*p == '?' || *p == *s)) {
            p++;
            s++;
        } else if (p < pend && *p == '*') {
            star = p++;
            resume = s;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (p < pend && *p == '*') p++;
    return p == pend;
}

AURDEF int aur_name_matches(const char *patterns, const char *name)
{
    const char *p = patterns;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        if (b > a && aur__glob(a, b, name)) return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int aur__set_trainable(aur_model *m, const char *patterns, int trainable)
{
    int count = 0;
    for (int i = 0; i < m->n; i++) {
        aur_tensor *t = m->params[i];
        if (t->is_buffer || !aur_name_matches(patterns, t->name)) continue;
        t->requires_grad = trainable;
        count++;
    }
    if (!count) return aur__err(AUR_EINVAL, "'%s' matches no parameter", patterns);
    if (m->allocated) {
        int rc = aur__model_grads(m);
        if (rc) return rc;
    }
    return count;
}

AURDEF int aur_model_freeze(aur_model *m, const char *patterns) { return aur__set_trainable(m, patterns, 0); }
AURDEF int aur_model_unfreeze(aur_model *m, const char *patterns) { return aur__set_trainable(m, patterns, 1); }

AURDEF void aur_model_zero_grad(aur_model *m)
{
    if (m->grad_slab) aur__zero_bytes(m->grad_slab, m->device, m->grad_bytes);
    for (int i = 0; i < m->n; i++) m->params[i]->grad_written = 0;
}

/* The GPU copy of a constant host table of the model (made on first use,
   freed with the model); on the CPU the table itself. The table must not
   change while the model lives: the models' index tables, masks and DFT
   matrices do not. */
static const void *aur__mirror_of(aur_model *m, const void *host, size_t bytes)
{
    if (m->device == AUR_CPU || !host) return host;
    for (int i = 0; i < m->n_mirrors; i++)
        if (m->mirrors[i].host == host && m->mirrors[i].bytes == bytes) return m->mirrors[i].dev;
    if (aur__grow((void **)&m->mirrors, &m->cap_mirrors, m->n_mirrors + 1, sizeof(aur__mirror))) return NULL;
    void *dev = aur__dev_alloc(m->device, bytes, "a model table on the GPU");
    if (!dev || aur__copy_bytes(dev, m->device, host, AUR_CPU, bytes)) {
        aur__dev_free(m->device, dev);
        return NULL;
    }
    aur__mirror *mr = &m->mirrors[m->n_mirrors++];
    mr->host = host, mr->bytes = bytes, mr->dev = dev;
    return dev;
}

/* aur_gather over one of the model's tables (its GPU copy cached). */
static aur_tensor *aur__model_gather(aur_tape *t, aur_model *m, aur_tensor *x, int64_t nb, int64_t d, const aur_index *ix,
                                     aur_shape out_shape)
{
    const int64_t *tab = (const int64_t *)aur__mirror_of(m, ix->idx, sizeof(int64_t) * (size_t)ix->n_out);
    if (m->device != AUR_CPU && !tab) return NULL;
    return aur__gather(t, x, nb, d, ix, m->device == AUR_CPU ? NULL : tab, out_shape);
}

/* ==== models: loading and saving by name ==== */

static int aur__report_add(char ***list, int *n, const char *s)
{
    char **l = (char **)AUR_REALLOC(*list, sizeof(char *) * (size_t)(*n + 1));
    if (!l) return AUR_ENOMEM;
    *list = l;
    if (!(l[*n] = aur__strdup(s))) return AUR_ENOMEM;
    (*n)++;
    return 0;
}

AURDEF void aur_load_report_free(aur_load_report *r)
{
    if (!r) return;
    char **lists[4] = {r->loaded, r->missing, r->unexpected, r->mismatched};
    int counts[4] = {r->n_loaded, r->n_missing, r->n_unexpected, r->n_mismatched};
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < counts[k]; i++) AUR_FREE(lists[k][i]);
        AUR_FREE(lists[k]);
    }
    memset(r, 0, sizeof *r);
}

AURDEF void aur_load_report_print(const aur_load_report *r, FILE *out)
{
    fprintf(out, "loaded %d, missing %d, unexpected %d, shape mismatches %d\n", r->n_loaded, r->n_missing,
            r->n_unexpected, r->n_mismatched);
    for (int i = 0; i < r->n_missing; i++) fprintf(out, "  missing     %s\n", r->missing[i]);
    for (int i = 0; i < r->n_unexpected; i++) fprintf(out, "  unexpected  %s\n", r->unexpected[i]);
    for (int i = 0; i < r->n_mismatched; i++) fprintf(out, "  mismatched  %s\n", r->mismatched[i]);
}

/* A checkpoint as the loader sees it: entries read from a safetensors file,
   or made in host memory by a compatibility transform (a split fused
   tensor, a padded history). Names are sorted for lookup. */
typedef struct aur__ckpt_entry {
    char *name;
    int ndim;
    int64_t shape[AUR_ST_MAX_DIMS];
    const aur_st_tensor *src; /* read from the file, or */
    float *data;              /* owned host data */
} aur__ckpt_entry;

typedef struct aur__ckpt {
    const aur_st_file *f;
    aur__ckpt_entry *e;
    int n, cap;
} aur__ckpt;

static void aur__ckpt_free(aur__ckpt *ck)
{
    for (int i = 0; i < ck->n; i++) {
        AUR_FREE(ck->e[i].name);
        AUR_FREE(ck->e[i].data);
    }
    AUR_FREE(ck->e);
    memset(ck, 0, sizeof *ck);
}

/* Appends an entry (name copied; data owned from now on). */
static int aur__ckpt_add(aur__ckpt *ck, const char *name, int ndim, const int64_t *shape, const aur_st_tensor *src, float *data)
{
    if (aur__grow((void **)&ck->e, &ck->cap, ck->n + 1, sizeof *ck->e)) {
        AUR_FREE(data);
        return AUR_ENOMEM;
    }
    aur__ckpt_entry *e = &ck->e[ck->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = aur__strdup(name))) {
        AUR_FREE(data);
        return AUR_ENOMEM;
    }
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->src = src;
    e->data = data;
    ck->n++;
    return 0;
}

static int aur__ckpt_cmp(const void *a, const void *b)
{
    return strcmp(((const aur__ckpt_entry *)a)->name, ((const aur__ckpt_entry *)b)->name);
}

static void aur__ckpt_sort(aur__ckpt *ck) { aur__qsort(ck->e, (size_t)ck->n, sizeof *ck->e, aur__ckpt_cmp); }

/* An entry by name (the view must be sorted). */
static aur__ckpt_entry *aur__ckpt_find(const aur__ckpt *ck, const char *name)
{
    aur__ckpt_entry key;
    memset(&key, 0, sizeof key);
    key.name = (char *)name;
    return (aur__ckpt_entry *)bsearch(&key, ck->e, (size_t)ck->n, sizeof key, aur__ckpt_cmp);
}

static int aur__ckpt_from_file(const aur_st_file *f, aur__ckpt *ck)
{
    memset(ck, 0, sizeof *ck);
    ck->f = f;
    int rc = 0;
    for (int i = 0; i < f->n && !rc; i++)
        rc = aur__ckpt_add(ck, f->tensors[i].name, f->tensors[i].ndim, f->tensors[i].shape, &f->tensors[i], NULL);
    aur__ckpt_sort(ck);
    return rc;
}

static int64_t aur__ckpt_numel(const aur__ckpt_entry *e)
{
    int64_t n = 1;
    for (int i = 0; i < e->ndim; i++) n *= e->shape[i];
    return n;
}

/* The whole entry as host floats (owned by the caller). */
static float *aur__ckpt_read_f32(const aur__ckpt *ck, const aur__ckpt_entry *e)
{
    int64_t n = aur__ckpt_numel(e);
    float *out = (float *)aur__malloc(sizeof(float) * (size_t)(n ? n : 1), "a checkpoint tensor");
    if (!out) return NULL;
    if (e->data) {
        memcpy(out, e->data, sizeof(float) * (size_t)n);
        return out;
    }
    aur_real *v = sizeof(aur_real) == sizeof(float) ? (aur_real *)out : (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(n ? n : 1), "values");
    int rc = v ? aur_st_read(ck->f, e->src, AUR_F32, v) : AUR_ENOMEM;
    for (int64_t i = 0; !rc && (void *)v != (void *)out && i < n; i++) out[i] = (float)v[i];
    if ((void *)v != (void *)out) AUR_FREE(v);
    if (rc) AUR_FREE(out);
    return rc ? NULL : out;
}

static int aur__ckpt_read_into(const aur__ckpt *ck, const aur__ckpt_entry *e, aur_tensor *p)
{
    if (e->src) return aur_st_read_tensor(ck->f, e->src, p);
    aur_real *tmp = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(p->numel ? p->numel : 1), "a staging buffer");
    if (!tmp) return AUR_ENOMEM;
    for (int64_t i = 0; i < p->numel; i++) tmp[i] = (aur_real)e->data[i];
    int rc = aur_tensor_set(p, tmp, p->numel);
    AUR_FREE(tmp);
    return rc;
}

/* Sorts the checkpoint's entries into the report; returns 0 or AUR_ENOMEM. */
static int aur__load_plan(aur_model *m, const aur__ckpt *ck, aur_load_report *r, char *take)
{
    char s1[64], s2[64], line[1024];
    int rc = 0;
    for (int i = 0; i < ck->n && !rc; i++) {
        const aur__ckpt_entry *e = &ck->e[i];
        int k = aur__index_find(m, e->name);
        if (k < 0) {
            rc = aur__report_add(&r->unexpected, &r->n_unexpected, e->name);
            continue;
        }
        const aur_tensor *p = m->params[k];
        int same = e->ndim == p->ndim;
        for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == p->shape[d];
        if (same) {
            take[k] = 1;
            continue;
        }
        snprintf(line, sizeof line, "%s: file %s vs model %s", e->name, aur_shape_str(e->shape, e->ndim, s1, sizeof s1),
                 aur_shape_str(p->shape, p->ndim, s2, sizeof s2));
        take[k] = 2;
        rc = aur__report_add(&r->mismatched, &r->n_mismatched, line);
    }
    for (int k = 0; k < m->n && !rc; k++) /* a shape mismatch also leaves the model's tensor unloaded */
        if (take[k] != 1) rc = aur__report_add(&r->missing, &r->n_missing, m->params[k]->name);
    return rc;
}

static int aur__load_refuse(const char *path, aur_load_mode mode, const aur_load_report *r)
{
    if (r->n_mismatched)
        return aur__err(AUR_ESHAPE, "%s: %d shape mismatches, first %s\n---> HINT: AUR_LOAD_FILTERED loads only where name and shape match",
                        path, r->n_mismatched, r->mismatched[0]);
    if (mode == AUR_LOAD_STRICT && (r->n_missing || r->n_unexpected))
        return aur__err(AUR_EFORMAT, "%s: strict load: %d missing (first '%s'), %d unexpected (first '%s')\n"
                        "---> HINT: AUR_LOAD_NONSTRICT allows both (torch strict=False); the report lists them",
                        path, r->n_missing, r->n_missing ? r->missing[0] : "-", r->n_unexpected,
                        r->n_unexpected ? r->unexpected[0] : "-");
    return 0;
}

/* Loads a (sorted) checkpoint view into the model by name under a mode; the report is always filled. */
static int aur__load_ckpt(aur_model *m, const aur__ckpt *ck, aur_load_mode mode, aur_load_report *r)
{
    const char *path = ck->f->path;
    char *take = (char *)aur__calloc((size_t)m->n + 1, "a load plan");
    int rc = take ? aur__load_plan(m, ck, r, take) : AUR_ENOMEM;
    if (!rc && mode != AUR_LOAD_FILTERED) rc = aur__load_refuse(path, mode, r);
    for (int k = 0; k < m->n && !rc; k++) { /* every dtype readable before anything is written */
        const aur__ckpt_entry *e = take[k] == 1 ? aur__ckpt_find(ck, m->params[k]->name) : NULL;
        if (e && e->src && !aur__st_dtype_find(e->src->dtype)->readable)
            rc = aur__err(AUR_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (want F32, BF16 or F16)", path, e->name, e->src->dtype);
    }
    for (int k = 0; k < m->n && !rc; k++) {
        if (take[k] != 1) continue;
        rc = aur__ckpt_read_into(ck, aur__ckpt_find(ck, m->params[k]->name), m->params[k]);
        if (!rc) rc = aur__report_add(&r->loaded, &r->n_loaded, m->params[k]->name);
    }
    AUR_FREE(take);
    return rc;
}

/* Opens a checkpoint, lets transform adapt its view (may be NULL), loads it. */
static int aur__load_file(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep,
                          int (*transform)(aur_model *m, aur__ckpt *ck))
{
    aur_load_report local;
    aur_load_report *r = rep ? rep : &local;
    memset(r, 0, sizeof *r);
    if (!m->allocated) return aur__err(AUR_EINVAL, "loading %s: call aur_model_alloc first", path);
    aur_st_file *f = aur_st_open(path);
    if (!f) return AUR_EFORMAT;
    aur__ckpt ck;
    int rc = aur__ckpt_from_file(f, &ck);
    if (!rc && transform) rc = transform(m, &ck);
    if (!rc) {
        aur__ckpt_sort(&ck);
        rc = aur__load_ckpt(m, &ck, mode, r);
    }
    aur__ckpt_free(&ck);
    aur_st_close(f);
    if (!rep) aur_load_report_free(&local);
    return rc;
}

AURDEF int aur_load_safetensors(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep)
{
    return aur__load_file(m, path, mode, rep, NULL);
}

AURDEF int aur_save_safetensors(const aur_model *m, const char *path)
{
    aur_st_writer *w = aur_st_writer_create();
    int rc = w ? 0 : AUR_ENOMEM;
    if (!rc && (!m->allocated || m->device == AUR_META))
        rc = aur__err(AUR_EINVAL, "aur_save_safetensors %s: the model has no data%s", path, m->allocated ? " (it is on the meta device)" : " yet");
    for (int i = 0; i < m->n && !rc; i++) rc = aur_st_writer_add(w, m->params[i]->name, m->params[i]);
    if (!rc) rc = aur_st_writer_write(w, path);
    aur_st_writer_free(w);
    return rc;
}

/* ==== models: what trains and what is frozen ==== */

/* One row of the report: the parameters whose names start with `module.`. */
typedef struct aur__train_row {
    char module[96];
    int64_t trainable, frozen, adapter; /* elements; adapter counts the trainable ".lora_" ones too */
    int n_new, n_new_frozen;            /* tensors the checkpoint did not fill (of them frozen) */
} aur__train_row;

static int aur__is_new(const char *name, const aur_load_report *rep)
{
    for (int i = 0; rep && i < rep->n_missing; i++)
        if (!strcmp(rep->missing[i], name)) return 1;
    return 0;
}

/* The row of p's top-level module, added if it is the first of its module. */
static aur__train_row *aur__train_row_of(aur__train_row *rows, int *n, const char *name)
{
    size_t len = strcspn(name, ".");
    for (int i = 0; i < *n; i++)
        if (strlen(rows[i].module) == len && !strncmp(rows[i].module, name, len)) return &rows[i];
    aur__train_row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->module, sizeof r->module, "%.*s", (int)len, name);
    return r;
}

static void aur__print_train_row(FILE *out, const char *module, int64_t trainable, int64_t frozen, int64_t adapter, int n_new)
{
    char note[64] = "";
    if (adapter) snprintf(note, sizeof note, "LoRA %lld", (long long)adapter);
    if (n_new) snprintf(note + strlen(note), sizeof note - strlen(note), "%snew %d", adapter ? ", " : "", n_new);
    fprintf(out, "  %-28s %14lld %14lld  %s\n", module, (long long)trainable, (long long)frozen, note);
}

AURDEF int aur_model_print_trainable(const aur_model *m, const aur_load_report *rep, FILE *out)
{
    int n_rows = 0, n_warn = 0;
    aur__train_row *rows = (aur__train_row *)aur__calloc(sizeof *rows * (size_t)(aur_model_count(m) + 1), "the parameter report");
    if (!rows) return AUR_ENOMEM;
    aur__train_row total = {"total", 0, 0, 0, 0, 0};
    for (int i = 0; i < aur_model_count(m); i++) {
        const aur_tensor *p = aur_model_at(m, i);
        if (p->is_buffer) continue;
        aur__train_row *r = aur__train_row_of(rows, &n_rows, p->name);
        int is_new = aur__is_new(p->name, rep);
        *(p->requires_grad ? &r->trainable : &r->frozen) += p->numel;
        if (p->requires_grad && strstr(p->name, ".lora_")) r->adapter += p->numel;
        r->n_new += is_new, r->n_new_frozen += is_new && !p->requires_grad;
    }
    fprintf(out, "  %-28s %14s %14s\n", "module", "trainable", "frozen");
    for (int i = 0; i < n_rows; i++) {
        aur__train_row *r = &rows[i];
        aur__print_train_row(out, r->module, r->trainable, r->frozen, r->adapter, rep ? r->n_new : 0);
        total.trainable += r->trainable, total.frozen += r->frozen, total.adapter += r->adapter, total.n_new += r->n_new;
    }
    aur__print_train_row(out, "total", total.trainable, total.frozen, total.adapter, rep ? total.n_new : 0);
    int64_t all = total.trainable + total.frozen;
    fprintf(out, "  trainable: %lld of %lld parameters (%.2f%%)\n", (long long)total.trainable, (long long)all,
            all ? 100.0 * (double)total.trainable / (double)all : 0.0);
    for (int i = 0; i < aur_model_count(m); i++) { /* a tensor left at its random start and frozen never learns */
        const aur_tensor *p = aur_model_at(m, i);
        if (p->is_buffer || p->requires_grad || !aur__is_new(p->name, rep)) continue;
        fprintf(out, "warning: '%s' is newly initialised (not in the checkpoint) and frozen: it stays random; "
                     "train it (modules_to_save, unfreeze) or load it\n", p->name);
        n_warn++;
    }
    AUR_FREE(rows);
    return n_warn;
}

/* ==== optimisers ====
   torch.optim's single-tensor arithmetic, element by element: scalars in
   double, rounded to float where they meet tensors. */

AURDEF aur_optim_opts aur_adam_defaults(void)
{
    aur_optim_opts o;
    memset(&o, 0, sizeof o);
    o.kind = AUR_ADAM;
    o.lr = 1e-3;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    return o;
}

AURDEF aur_optim_opts aur_adamw_defaults(void)
{
    aur_optim_opts o = aur_adam_defaults();
    o.kind = AUR_ADAMW;
    o.weight_decay = 1e-2;
    return o;
}

AURDEF aur_optim_opts aur_adafactor_defaults(void)
{
    aur_optim_opts o;
    memset(&o, 0, sizeof o);
    o.kind = AUR_ADAFACTOR;
    o.lr = 1e-2;
    o.beta2_decay = -0.8;
    o.eps1 = FLT_EPSILON;
    o.eps2 = 1e-3;
    o.d = 1.0;
    return o;
}

typedef struct aur__pstate {
    aur_tensor *p;
    int group;
    int64_t step;
    aur_tensor st[2]; /* Adam: exp_avg, exp_avg_sq; Adafactor: row_var, col_var (>= 2-D) or variance */
    int n_st;
} aur__pstate;

typedef struct aur__group {
    double lr, weight_decay;
} aur__group;

struct aur_optim {
    aur_model *m;
    aur_optim_opts o;
    aur__pstate *ps;
    int n;
    aur__group *groups;
    int n_groups, cap_groups;
    double lr_factor;
    void *slab;
    float *scratch;       /* Adafactor: the update of the largest parameter (on the model's device) */
    int pinned;           /* the state slab is pinned host memory the GPU maps (opts.offload) */
    int64_t scratch_half; /* on a GPU the second half holds per-matrix denominators */
};

static const char *aur__state_name(const aur_optim *o, const aur__pstate *s, int k)
{
    if (o->o.kind != AUR_ADAFACTOR) return k ? "exp_avg_sq" : "exp_avg";
    if (s->n_st == 1) return "variance";
    return k ? "col_var" : "row_var";
}

/* Adafactor factors over the last two dims: row_var (..., n, 1), col_var (..., 1, m). */
static int aur__state_shapes(const aur_optim *o, const aur_tensor *p, aur_shape *sh)
{
    sh[0] = sh[1] = aur_tensor_shape(p);
    if (o->o.kind != AUR_ADAFACTOR) return 2;
    if (p->ndim < 2) return 1;
    sh[0].d[p->ndim - 1] = 1;
    sh[1].d[p->ndim - 2] = 1;
    return 2;
}

static int aur__optim_check(const aur_optim_opts *o)
{
    if (!(o->lr >= 0)) return aur__err(AUR_EINVAL, "optimiser: lr %g must be >= 0", o->lr);
    if (!(o->weight_decay >= 0)) return aur__err(AUR_EINVAL, "optimiser: weight_decay %g must be >= 0", o->weight_decay);
    if (o->kind == AUR_ADAFACTOR) {
        if (!(o->beta2_decay <= 0)) return aur__err(AUR_EINVAL, "Adafactor: beta2_decay %g must be <= 0", o->beta2_decay);
        if (!(o->eps1 >= 0 && o->eps2 >= 0 && o->d >= 1))
            return aur__err(AUR_EINVAL, "Adafactor: eps (%g, %g) must be >= 0 and d %g >= 1", o->eps1, o->eps2, o->d);
        return 0;
    }
    if (o->kind != AUR_ADAM && o->kind != AUR_ADAMW) return aur__err(AUR_EINVAL, "optimiser: unknown kind %d", (int)o->kind);
    if (!(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1))
        return aur__err(AUR_EINVAL, "Adam: betas (%g, %g) must be in [0, 1)", o->beta1, o->beta2);
    if (!(o->eps >= 0)) return aur__err(AUR_EINVAL, "Adam: eps %g must be >= 0", o->eps);
    return 0;
}

AURDEF void aur_optim_free(aur_optim *o)
{
    if (!o) return;
    if (o->m && o->pinned) aur__pinned_free(o->slab);
    else if (o->m) aur__dev_free(o->m->device, o->slab);
    if (o->m) aur__dev_free(o->m->device, o->scratch);
    AUR_FREE(o->ps);
    AUR_FREE(o->groups);
    AUR_FREE(o);
}

AURDEF aur_optim *aur_optim_create(aur_model *m, const aur_optim_opts *opts)
{
    if (aur__optim_check(opts)) return NULL;
    if (!m->allocated) {
        aur__err(AUR_EINVAL, "aur_optim_create: allocate the model first");
        return NULL;
    }
    if (m->device == AUR_META) {
        aur__err(AUR_EUNSUPPORTED, "aur_optim_create: the model is on the meta device (shapes only, nothing to update)");
        return NULL;
    }
    aur_optim *o = (aur_optim *)aur__calloc(sizeof *o, "an optimiser");
    if (!o) return NULL;
    o->m = m;
    o->o = *opts;
    o->lr_factor = 1;
    int n = 0;
    for (int i = 0; i < m->n; i++) n += m->params[i]->requires_grad;
    o->ps = (aur__pstate *)aur__calloc(sizeof(aur__pstate) * (size_t)(n + 1), "optimiser state");
    if (!o->ps || aur_optim_add_group(o, "", opts->lr, opts->weight_decay) < 0) {
        aur_optim_free(o);
        return NULL;
    }
    size_t total = 0, off = 0;
    int64_t largest = 1;
    for (int i = 0; i < m->n; i++) {
        if (!m->params[i]->requires_grad) continue;
        largest = m->params[i]->numel > largest ? m->params[i]->numel : largest;
        aur__pstate *s = &o->ps[o->n++];
        aur_shape sh[2];
        s->p = m->params[i];
        s->n_st = aur__state_shapes(o, s->p, sh);
        for (int k = 0; k < s->n_st; k++) {
            aur__tensor_init(&s->st[k], AUR_F32, m->device, sh[k]);
            total += aur__slot_bytes(&s->st[k]);
        }
    }
    o->pinned = opts->offload && m->device != AUR_CPU;
    o->slab = o->pinned ? aur__pinned_alloc(total, "the optimiser state (offloaded)")
                        : aur__dev_alloc(m->device, total, "the optimiser state slab");
    o->scratch_half = largest;
    if (opts->kind == AUR_ADAFACTOR)
        o->scratch = (float *)aur__dev_alloc(m->device, sizeof(float) * (size_t)((m->device == AUR_CPU ? 1 : 2) * largest),
                                             "Adafactor scratch");
    if (!o->slab || aur__zero_bytes(o->slab, o->pinned ? AUR_CPU : m->device, total) || (opts->kind == AUR_ADAFACTOR && !o->scratch)) {
        aur_optim_free(o);
        return NULL;
    }
    for (int i = 0; i < o->n; i++)
        for (int k = 0; k < o->ps[i].n_st; k++) {
            o->ps[i].st[k].data = (char *)o->slab + off;
            off += aur__slot_bytes(&o->ps[i].st[k]);
        }
    return o;
}

AURDEF int aur_optim_add_group(aur_optim *o, const char *patterns, double lr, double weight_decay)
{
    if (!(lr >= 0 && weight_decay >= 0))
        return aur__err(AUR_EINVAL, "aur_optim_add_group '%s': lr %g and weight_decay %g must be >= 0", patterns, lr, weight_decay);
    int g = o->n_groups, moved = 0;
    if (aur__grow((void **)&o->groups, &o->cap_groups, g + 1, sizeof(aur__group))) return AUR_ENOMEM;
    for (int i = 0; i < o->n && g > 0; i++)
        if (aur_name_matches(patterns, o->ps[i].p->name)) {
            o->ps[i].group = g;
            moved++;
        }
    if (g > 0 && !moved) return aur__err(AUR_EINVAL, "aur_optim_add_group: '%s' matches no trainable parameter", patterns);
    o->groups[g].lr = lr;
    o->groups[g].weight_decay = weight_decay;
    o->n_groups++;
    return g;
}

AURDEF int aur_optim_group_count(const aur_optim *o) { return o->n_groups; }
AURDEF void aur_optim_set_lr_factor(aur_optim *o, double factor) { o->lr_factor = factor; }
AURDEF double aur_optim_group_lr(const aur_optim *o, int g)
{
    return g >= 0 && g < o->n_groups ? o->groups[g].lr * o->lr_factor : 0;
}

/* torch.optim.Adam / AdamW, one parameter (element rule: aur__adam_elem, shared with the GPU). */
static int aur__adam_update(const aur_optim *o, aur__pstate *s, double lr, double wd)
{
    aur_real *p = (aur_real *)s->p->data, *m = (aur_real *)s->st[0].data, *v = (aur_real *)s->st[1].data;
    const aur_real *g = s->p->grad;
    double t = (double)++s->step, b1 = o->o.beta1, b2 = o->o.beta2;
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    aur__adam_k k;
    k.decay = (float)(1 - lr * wd), k.l2 = (float)wd, k.w1 = (float)(1 - b1), k.fb2 = (float)b2, k.w2 = (float)(1 - b2);
    k.step_size = (float)(-(lr / bc1)), k.bc2_sqrt = (float)sqrt(bc2), k.eps = (float)o->o.eps;
    k.decoupled = o->o.kind == AUR_ADAMW && wd != 0;
    k.l2_on = o->o.kind != AUR_ADAMW && wd != 0;
    int64_t n = s->p->numel;
    if (s->p->device == AUR_CUDA) return AUR__GPU(aur_cuda_adam, &k, p, m, v, g, n);
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) aur__adam_elem(&k, p + i, m + i, v + i, g[i]);
    return 0;
}

/* The 2-norm of x on the model's device (NaN if the GPU fails; the error is set). */
static double aur__norm(const aur_model *m, const aur_real *x, int64_t n)
{
    double s = 0;
    if (m->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_sumsq, x, n, m->reduce, &s)) return NAN;
    } else
        for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return (double)(float)sqrt(s); /* torch returns the norm as a float tensor */
}

#ifdef AUR__HAS_CUDA /* ---- CUDA builds only: Adafactor's GPU steps ---- */
/* Adafactor on the GPU: the same steps as below, one kernel each; the two
   norms come back to the host, which computes the scalars as the CPU does. */
static int aur__adafactor_cuda(const aur_optim *o, aur__pstate *s, float w, double alpha, double lr, double wd)
{
    aur_tensor *P = s->p;
    aur_real *p = (aur_real *)P->data, *u = o->scratch, *denom = o->scratch + o->scratch_half;
    int64_t n = P->numel, rows = 1, cols = n, mats = 1;
    int rc = wd != 0 ? aur_cuda_scale(p, p, (float)(1 - lr * wd), n) : 0;
    if (s->n_st == 2) {
        cols = P->shape[P->ndim - 1], rows = P->shape[P->ndim - 2], mats = rows * cols != 0 ? n / (rows * cols) : 0;
    }
    if (!rc) rc = aur_cuda_adafactor_u(s->n_st == 2, u, denom, (aur_real *)s->st[0].data,
                                       s->n_st == 2 ? (aur_real *)s->st[1].data : NULL, P->grad, rows, cols, mats, w,
                                       o->o.eps1, n);
    double uu = 0;
    if (!rc) rc = aur_cuda_sumsq(u, n, o->m->reduce, &uu);
    double unorm = (double)(float)sqrt(uu), dn = unorm / (sqrt((double)n) * o->o.d);
    if (!rc) rc = aur_cuda_axpy(p, u, (float)(-alpha / (dn > 1 ? dn : 1)), n);
    return rc;
}
#endif

/* torch.optim.Adafactor, one parameter; rows/cols are the last two dims. */
static int aur__adafactor_update(const aur_optim *o, aur__pstate *s, double lr, double wd)
{
    aur_tensor *P = s->p;
    aur_real *p = (aur_real *)P->data;
    const aur_real *g = P->grad;
    int64_t n = P->numel;
    double t = (double)++s->step, eps1 = o->o.eps1;
    float w = (float)pow(t, o->o.beta2_decay);
    double rho = lr < 1 / sqrt(t) ? lr : 1 / sqrt(t);
    double rms = aur__norm(o->m, p, n) / sqrt((double)n), alpha = (rms > o->o.eps2 ? rms : o->o.eps2) * rho;
    if (P->device == AUR_CUDA) return AUR__GPU(aur__adafactor_cuda, o, s, w, alpha, lr, wd);
    if (wd != 0) {
        float decay = (float)(1 - lr * wd);
        for (int64_t i = 0; i < n; i++) p[i] = (aur_real)((float)p[i] * decay);
    }
    float *u = o->scratch; /* the update, before scaling (the rules: aur__af_*, shared with the GPU) */
    int factored = s->n_st == 2;
    int64_t cols = factored ? P->shape[P->ndim - 1] : n, rows = factored ? P->shape[P->ndim - 2] : 1;
    int64_t mats = rows * cols != 0 ? n / (rows * cols) : 0;
    aur_real *r = (aur_real *)s->st[0].data, *c = factored ? (aur_real *)s->st[1].data : NULL;
    float floor2 = (float)(eps1 * eps1);
    for (int64_t e = 0; factored && e < mats * rows; e++) aur__af_row(r, g, cols, w, e);
    for (int64_t e = 0; factored && e < mats * cols; e++) aur__af_col(c, g, rows, cols, w, e);
    double uu = 0;
    for (int64_t b = 0; b < mats; b++) {
        float denom = factored ? aur__af_denom(r, rows, (float)eps1, b) : 0;
        for (int64_t i = b * rows * cols; i < (b + 1) * rows * cols; i++) {
            u[i] = aur__af_update(factored, r, c, g, rows, cols, w, denom, floor2, i);
            uu += (double)u[i] * u[i];
        }
    }
    double unorm = (double)(float)sqrt(uu), denom = unorm / (sqrt((double)n) * o->o.d);
    float scale = (float)(-alpha / (denom > 1 ? denom : 1));
    for (int64_t i = 0; i < n; i++) p[i] = (aur_real)((float)p[i] + u[i] * scale);
    return 0;
}

AURDEF int aur_optim_step(aur_optim *o)
{
    int rc = 0;
    for (int i = 0; i < o->n && !rc; i++) {
        aur__pstate *s = &o->ps[i];
        if (!s->p->requires_grad || !s->p->grad || !s->p->grad_written) continue; /* torch: .grad is None */
        const aur__group *g = &o->groups[s->group];
        double lr = g->lr * o->lr_factor;
        if (o->o.kind == AUR_ADAFACTOR) rc = aur__adafactor_update(o, s, lr, g->weight_decay);
        else rc = aur__adam_update(o, s, lr, g->weight_decay);
    }
    return rc;
}

AURDEF int64_t aur_optim_steps(const aur_optim *o)
{
    int64_t t = 0;
    for (int i = 0; i < o->n; i++) t = o->ps[i].step > t ? o->ps[i].step : t;
    return t;
}

static aur__pstate *aur__pstate_find(const aur_optim *o, const char *param)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->ps[i].p->name, param)) return &o->ps[i];
    return NULL;
}

AURDEF aur_tensor *aur_optim_state(const aur_optim *o, const char *param, const char *state)
{
    aur__pstate *s = aur__pstate_find(o, param);
    for (int k = 0; s && k < s->n_st; k++)
        if (!strcmp(aur__state_name(o, s, k), state)) return &s->st[k];
    aur__err(AUR_EINVAL, "optimiser: no state '%s' for parameter '%s'", state, param);
    return NULL;
}

AURDEF int64_t aur_optim_param_steps(const aur_optim *o, const char *param)
{
    aur__pstate *s = aur__pstate_find(o, param);
    return s ? s->step : -1;
}

static const char *aur__optim_kind_name(aur_optim_kind k)
{
    return k == AUR_ADAM ? "adam" : k == AUR_ADAMW ? "adamw" : "adafactor";
}

/* File layout: "<param>/<state>" F32 tensors and "<param>/step" I64 [1]. */
/* The state with the metadata pairs `meta` (key, value, ..., NULL) besides the optimiser's own. */
static int aur__optim_save(const aur_optim *o, const char *path, const char *const *meta)
{
    aur_st_writer *w = aur_st_writer_create();
    char name[1024], num[64];
    int64_t one = 1;
    int rc = w ? 0 : AUR_ENOMEM;
    snprintf(num, sizeof num, "%.17g", o->lr_factor);
    if (!rc) rc = aur_st_writer_meta(w, "optimizer", aur__optim_kind_name(o->o.kind));
    if (!rc) rc = aur_st_writer_meta(w, "lr_factor", num);
    for (int i = 0; meta && meta[i] && !rc; i += 2) rc = aur_st_writer_meta(w, meta[i], meta[i + 1]);
    for (int i = 0; i < o->n && !rc; i++) {
        const aur__pstate *s = &o->ps[i];
        for (int k = 0; k < s->n_st && !rc; k++) {
            snprintf(name, sizeof name, "%s/%s", s->p->name, aur__state_name(o, s, k));
            rc = aur_st_writer_add(w, name, &s->st[k]);
        }
        snprintf(name, sizeof name, "%s/step", s->p->name);
        if (!rc) rc = aur_st_writer_add_raw(w, name, "I64", 1, &one, &s->step);
    }
    if (!rc) rc = aur_st_writer_write(w, path);
    aur_st_writer_free(w);
    return rc;
}

AURDEF int aur_optim_save(const aur_optim *o, const char *path) { return aur__optim_save(o, path, NULL); }

/* Checks everything before changing anything, so a bad file leaves the optimiser as it was. */
static int aur__optim_load_check(const aur_optim *o, const aur_st_file *f)
{
    char name[1024];
    const char *kind = aur_st_meta(f, "optimizer");
    if (!kind || strcmp(kind, aur__optim_kind_name(o->o.kind)))
        return aur__err(AUR_EFORMAT, "%s: optimiser state for '%s', this optimiser is %s", f->path, kind ? kind : "?",
                        aur__optim_kind_name(o->o.kind));
    int expected = 0;
    for (int i = 0; i < o->n; i++) {
        const aur__pstate *s = &o->ps[i];
        snprintf(name, sizeof name, "%s/step", s->p->name);
        const aur_st_tensor *e = aur_st_find(f, name);
        if (!e || strcmp(e->dtype, "I64") || e->numel != 1)
            return aur__err(AUR_EFORMAT, "%s: no I64 '%s' for trainable parameter '%s'", f->path, name, s->p->name);
        for (int k = 0; k < s->n_st; k++) {
            snprintf(name, sizeof name, "%s/%s", s->p->name, aur__state_name(o, s, k));
            e = aur_st_find(f, name);
            if (!e) return aur__err(AUR_EFORMAT, "%s: no '%s' (was the model frozen differently?)", f->path, name);
            int same = e->ndim == s->st[k].ndim && !strcmp(e->dtype, "F32");
            for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == s->st[k].shape[d];
            if (!same) return aur__err(AUR_ESHAPE, "%s: '%s' has the wrong dtype or shape", f->path, name);
        }
        expected += s->n_st + 1;
    }
    if (f->n != expected)
        return aur__err(AUR_EFORMAT, "%s: %d state tensors, this optimiser has %d (a different model?)", f->path, f->n, expected);
    return 0;
}

/* The state of an opened file, checked before anything changes. */
static int aur__optim_load_file(aur_optim *o, const aur_st_file *f)
{
    char name[1024];
    int rc = aur__optim_load_check(o, f);
    for (int i = 0; i < o->n && !rc; i++) {
        aur__pstate *s = &o->ps[i];
        for (int k = 0; k < s->n_st && !rc; k++) {
            snprintf(name, sizeof name, "%s/%s", s->p->name, aur__state_name(o, s, k));
            rc = aur_st_read_tensor(f, aur_st_find(f, name), &s->st[k]);
        }
        snprintf(name, sizeof name, "%s/step", s->p->name);
        if (!rc) rc = aur__st_bytes(f, aur_st_find(f, name)->begin, &s->step, 8);
    }
    const char *lf = aur_st_meta(f, "lr_factor");
    if (!rc && lf) o->lr_factor = strtod(lf, NULL);
    return rc;
}

AURDEF int aur_optim_load(aur_optim *o, const char *path)
{
    aur_st_file *f = aur_st_open(path);
    int rc = f ? aur__optim_load_file(o, f) : AUR_EFORMAT;
    aur_st_close(f);
    return rc;
}

/* ==== gradient clipping and schedules ==== */

/* The gradient norm of every parameter that has a gradient and matches
   patterns (NULL: all); 0 for the others. On a GPU every sum stays there
   and one copy brings them all back. */
static int aur__grad_norms(const aur_model *m, const char *patterns, double *norms)
{
    int rc = 0;
    for (int i = 0; i < m->n; i++) norms[i] = 0;
    if (m->device == AUR_CUDA) {
        double *sums = m->reduce + AUR__REDUCE_SLOTS + 1; /* one slot per parameter */
        for (int i = 0; i < m->n && !rc; i++) {
            const aur_tensor *p = m->params[i];
            if (p->grad && (!patterns || aur_name_matches(patterns, p->name)))
                rc = AUR__GPU(aur_cuda_sumsq_into, p->grad, p->numel, m->reduce, sums + i);
        }
        if (!rc) rc = aur__copy_bytes(norms, AUR_CPU, sums, AUR_CUDA, sizeof(double) * (size_t)m->n);
        for (int i = 0; i < m->n; i++) norms[i] = m->params[i]->grad ? (double)(float)sqrt(norms[i]) : 0;
        return rc;
    }
    for (int i = 0; i < m->n; i++) {
        const aur_tensor *p = m->params[i];
        if (p->grad && (!patterns || aur_name_matches(patterns, p->name))) norms[i] = aur__norm(m, p->grad, p->numel);
    }
    return rc;
}

AURDEF double aur_grad_norm(const aur_model *m, const char *patterns)
{
    double total = 0, *norms = m->norms;
    if (!norms) return 0; /* not allocated: no gradients */
    if (aur__grad_norms(m, patterns, norms)) return NAN;
    for (int i = 0; i < m->n; i++) total += norms[i] * norms[i];
    return sqrt(total);
}

AURDEF int aur_clip_grad_norm(aur_model *m, double max_norm, double *total_norm)
{
    double ss = 0, *norms = m->norms;
    int rc = norms ? aur__grad_norms(m, NULL, norms) : aur__err(AUR_EINVAL, "clip_grad_norm: allocate the model first");
    for (int i = 0; !rc && i < m->n; i++) ss += norms[i] * norms[i];
    float total = (float)sqrt(ss);
    if (total_norm) *total_norm = total;
    for (int i = 0; !rc && !isfinite(total) && i < m->n; i++)
        if (!isfinite(norms[i]))
            rc = aur__err(AUR_ENAN, "clip_grad_norm: the gradient of '%s' is not finite; nothing was changed", m->params[i]->name);
    if (!rc && !isfinite(total)) rc = aur__err(AUR_ENAN, "clip_grad_norm: the total norm overflows; nothing was changed");
    if (rc) return rc;
    float coef = (float)max_norm / (total + 1e-6f);
    if (coef > 1) coef = 1;
    for (int i = 0; i < m->n; i++) {
        aur_tensor *p = m->params[i];
        if (p->grad && m->device == AUR_CUDA) {
            if (AUR__GPU(aur_cuda_scale, p->grad, p->grad, coef, p->numel)) return AUR_ECUDA;
            continue;
        }
        for (int64_t k = 0; p->grad && k < p->numel; k++) p->grad[k] = (aur_real)((float)p->grad[k] * coef);
    }
    return 0;
}

AURDEF double aur_lr_factor(const aur_lr_schedule *s, int64_t step)
{
    if (s->warmup_steps > 0 && step < s->warmup_steps) return (double)(step + 1) / (double)s->warmup_steps;
    if (s->kind == AUR_LR_CONSTANT) return 1;
    double span = (double)(s->total_steps - s->warmup_steps);
    double x = span > 0 ? (double)(step - s->warmup_steps) / span : 1;
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    if (s->kind == AUR_LR_LINEAR) return 1 - (1 - s->final_factor) * x;
    return s->final_factor + (1 - s->final_factor) * 0.5 * (1 + cos(3.14159265358979323846 * x));
}

/* ======================================================================== */
/*                                 AURORA                                   */
/* ======================================================================== */

/* ==== Aurora: configuration and presets ==== */

static int aur__vl_find(const aur_var_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->name[i], name)) return i;
    return -1;
}

static int aur__vl_add(aur_var_list *l, const char *name)
{
    if (l->n >= AUR_MAX_VARS) return aur__err(AUR_EINVAL, "more than %d variables", AUR_MAX_VARS);
    if (strlen(name) >= AUR_NAME_LEN) return aur__err(AUR_EINVAL, "variable name '%s' is longer than %d", name, AUR_NAME_LEN - 1);
    snprintf(l->name[l->n++], AUR_NAME_LEN, "%s", name);
    return 0;
}

/* Appends the names in s, separated by any of the characters in seps (no
   strtok: its hidden state would make concurrent calls interleave). */
static int aur__vl_split(aur_var_list *l, const char *s, const char *seps)
{
    char name[AUR_NAME_LEN];
    while (*s) {
        size_t n = strcspn(s, seps);
        if (n >= AUR_NAME_LEN) return aur__err(AUR_EINVAL, "variable name '%.*s' is longer than %d", (int)n, s, AUR_NAME_LEN - 1);
        if (n) {
            memcpy(name, s, n);
            name[n] = 0;
            if (aur__vl_add(l, name)) return AUR_EINVAL;
        }
        s += n;
        s += strspn(s, seps);
    }
    return 0;
}

/* A list from a space-separated string (presets). */
static aur_var_list aur__vl(const char *names)
{
    aur_var_list l;
    memset(&l, 0, sizeof l);
    aur__vl_split(&l, names, " ");
    return l;
}

static void aur__set_stages(aur_aurora_config *c, int n, const int *ed, const int *eh, const int *dd, const int *dh)
{
    c->n_stages = n;
    for (int i = 0; i < n; i++) {
        c->encoder_depths[i] = ed[i];
        c->encoder_num_heads[i] = eh[i];
        c->decoder_depths[i] = dd[i];
        c->decoder_num_heads[i] = dh[i];
    }
}

/* The reference's base class defaults (which are the 0.25 fine-tuned model, LoRA on). */
static aur_aurora_config aur__aurora_base(void)
{
    aur_aurora_config c;
    memset(&c, 0, sizeof c);
    c.surf_vars = aur__vl("2t 10u 10v msl");
    c.static_vars = aur__vl("lsm z slt");
    c.atmos_vars = aur__vl("z u v t q");
    c.window_size[0] = 2;
    c.window_size[1] = 6;
    c.window_size[2] = 12;
    int ed[3] = {6, 10, 8}, eh[3] = {8, 16, 32}, dd[3] = {8, 10, 6}, dh[3] = {32, 16, 8};
    aur__set_stages(&c, 3, ed, eh, dd, dh);
    c.latent_levels = 4;
    c.patch_size = 4;
    c.embed_dim = 512;
    c.num_heads = 16;
    c.mlp_ratio = 4.0;
    c.dec_mlp_ratio = 2.0;
    c.enc_depth = c.dec_depth = 1;
    c.perceiver_ln_eps = 1e-5;
    c.max_history_size = 2;
    c.timestep_seconds = 6 * 3600;
    c.use_lora = 1;
    c.lora_steps = 40;
    c.lora_mode = AUR_LORA_SINGLE;
    return c;
}

static const char *const aur__preset_names[] = {"aurora-pretrained", "aurora-small-pretrained", "aurora-0.25-finetuned",
                                                "aurora-12h-pretrained", "aurora-highres", "aurora-air-pollution",
                                                "aurora-wave", NULL};

AURDEF const char *const *aur_aurora_preset_names(void) { return aur__preset_names; }

/* AuroraWave's angle variables (modelled as sin and cos) and the variables with
   a density channel (aurora/model/aurora.py: AuroraWave.__init__). */
static const char *const aur__wave_angles[] = {"mwd", "mdww", "mdts", "mwd1", "mwd2"};
static const char *const aur__wave_density[] = {"swh", "mwd", "mwp", "pp1d", "shww", "mdww", "mpww", "shts", "mdts", "mpts",
                                                "swh1", "mwd1", "mwp1", "swh2", "mwd2", "mwp2", "wind", "10u_wave", "10v_wave"};
#define AUR__COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* 1 if v is one of the n names in l. */
static int aur__listed(const char *const *l, int n, const char *v)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(l[i], v)) return 1;
    return 0;
}

/* AuroraWave's surf_vars keyword lists the data's names: each angle becomes
   its sin and cos, and each wave variable gets its density channel. */
static aur_var_list aur__wave_expand(const aur_var_list *in)
{
    aur_var_list out;
    memset(&out, 0, sizeof out);
    char name[AUR_NAME_LEN + 16];
    for (int i = 0; i < in->n; i++) {
        const char *v = in->name[i];
        if (aur__listed(aur__wave_angles, AUR__COUNT(aur__wave_angles), v)) {
            snprintf(name, sizeof name, "%s_sin", v);
            aur__vl_add(&out, name);
            snprintf(name, sizeof name, "%s_cos", v);
            aur__vl_add(&out, name);
        } else {
            aur__vl_add(&out, v);
        }
        if (aur__listed(aur__wave_density, AUR__COUNT(aur__wave_density), v)) {
            snprintf(name, sizeof name, "%s_density", v);
            aur__vl_add(&out, name);
        }
    }
    return out;
}

/* The reference's class names, as aliases of the presets. */
static const char *aur__preset_of_class(const char *name)
{
    static const char *const map[][2] = {{"Aurora", "aurora-0.25-finetuned"},
                                         {"AuroraPretrained", "aurora-pretrained"},
                                         {"AuroraSmallPretrained", "aurora-small-pretrained"},
                                         {"AuroraSmall", "aurora-small-pretrained"},
                                         {"Aurora12hPretrained", "aurora-12h-pretrained"},
                                         {"AuroraHighRes", "aurora-highres"},
                                         {"AuroraAirPollution", "aurora-air-pollution"},
                                         {"AuroraWave", "aurora-wave"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(name, map[i][0])) return map[i][1];
    return name;
}

AURDEF int aur_aurora_preset(const char *name, aur_aurora_config *cfg)
{
    aur_aurora_config c = aur__aurora_base();
    name = aur__preset_of_class(name);
    if (!strcmp(name, "aurora-0.25-finetuned") || !strcmp(name, "aurora")) {
    } else if (!strcmp(name, "aurora-pretrained")) {
        c.use_lora = 0;
    } else if (!strcmp(name, "aurora-small-pretrained") || !strcmp(name, "aurora-small")) {
        int ed[3] = {2, 6, 2}, eh[3] = {4, 8, 16}, dd[3] = {2, 6, 2}, dh[3] = {16, 8, 4};
        aur__set_stages(&c, 3, ed, eh, dd, dh);
        c.embed_dim = 256;
        c.num_heads = 8;
        c.use_lora = 0;
    } else if (!strcmp(name, "aurora-12h-pretrained")) {
        c.timestep_seconds = 12 * 3600;
        c.use_lora = 0;
    } else if (!strcmp(name, "aurora-highres")) {
        int ed[3] = {6, 8, 8}, eh[3] = {8, 16, 32}, dd[3] = {8, 8, 6}, dh[3] = {32, 16, 8};
        aur__set_stages(&c, 3, ed, eh, dd, dh);
        c.patch_size = 10;
    } else if (!strcmp(name, "aurora-air-pollution")) {
        static const double lv[13] = {50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000};
        c.surf_vars = aur__vl("2t 10u 10v msl pm1 pm2p5 pm10 tcco tc_no tcno2 gtco3 tcso2");
        c.static_vars = aur__vl("lsm z slt static_ammonia static_ammonia_log static_co static_co_log static_nox "
                                "static_nox_log static_so2 static_so2_log");
        c.atmos_vars = aur__vl("z u v t q co no no2 go3 so2");
        c.patch_size = 3;
        c.timestep_seconds = 12 * 3600;
        c.n_level_condition = 13;
        memcpy(c.level_condition, lv, sizeof lv);
        c.dynamic_vars = c.atmos_static_vars = 1;
        c.separate_perceiver = aur__vl("co no no2 go3 so2");
        c.modulation_heads = aur__vl("pm1 pm2p5 pm10 co tcco no tc_no no2 tcno2 so2 tcso2 go3 gtco3");
        c.positive_surf_vars = aur__vl("pm1 pm2p5 pm10 tcco tc_no tcno2 gtco3 tcso2");
        c.positive_atmos_vars = aur__vl("co no no2 go3 so2");
        c.simulate_indexing_bug = 1;
        c.air_pollution = 1;
    } else if (!strcmp(name, "aurora-wave")) {
        aur_var_list data = aur__vl("2t 10u 10v msl swh mwd mwp pp1d shww mdww mpww shts mdts mpts swh1 mwd1 mwp1 swh2 mwd2 "
                                    "mwp2 wind 10u_wave 10v_wave");
        c.surf_vars = aur__wave_expand(&data);
        c.static_vars = aur__vl("lsm z slt wmb lat_mask");
        c.lora_mode = AUR_LORA_FROM_SECOND;
        c.stabilise_level_agg = 1;
        c.wave = 1;
    } else {
        return aur__err(AUR_EINVAL, "unknown Aurora preset '%s' (aurora-pretrained, aurora-small-pretrained, "
                        "aurora-0.25-finetuned, aurora-12h-pretrained, aurora-highres, aurora-air-pollution, aurora-wave)", name);
    }
    *cfg = c;
    return 0;
}

/* ---- the configuration from JSON keywords ---- */

#define AUR__KW "Aurora keyword"

/* A list of names (null: none, as the reference's None). */
static int aur__kw_vars(const cJSON *v, aur_var_list *out)
{
    return aur__json_names(v, AUR__KW, out->name[0], AUR_NAME_LEN, AUR_MAX_VARS, &out->n);
}

/* surf_stats: {name: [location, scale]} or null. */
static int aur__kw_surf_stats(const cJSON *v, aur_aurora_config *c)
{
    int rc = aur__json_pairs(v, AUR__KW, "[location, scale]");
    c->n_surf_stats = 0;
    for (const cJSON *e = cJSON_IsObject(v) ? v->child : NULL; e && !rc; e = e->next) {
        if (c->n_surf_stats >= AUR_MAX_VARS || strlen(e->string) >= AUR_NAME_LEN)
            return aur__err(AUR_EINVAL, "Aurora keyword 'surf_stats': more than %d names, or '%s' is longer than %d", AUR_MAX_VARS,
                            e->string, AUR_NAME_LEN - 1);
        snprintf(c->surf_stats_name[c->n_surf_stats], AUR_NAME_LEN, "%s", e->string);
        c->surf_stats[c->n_surf_stats][0] = e->child->valuedouble;
        c->surf_stats[c->n_surf_stats++][1] = e->child->next->valuedouble;
    }
    return rc;
}

static const char *const aur__checkpoint_names[] = {"Perceiver3DEncoder",  "Swin3DTransformerBackbone", "Basic3DEncoderLayer",
                                                    "Basic3DDecoderLayer", "Swin3DTransformerBlock",    "Perceiver3DDecoder",
                                                    "LinearPatchReconstruction", NULL};

/* One class name into cfg->checkpoint. */
static int aur__checkpoint_module(aur_aurora_config *cfg, const char *name, size_t n)
{
    for (int k = 0; aur__checkpoint_names[k]; k++)
        if (strlen(aur__checkpoint_names[k]) == n && !strncmp(aur__checkpoint_names[k], name, n)) {
            cfg->checkpoint |= 1u << k;
            return 0;
        }
    return aur__err(AUR_EINVAL, "checkpoint modules: '%.*s' is not a module of Aurora (Perceiver3DEncoder, Swin3DTransformerBackbone, "
                    "Basic3DEncoderLayer, Basic3DDecoderLayer, Swin3DTransformerBlock, Perceiver3DDecoder, LinearPatchReconstruction)",
                    (int)n, name);
}

AURDEF int aur_aurora_checkpoint_modules(aur_aurora_config *cfg, const char *names)
{
    if (!names || !*names) {
        cfg->checkpoint = AUR_CHECKPOINT_ALL;
        return 0;
    }
    unsigned before = cfg->checkpoint;
    cfg->checkpoint = 0;
    if (!strcmp(names, "none")) return 0;
    for (const char *s = names; *s;) {
        size_t n = strcspn(s, ", ");
        if (n && aur__checkpoint_module(cfg, s, n)) {
            cfg->checkpoint = before;
            return AUR_EINVAL;
        }
        s += n;
        s += strspn(s, ", ");
    }
    return 0;
}

/* "checkpoint_modules": true (the reference's default set), false, or a list of class names. */
static int aur__checkpoint_json(aur_aurora_config *c, const cJSON *v)
{
    if (cJSON_IsBool(v)) {
        c->checkpoint = cJSON_IsTrue(v) ? AUR_CHECKPOINT_ALL : 0;
        return 0;
    }
    if (!cJSON_IsArray(v)) return aur__json_bad(v, AUR__KW, "checkpoint_modules", "true, false or a list of module class names");
    c->checkpoint = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return aur__json_bad(e, AUR__KW, "checkpoint_modules[]", "a module class name");
        if (aur__checkpoint_module(c, e->valuestring, strlen(e->valuestring))) return AUR_EINVAL;
    }
    return 0;
}

/* One keyword; returns 1 if the key is not an Aurora keyword. */
static int aur__config_key(aur_aurora_config *c, const cJSON *v)
{
    static const char *const lora_modes[] = {"single", "from_second", "all", NULL}; /* aur_lora_mode's order */
    const char *k = v->string;
    int n = 0, rc = 0, mode = c->lora_mode;
    if (!strcmp(k, "surf_vars")) {
        rc = aur__kw_vars(v, &c->surf_vars);
        if (!rc && c->wave) c->surf_vars = aur__wave_expand(&c->surf_vars); /* as the AuroraWave subclass does */
    }
    else if (!strcmp(k, "static_vars")) rc = aur__kw_vars(v, &c->static_vars);
    else if (!strcmp(k, "atmos_vars")) rc = aur__kw_vars(v, &c->atmos_vars);
    else if (!strcmp(k, "window_size")) rc = aur__json_ints(v, AUR__KW, c->window_size, 3, 3, &n);
    else if (!strcmp(k, "encoder_depths")) rc = aur__json_ints(v, AUR__KW, c->encoder_depths, 1, AUR_MAX_STAGES, &c->n_stages);
    else if (!strcmp(k, "encoder_num_heads")) rc = aur__json_ints(v, AUR__KW, c->encoder_num_heads, 1, AUR_MAX_STAGES, &n);
    else if (!strcmp(k, "decoder_depths")) rc = aur__json_ints(v, AUR__KW, c->decoder_depths, 1, AUR_MAX_STAGES, &n);
    else if (!strcmp(k, "decoder_num_heads")) rc = aur__json_ints(v, AUR__KW, c->decoder_num_heads, 1, AUR_MAX_STAGES, &n);
    else if (!strcmp(k, "latent_levels")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->latent_levels);
    else if (!strcmp(k, "patch_size")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->patch_size);
    else if (!strcmp(k, "embed_dim")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->embed_dim);
    else if (!strcmp(k, "num_heads")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->num_heads);
    else if (!strcmp(k, "mlp_ratio")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->mlp_ratio);
    else if (!strcmp(k, "dec_mlp_ratio")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->dec_mlp_ratio);
    else if (!strcmp(k, "drop_path")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->drop_path);
    else if (!strcmp(k, "drop_rate")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->drop_rate);
    else if (!strcmp(k, "enc_depth")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->enc_depth);
    else if (!strcmp(k, "dec_depth")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->dec_depth);
    else if (!strcmp(k, "perceiver_ln_eps")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->perceiver_ln_eps);
    else if (!strcmp(k, "max_history_size")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->max_history_size);
    else if (!strcmp(k, "timestep")) { /* seconds, or a timedelta as {"timedelta_seconds": s} */
        const cJSON *s = aur__json_at(v, "timedelta_seconds");
        rc = aur__json_num(s ? s : v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->timestep_seconds);
    } else if (!strcmp(k, "stabilise_level_agg")) rc = aur__json_bool(v, AUR__KW, &c->stabilise_level_agg);
    else if (!strcmp(k, "use_lora")) rc = aur__json_bool(v, AUR__KW, &c->use_lora);
    else if (!strcmp(k, "lora_steps")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->lora_steps);
    else if (!strcmp(k, "lora_mode")) {
        rc = aur__json_enum(v, AUR__KW, lora_modes, &mode);
        c->lora_mode = (aur_lora_mode)mode;
    } else if (!strcmp(k, "surf_stats")) rc = aur__kw_surf_stats(v, c);
    else if (!strcmp(k, "autocast")) rc = aur__json_bool(v, AUR__KW, &c->autocast);
    else if (!strcmp(k, "bf16_mode")) { /* deprecated: sets autocast */
        int on = 0;
        rc = aur__json_bool(v, AUR__KW, &on);
        if (on) c->autocast = 1;
    } else if (!strcmp(k, "level_condition"))
        rc = aur__json_nums(v, AUR__KW, c->level_condition, 0, AUR_MAX_LEVELS, &c->n_level_condition);
    else if (!strcmp(k, "dynamic_vars")) rc = aur__json_bool(v, AUR__KW, &c->dynamic_vars);
    else if (!strcmp(k, "atmos_static_vars")) rc = aur__json_bool(v, AUR__KW, &c->atmos_static_vars);
    else if (!strcmp(k, "separate_perceiver")) rc = aur__kw_vars(v, &c->separate_perceiver);
    else if (!strcmp(k, "modulation_heads")) rc = aur__kw_vars(v, &c->modulation_heads);
    else if (!strcmp(k, "positive_surf_vars")) rc = aur__kw_vars(v, &c->positive_surf_vars);
    else if (!strcmp(k, "positive_atmos_vars")) rc = aur__kw_vars(v, &c->positive_atmos_vars);
    else if (!strcmp(k, "clamp_at_first_step")) rc = aur__json_bool(v, AUR__KW, &c->clamp_at_first_step);
    else if (!strcmp(k, "simulate_indexing_bug")) rc = aur__json_bool(v, AUR__KW, &c->simulate_indexing_bug);
    else if (!strcmp(k, "checkpoint_modules")) rc = aur__checkpoint_json(c, v);
    else return 1;
    return rc ? AUR_EINVAL : 0;
}

/* The rules the reference asserts (and the combinations it cannot run). */
#define AUR__MAX_WIDTH 65536
#define AUR__MAX_SIZE 1024

static int aur__config_check(const aur_aurora_config *c)
{
    const int D = c->embed_dim;
    /* the encoder's inputs: surface variables, statics and the dynamic ones; atmospheric ones and their static_ copies */
    int n_surf = c->surf_vars.n + c->static_vars.n + (c->dynamic_vars ? 6 : 0);
    int n_atmos = c->atmos_vars.n + (c->atmos_static_vars ? n_surf - c->surf_vars.n : 0);
    if (n_surf > AUR_MAX_VARS || n_atmos > AUR_MAX_VARS)
        return aur__err(AUR_EINVAL, "Aurora: %d surface and %d atmospheric encoder inputs (variables, statics, dynamic ones); at most %d each",
                        n_surf, n_atmos, AUR_MAX_VARS);
    if (c->n_stages < 1 || c->n_stages > AUR_MAX_STAGES) return aur__err(AUR_EINVAL, "Aurora: %d backbone stages", c->n_stages);
    /* sizes far beyond any Aurora (embed_dim 512, patch 4-10, 4 latent levels) would only overflow the shapes built from them */
    if (D < 4 || D % 4 || D > AUR__MAX_WIDTH)
        return aur__err(AUR_EINVAL, "Aurora: embed_dim %d must be a positive multiple of 4, at most %d", D, AUR__MAX_WIDTH);
    int sizes[] = {c->patch_size, c->latent_levels, c->window_size[0], c->window_size[1], c->window_size[2], c->max_history_size,
                   c->enc_depth, c->dec_depth, c->lora_steps};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        if (sizes[k] > AUR__MAX_SIZE)
            return aur__err(AUR_EINVAL, "Aurora: patch_size, latent_levels, window_size, max_history_size, enc_depth, dec_depth and lora_steps "
                            "must be at most %d (found %d)", AUR__MAX_SIZE, sizes[k]);
    int se = 0, sd = 0;
    for (int i = 0; i < c->n_stages; i++) {
        if (c->encoder_depths[i] < 0 || c->decoder_depths[i] < 0 || c->encoder_depths[i] > AUR__MAX_SIZE || c->decoder_depths[i] > AUR__MAX_SIZE)
            return aur__err(AUR_EINVAL, "Aurora: stage %d depths must be in [0, %d]", i, AUR__MAX_SIZE);
        se += c->encoder_depths[i];
        sd += c->decoder_depths[i];
        int di = D << i;
        if (c->encoder_num_heads[i] < 1 || di % c->encoder_num_heads[i] || c->decoder_num_heads[i] < 1 ||
            (D << (c->n_stages - 1 - i)) % c->decoder_num_heads[i])
            return aur__err(AUR_EINVAL, "Aurora: stage %d width does not split into its heads", i);
    }
    if (se != sd) return aur__err(AUR_EINVAL, "Aurora: encoder depths sum to %d, decoder depths to %d", se, sd);
    if (c->num_heads < 1 || c->num_heads > D) return aur__err(AUR_EINVAL, "Aurora: num_heads %d", c->num_heads);
    if (c->latent_levels < 2) return aur__err(AUR_EINVAL, "Aurora: latent_levels %d must be > 1", c->latent_levels);
    for (int a = 0; a < 3; a++)
        if (c->window_size[a] < 1) return aur__err(AUR_EINVAL, "Aurora: window_size must be positive");
    if (c->latent_levels % c->window_size[0])
        return aur__err(AUR_EINVAL, "Aurora: latent_levels %d must be a multiple of window_size[0] %d", c->latent_levels, c->window_size[0]);
    if (c->patch_size < 2) return aur__err(AUR_EINVAL, "Aurora: patch_size %d (the patch area needs P >= 2)", c->patch_size);
    if (c->max_history_size < 1 || c->enc_depth < 1 || c->dec_depth < 1 || c->lora_steps < 1)
        return aur__err(AUR_EINVAL, "Aurora: max_history_size, enc_depth, dec_depth and lora_steps must be >= 1");
    if (!(c->mlp_ratio > 0 && c->dec_mlp_ratio > 0 && c->perceiver_ln_eps > 0 && c->timestep_seconds > 0))
        return aur__err(AUR_EINVAL, "Aurora: mlp ratios, perceiver_ln_eps and timestep must be positive");
    if (!(c->drop_path >= 0 && c->drop_path < 1 && c->drop_rate >= 0 && c->drop_rate < 1))
        return aur__err(AUR_EINVAL, "Aurora: drop_path and drop_rate must be in [0, 1)");
    if (c->wave && c->positive_surf_vars.n) /* its pre-encoder hook changes the batch itself, which a clamped copy would hide */
        return aur__err(AUR_EUNSUPPORTED, "Aurora: AuroraWave with positive_surf_vars cannot run in the reference either");
    if (c->atmos_static_vars && !c->dynamic_vars)
        return aur__err(AUR_EUNSUPPORTED, "Aurora: atmos_static_vars without dynamic_vars cannot run in the reference either");
    return 0;
}

AURDEF int aur_aurora_config_json(const cJSON *kwargs, aur_aurora_config *cfg)
{
    if (!cJSON_IsObject(kwargs)) return aur__err(AUR_EINVAL, "Aurora keywords: expected a JSON object");
    if (aur__json_unique(kwargs, "Aurora keywords")) return AUR_EINVAL;
    aur_aurora_config c = *cfg;
    for (const cJSON *v = kwargs->child; v; v = v->next) {
        int rc = aur__config_key(&c, v);
        if (rc == 1) return aur__err(AUR_EINVAL, "unknown Aurora keyword '%s'", v->string);
        if (rc) return rc;
    }
    int rc = aur__config_check(&c);
    if (!rc) *cfg = c;
    return rc;
}

/* ==== Aurora: the parameter table ====
   Declared in the reference's state_dict order: module registration order,
   with ParameterDict keys sorted as strings. */

AURDEF void aur_level_to_str(double level, char *buf, size_t size)
{
    double r = round(level * 1000.0) / 1000.0;
    if (r == floor(r)) {
        snprintf(buf, size, "%lld", (long long)r);
        return;
    }
    snprintf(buf, size, "%.3f", r);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0') buf[--n] = 0;
    for (char *c = buf; *c; c++)
        if (*c == '.') *c = '_';
}

/* Adds a parameter by printf-style name; failures stick in *rc. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static aur_tensor *aur__p(aur_model *m, int *rc, aur_shape s, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (*rc) return NULL;
    aur_tensor *t = aur_model_add(m, name, s, 0);
    if (!t) *rc = AUR_EINVAL;
    return t;
}

static int aur__strcmp_p(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* Names sorted as torch.nn.ParameterDict stores a plain dict's keys (sorted, bytewise). */
static void aur__sorted(const aur_var_list *in, aur_var_list *out)
{
    *out = *in;
    aur__qsort(out->name, (size_t)out->n, AUR_NAME_LEN, aur__strcmp_p);
}

static void aur__sorted_levels(const aur_aurora_config *c, aur_var_list *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < c->n_level_condition; i++) {
        char s[AUR_NAME_LEN];
        aur_level_to_str(c->level_condition[i], s, sizeof s);
        aur__vl_add(out, s);
    }
    aur__qsort(out->name, (size_t)out->n, AUR_NAME_LEN, aur__strcmp_p);
}

static void aur__declare_linear(aur_model *m, int *rc, const char *prefix, int64_t out, int64_t in, int bias)
{
    aur__p(m, rc, aur_shape2(out, in), "%s.weight", prefix);
    if (bias) aur__p(m, rc, aur_shape1(out), "%s.bias", prefix);
}

static void aur__declare_norm(aur_model *m, int *rc, const char *prefix, int64_t n)
{
    aur__p(m, rc, aur_shape1(n), "%s.weight", prefix);
    aur__p(m, rc, aur_shape1(n), "%s.bias", prefix);
}

/* PerceiverResampler: layers.{k}.0 (attention), .1 (MLP), .2 and .3 (norms). */
static void aur__declare_perceiver(aur_model *m, int *rc, const char *prefix, int64_t dim, int nh, int depth, double ratio,
                                   int ln_kq)
{
    char p[256];
    int64_t inner = (dim / nh) * nh, hid = (int64_t)(dim * ratio);
    for (int k = 0; k < depth; k++) {
        snprintf(p, sizeof p, "%s.layers.%d.0.to_q", prefix, k);
        aur__declare_linear(m, rc, p, inner, dim, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_kv", prefix, k);
        aur__declare_linear(m, rc, p, 2 * inner, dim, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_out", prefix, k);
        aur__declare_linear(m, rc, p, dim, inner, 0);
        if (ln_kq && k == 0) {
            snprintf(p, sizeof p, "%s.layers.0.0.ln_k", prefix);
            aur__declare_norm(m, rc, p, inner);
            snprintf(p, sizeof p, "%s.layers.0.0.ln_q", prefix);
            aur__declare_norm(m, rc, p, inner);
        }
        snprintf(p, sizeof p, "%s.layers.%d.1.net.0", prefix, k);
        aur__declare_linear(m, rc, p, hid, dim, 1);
        snprintf(p, sizeof p, "%s.layers.%d.1.net.2", prefix, k);
        aur__declare_linear(m, rc, p, dim, hid, 1);
        snprintf(p, sizeof p, "%s.layers.%d.2", prefix, k);
        aur__declare_norm(m, rc, p, dim);
        snprintf(p, sizeof p, "%s.layers.%d.3", prefix, k);
        aur__declare_norm(m, rc, p, dim);
    }
}

/* The encoder's input variable names: surface (+ statics + dynamic), atmospheric (+ static_*). */
static const char *const aur__dynamic_names[6] = {"tod_cos", "tod_sin", "dow_cos", "dow_sin", "doy_cos", "doy_sin"};

static void aur__embed_names(const aur_aurora_config *c, aur_var_list *surf, aur_var_list *atmos)
{
    char name[AUR_NAME_LEN + 8];
    *surf = c->surf_vars;
    for (int i = 0; i < c->static_vars.n; i++) aur__vl_add(surf, c->static_vars.name[i]);
    if (c->dynamic_vars)
        for (int i = 0; i < 6; i++) aur__vl_add(surf, aur__dynamic_names[i]);
    *atmos = c->atmos_vars;
    if (c->atmos_static_vars)
        for (int i = c->surf_vars.n; i < surf->n; i++) {
            snprintf(name, sizeof name, "static_%s", surf->name[i]);
            aur__vl_add(atmos, name);
        }
}

/* LevelPatchEmbed: bias, then weights.{v} (sorted), kernels (D, 1, Tmax, P, P). */
static void aur__declare_patch_embed(aur_model *m, int *rc, const aur_aurora_config *c, const char *prefix, const aur_var_list *vars)
{
    aur_var_list sorted;
    aur__sorted(vars, &sorted);
    int64_t D = c->embed_dim, T = c->max_history_size, P = c->patch_size;
    aur__p(m, rc, aur_shape1(D), "%s.bias", prefix);
    for (int i = 0; i < sorted.n; i++) aur__p(m, rc, aur_shape5(D, 1, T, P, P), "%s.weights.%s", prefix, sorted.name[i]);
}

static void aur__declare_encoder(aur_model *m, int *rc, const aur_aurora_config *c)
{
    int64_t D = c->embed_dim, hid = (int64_t)(D * c->mlp_ratio);
    static const char *const embeds[5] = {"pos_embed", "scale_embed", "lead_time_embed", "absolute_time_embed", "atmos_levels_embed"};
    char p[256];
    aur_var_list surf, atmos, levels;
    aur__embed_names(c, &surf, &atmos);
    aur__p(m, rc, aur_shape2(c->latent_levels - 1, D), "encoder.atmos_latents");
    aur__p(m, rc, aur_shape1(D), "encoder.surf_level_encoding");
    aur__declare_linear(m, rc, "encoder.surf_mlp.net.0", hid, D, 1);
    aur__declare_linear(m, rc, "encoder.surf_mlp.net.2", D, hid, 1);
    aur__declare_norm(m, rc, "encoder.surf_norm", D);
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "encoder.%s", embeds[i]);
        aur__declare_linear(m, rc, p, D, D, 1);
    }
    aur__declare_patch_embed(m, rc, c, "encoder.surf_token_embeds", &surf);
    if (!c->n_level_condition) {
        aur__declare_patch_embed(m, rc, c, "encoder.atmos_token_embeds", &atmos);
    } else {
        aur__sorted_levels(c, &levels);
        for (int l = 0; l < levels.n; l++) {
            snprintf(p, sizeof p, "encoder.atmos_token_embeds.layers.%s", levels.name[l]);
            aur__declare_patch_embed(m, rc, c, p, &atmos);
        }
    }
    aur__declare_perceiver(m, rc, "encoder.level_agg", D, c->num_heads, c->enc_depth, c->mlp_ratio, c->stabilise_level_agg);
}

/* LoRA sets on a linear layer: loras.{k}.lora_A (8, in) and lora_B (out, 8). */
static void aur__declare_lora(aur_model *m, int *rc, const aur_aurora_config *c, const char *prefix, int64_t in, int64_t out)
{
    int sets = c->lora_mode == AUR_LORA_ALL ? c->lora_steps : 1;
    for (int k = 0; k < sets; k++) {
        aur__p(m, rc, aur_shape2(8, in), "%s.loras.%d.lora_A", prefix, k);
        aur__p(m, rc, aur_shape2(out, 8), "%s.loras.%d.lora_B", prefix, k);
    }
}

static void aur__declare_block(aur_model *m, int *rc, const aur_aurora_config *c, const char *prefix, int64_t d)
{
    int64_t D = c->embed_dim, hid = (int64_t)(d * c->mlp_ratio);
    char p[256];
    snprintf(p, sizeof p, "%s.norm1.ln_modulation.1", prefix);
    aur__declare_linear(m, rc, p, 2 * d, D, 1);
    snprintf(p, sizeof p, "%s.attn.qkv", prefix);
    aur__declare_linear(m, rc, p, 3 * d, d, 1);
    snprintf(p, sizeof p, "%s.attn.proj", prefix);
    aur__declare_linear(m, rc, p, d, d, 1);
    if (c->use_lora) {
        snprintf(p, sizeof p, "%s.attn.lora_proj", prefix);
        aur__declare_lora(m, rc, c, p, d, d);
        snprintf(p, sizeof p, "%s.attn.lora_qkv", prefix);
        aur__declare_lora(m, rc, c, p, d, 3 * d);
    }
    snprintf(p, sizeof p, "%s.norm2.ln_modulation.1", prefix);
    aur__declare_linear(m, rc, p, 2 * d, D, 1);
    snprintf(p, sizeof p, "%s.mlp.fc1", prefix);
    aur__declare_linear(m, rc, p, hid, d, 1);
    snprintf(p, sizeof p, "%s.mlp.fc2", prefix);
    aur__declare_linear(m, rc, p, d, hid, 1);
}

static void aur__declare_backbone(aur_model *m, int *rc, const aur_aurora_config *c)
{
    int64_t D = c->embed_dim;
    int S = c->n_stages;
    char p[256];
    aur__declare_linear(m, rc, "backbone.time_mlp.0", D, D, 1);
    aur__declare_linear(m, rc, "backbone.time_mlp.2", D, D, 1);
    for (int i = 0; i < S; i++) {
        int64_t d = D << i;
        for (int j = 0; j < c->encoder_depths[i]; j++) {
            snprintf(p, sizeof p, "backbone.encoder_layers.%d.blocks.%d", i, j);
            aur__declare_block(m, rc, c, p, d);
        }
        if (i < S - 1) {
            aur__p(m, rc, aur_shape2(2 * d, 4 * d), "backbone.encoder_layers.%d.downsample.reduction.weight", i);
            snprintf(p, sizeof p, "backbone.encoder_layers.%d.downsample.norm", i);
            aur__declare_norm(m, rc, p, 4 * d);
        }
    }
    for (int i = 0; i < S; i++) {
        int64_t d = D << (S - 1 - i);
        for (int j = 0; j < c->decoder_depths[i]; j++) {
            snprintf(p, sizeof p, "backbone.decoder_layers.%d.blocks.%d", i, j);
            aur__declare_block(m, rc, c, p, d);
        }
        if (i < S - 1) {
            aur__p(m, rc, aur_shape2(2 * d, d), "backbone.decoder_layers.%d.upsample.lin1.weight", i);
            aur__p(m, rc, aur_shape2(d / 2, d / 2), "backbone.decoder_layers.%d.upsample.lin2.weight", i);
            snprintf(p, sizeof p, "backbone.decoder_layers.%d.upsample.norm", i);
            aur__declare_norm(m, rc, p, d / 2);
        }
    }
}

/* The decoder's head names: the variables, then {v}_mod for modulation heads. */
static void aur__head_names(const aur_var_list *vars, const aur_var_list *mod, aur_var_list *out)
{
    char name[AUR_NAME_LEN + 8];
    *out = *vars;
    for (int i = 0; i < vars->n; i++)
        if (aur__vl_find(mod, vars->name[i]) >= 0) {
            snprintf(name, sizeof name, "%s_mod", vars->name[i]);
            aur__vl_add(out, name);
        }
}

static void aur__declare_decoder(aur_model *m, int *rc, const aur_aurora_config *c)
{
    int64_t E = 2 * (int64_t)c->embed_dim, P2 = (int64_t)c->patch_size * c->patch_size;
    aur_var_list surf, atmos, sorted, levels;
    char p[256];
    aur__declare_perceiver(m, rc, "decoder.level_decoder", E, c->num_heads, c->dec_depth, c->dec_mlp_ratio, 0);
    if (c->separate_perceiver.n)
        aur__declare_perceiver(m, rc, "decoder.level_decoder_alternate", E, c->num_heads, c->dec_depth, c->dec_mlp_ratio, 0);
    aur__head_names(&c->surf_vars, &c->modulation_heads, &surf);
    aur__head_names(&c->atmos_vars, &c->modulation_heads, &atmos);
    aur__sorted(&surf, &sorted);
    for (int i = 0; i < sorted.n; i++) {
        snprintf(p, sizeof p, "decoder.surf_heads.%s", sorted.name[i]);
        aur__declare_linear(m, rc, p, P2, E, 1);
    }
    aur__sorted(&atmos, &sorted);
    aur__sorted_levels(c, &levels);
    for (int i = 0; i < sorted.n; i++) {
        if (!c->n_level_condition) {
            snprintf(p, sizeof p, "decoder.atmos_heads.%s", sorted.name[i]);
            aur__declare_linear(m, rc, p, P2, E, 1);
        }
        for (int l = 0; l < levels.n; l++) {
            snprintf(p, sizeof p, "decoder.atmos_heads.%s.layers.%s", sorted.name[i], levels.name[l]);
            aur__declare_linear(m, rc, p, P2, E, 1);
        }
    }
    aur__declare_linear(m, rc, "decoder.atmos_levels_embed", E, E, 1);
}

/* AuroraAirPollution: a Linear(2, 1) per positive variable. */
static void aur__declare_air_pollution(aur_model *m, int *rc, const aur_aurora_config *c)
{
    char p[256];
    aur_var_list sorted;
    aur__sorted(&c->positive_surf_vars, &sorted);
    for (int i = 0; i < sorted.n; i++) {
        snprintf(p, sizeof p, "surf_feature_combiner.%s", sorted.name[i]);
        aur__declare_linear(m, rc, p, 1, 2, 1);
    }
    aur__sorted(&c->positive_atmos_vars, &sorted);
    for (int i = 0; i < sorted.n; i++) {
        snprintf(p, sizeof p, "atmos_feature_combiner.%s", sorted.name[i]);
        aur__declare_linear(m, rc, p, 1, 2, 1);
    }
}

AURDEF int aur_aurora_declare(aur_model *m, const aur_aurora_config *cfg)
{
    int rc = aur__config_check(cfg);
    if (rc) return rc;
    aur__declare_encoder(m, &rc, cfg);
    aur__declare_backbone(m, &rc, cfg);
    aur__declare_decoder(m, &rc, cfg);
    if (cfg->air_pollution) aur__declare_air_pollution(m, &rc, cfg);
    return rc;
}

static const struct aur__stat_init { const char *key; double loc, scale; } aur__builtin_stats[] = {
    {"z_50", 199373.0, 5875.553},
    {"z_100", 157642.1, 5510.64},
    {"z_150", 133141.4, 5823.912},
    {"z_200", 115330.0, 5820.169},
    {"z_250", 101223.1, 5536.585},
    {"z_300", 89414.15, 5091.916},
    {"z_400", 69980.38, 4150.851},
    {"z_500", 54115.37, 3353.187},
    {"z_600", 40648.33, 2695.808},
    {"z_700", 28928.82, 2136.436},
    {"z_850", 13749.78, 1470.321},
    {"z_925", 7015.005, 1228.997},
    {"z_1000", 738.1545, 1072.307},
    {"u_50", 5.653076, 15.29281},
    {"u_100", 10.27951, 13.52611},
    {"u_150", 13.54061, 16.04335},
    {"u_200", 14.20915, 17.6763},
    {"u_250", 13.34584, 17.9671},
    {"u_300", 11.80173, 17.11917},
    {"u_400", 8.817291, 14.34276},
    {"u_500", 6.563273, 11.98419},
    {"u_600", 4.814521, 10.33421},
    {"u_700", 3.345237, 9.168821},
    {"u_850", 1.418379, 8.188043},
    {"u_925", 0.6172657, 7.940808},
    {"u_1000", -0.03328723, 6.141778},
    {"v_50", 0.004226111, 7.058931},
    {"v_100", 0.01411897, 7.47931},
    {"v_150", -0.03697671, 9.57199},
    {"v_200", -0.04507801, 11.88069},
    {"v_250", -0.02980338, 13.38039},
    {"v_300", -0.0229477, 13.34044},
    {"v_400", -0.01771003, 11.22955},
    {"v_500", -0.02387986, 9.181708},
    {"v_600", -0.02716674, 7.803569},
    {"v_700", 0.02153583, 6.87104},
    {"v_850", 0.142815, 6.264443},
    {"v_925", 0.205348, 6.470644},
    {"v_1000", 0.1867637, 5.308203},
    {"t_50", 212.4864, 10.26284},
    {"t_100", 208.4042, 12.52901},
    {"t_150", 213.3201, 8.928709},
    {"t_200", 218.0615, 7.189547},
    {"t_250", 222.771, 8.529282},
    {"t_300", 228.8696, 10.71679},
    {"t_400", 242.1368, 12.69102},
    {"t_500", 252.9492, 13.06447},
    {"t_600", 261.1347, 13.42046},
    {"t_700", 267.401, 14.76523},
    {"t_850", 274.56, 15.5888},
    {"t_925", 277.3572, 16.08798},
    {"t_1000", 281.013, 17.13983},
    {"q_50", 2.67818e-06, 3.571687e-07},
    {"q_100", 2.633677e-06, 5.703754e-07},
    {"q_150", 5.254625e-06, 3.794077e-06},
    {"q_200", 1.940632e-05, 2.267534e-05},
    {"q_250", 5.773618e-05, 7.446644e-05},
    {"q_300", 0.0001273861, 0.0001684361},
    {"q_400", 0.0003855659, 0.0005078644},
    {"q_500", 0.0008529599, 0.001079294},
    {"q_600", 0.001541429, 0.001769722},
    {"q_700", 0.002431637, 0.002549169},
    {"q_850", 0.004575618, 0.004112368},
    {"q_925", 0.006033134, 0.005071058},
    {"q_1000", 0.007030342, 0.005913548},
    {"w_50", -4.83183e-05, 0.02031102},
    {"w_100", -1.158353e-05, 0.03982386},
    {"w_150", 2.323354e-05, 0.07233442},
    {"w_200", 2.460374e-05, 0.106973},
    {"w_250", 3.384949e-05, 0.1431527},
    {"w_300", 0.0001310551, 0.179584},
    {"w_400", 0.0003637421, 0.2365854},
    {"w_500", 0.0004369851, 0.2639899},
    {"w_600", 0.0005889935, 0.2768904},
    {"w_700", 0.003267191, 0.2871598},
    {"w_850", 0.01430376, 0.2900477},
    {"w_925", 0.02180887, 0.2518952},
    {"w_1000", 0.02735809, 0.1737641},
    {"co_50", 0.0, 3.3898e-08},
    {"co_100", 0.0, 1.388527e-07},
    {"co_150", 0.0, 2.058023e-07},
    {"co_200", 0.0, 2.400079e-07},
    {"co_250", 0.0, 2.535403e-07},
    {"co_300", 0.0, 2.594617e-07},
    {"co_400", 0.0, 2.967479e-07},
    {"co_500", 0.0, 3.763697e-07},
    {"co_600", 0.0, 6.095697e-07},
    {"co_700", 0.0, 1.084358e-06},
    {"co_850", 0.0, 3.787436e-06},
    {"co_925", 0.0, 9.559742e-06},
    {"co_1000", 0.0, 1.811231e-05},
    {"no_50", 0.0, 5.58877e-10},
    {"no_100", 0.0, 1.177009e-09},
    {"no_150", 0.0, 1.501596e-09},
    {"no_200", 0.0, 1.021288e-09},
    {"no_250", 0.0, 7.026757e-10},
    {"no_300", 0.0, 5.380344e-10},
    {"no_400", 0.0, 4.131051e-10},
    {"no_500", 0.0, 1.647942e-09},
    {"no_600", 0.0, 1.724509e-08},
    {"no_700", 0.0, 2.791792e-08},
    {"no_850", 0.0, 1.478467e-07},
    {"no_925", 0.0, 2.51289e-07},
    {"no_1000", 0.0, 4.063175e-07},
    {"no2_50", 0.0, 1.184771e-09},
    {"no2_100", 0.0, 1.906433e-09},
    {"no2_150", 0.0, 2.686828e-09},
    {"no2_200", 0.0, 1.976612e-09},
    {"no2_250", 0.0, 1.646603e-09},
    {"no2_300", 0.0, 1.461818e-09},
    {"no2_400", 0.0, 1.455373e-09},
    {"no2_500", 0.0, 1.834311e-09},
    {"no2_600", 0.0, 1.515983e-08},
    {"no2_700", 0.0, 2.405975e-08},
    {"no2_850", 0.0, 9.421924e-08},
    {"no2_925", 0.0, 1.3786e-07},
    {"no2_1000", 0.0, 1.931397e-07},
    {"go3_50", 0.0, 6.646655e-06},
    {"go3_100", 0.0, 3.564464e-06},
    {"go3_150", 0.0, 1.939059e-06},
    {"go3_200", 0.0, 1.180154e-06},
    {"go3_250", 0.0, 7.915061e-07},
    {"go3_300", 0.0, 5.601596e-07},
    {"go3_400", 0.0, 2.986021e-07},
    {"go3_500", 0.0, 2.056183e-07},
    {"go3_600", 0.0, 1.70049e-07},
    {"go3_700", 0.0, 1.860511e-07},
    {"go3_850", 0.0, 2.341993e-07},
    {"go3_925", 0.0, 2.428035e-07},
    {"go3_1000", 0.0, 2.332223e-07},
    {"so2_50", 0.0, 7.246278e-12},
    {"so2_100", 0.0, 1.636122e-09},
    {"so2_150", 0.0, 3.668129e-09},
    {"so2_200", 0.0, 8.572589e-09},
    {"so2_250", 0.0, 1.255334e-08},
    {"so2_300", 0.0, 1.881883e-08},
    {"so2_400", 0.0, 4.548033e-08},
    {"so2_500", 0.0, 1.476261e-07},
    {"so2_600", 0.0, 2.777121e-07},
    {"so2_700", 0.0, 9.13161e-08},
    {"so2_850", 0.0, 5.244673e-07},
    {"so2_925", 0.0, 5.512759e-07},
    {"so2_1000", 0.0, 6.046371e-07},
    {"2t", 278.514, 21.22036},
    {"10u", -0.05135059, 5.547512},
    {"10v", 0.189158, 4.765339},
    {"msl", 100957.8, 1332.246},
    {"z", -1386.496, 58844.67},
    {"lsm", 0.0, 1.0},
    {"slt", 0.0, 7.0},
    {"static_co", 0.0, 1.0},
    {"static_co_log", 0.0, 1.0},
    {"static_so2", 0.0, 1.0},
    {"static_so2_log", 0.0, 1.0},
    {"static_ammonia", 0.0, 1.0},
    {"static_ammonia_log", 0.0, 1.0},
    {"static_nox", 0.0, 1.0},
    {"static_nox_log", 0.0, 1.0},
    {"wmb", 0.0, 1.0},
    {"lat_mask", 0.0, 1.0},
    {"pm1", 0.0, 1.60384e-06},
    {"pm2p5", 0.0, 2.33652e-06},
    {"pm10", 0.0, 6.662347e-06},
    {"tcco", 0.0, 0.005207629},
    {"tc_no", 0.0, 2.865418e-05},
    {"tcno2", 0.0, 6.141358e-05},
    {"gtco3", 0.0, 0.009886098},
    {"tcso2", 0.0, 0.0001574554},
    {"swh", 2.53639, 1.38128},
    {"mwd", 0.0, 1.0},
    {"mwp", 8.61902, 2.13391},
    {"pp1d", 10.6605, 3.12242},
    {"shww", 1.17786, 1.23658},
    {"mdww", 0.0, 1.0},
    {"mpww", 4.22253, 2.08384},
    {"shts", 2.07783, 1.05034},
    {"mdts", 0.0, 1.0},
    {"mpts", 9.45161, 2.18806},
    {"swh1", 1.79443, 1.04481},
    {"mwd1", 0.0, 1.0},
    {"mwp1", 9.9143, 3.25726},
    {"swh2", 0.730807, 0.526008},
    {"mwd2", 0.0, 1.0},
    {"mwp2", 8.95218, 4.38825},
    {"wind", 7.58267, 3.63699},
    {"dwi", 0.0, 1.0},
    {"10u_wave", 0.290337, 6.4374},
    {"10v_wave", 0.126789, 5.40235},
};

/* ==== Aurora: the model object ==== */

typedef struct aur__stat {
    char key[AUR_NAME_LEN + 16];
    double loc, scale;
} aur__stat;

/* Index tables of one layout (a window partition, a patch merge or split),
   made once per grid and kept, since backward needs them. */
typedef struct aur__layout {
    struct aur__layout *next;
    int64_t key[10];
    aur_index fwd, back; /* back: the reverse of a window partition */
    aur_real *mask;      /* windows: (nW, n, n) additive mask, NULL when not shifted */
    int64_t nwin, n;     /* windows per sample and tokens per window */
} aur__layout;

/* An Aurora model: its configuration, its table (m) and what it keeps between calls. */
typedef struct aur__aurora {
    aur_aurora_config cfg;
    aur_model *m;
    aur__stat *stats;                     /* the normalisation statistics by key ("2t", "z_500") */
    int n_stats, cap_stats;
    aur__names stats_index;
    aur__layout *layouts;                 /* the backbone's index tables, made per grid on first use */
    aur_probe_fn probe;                   /* test hook: sees named intermediates */
    void *probe_ctx;
    float *pos_override, *scale_override; /* injected patch encodings (override_L x D each), or NULL */
    int64_t override_L;
} aur__aurora;

/* The Aurora behind a model, or NULL with an error. */
static void aur__aurora_free(void *p);

static aur__aurora *aur__A(const aur_model *m)
{
    if (!m || !m->impl || m->impl_free != aur__aurora_free) {
        aur__err(AUR_EINVAL, "not an Aurora model (make it with aur_aurora_create)");
        return NULL;
    }
    return (aur__aurora *)m->impl;
}

static void aur__layout_free(aur__layout *l)
{
    if (!l) return;
    AUR_FREE(l->fwd.idx);
    AUR_FREE(l->back.idx);
    AUR_FREE(l->mask);
    AUR_FREE(l);
}

static void aur__aurora_free(void *p)
{
    aur__aurora *A = (aur__aurora *)p;
    if (!A) return;
    for (aur__layout *l = A->layouts, *n; l; l = n) {
        n = l->next;
        aur__layout_free(l);
    }
    AUR_FREE(A->stats);
    AUR_FREE(A->stats_index.slot);
    AUR_FREE(A->pos_override);
    AUR_FREE(A->scale_override);
    AUR_FREE(A);
}

AURDEF const aur_aurora_config *aur_aurora_config_of(const aur_model *m)
{
    aur__aurora *A = aur__A(m);
    return A ? &A->cfg : NULL;
}

AURDEF int aur_aurora_set_checkpoint(aur_model *m, unsigned modules)
{
    aur__aurora *A = aur__A(m);
    if (!A) return aur__err(AUR_EINVAL, "aur_aurora_set_checkpoint: not an Aurora model");
    if (modules & ~(unsigned)AUR_CHECKPOINT_ALL) return aur__err(AUR_EINVAL, "aur_aurora_set_checkpoint: 0x%x has bits outside AUR_CHECKPOINT_ALL", modules);
    A->cfg.checkpoint = modules;
    return 0;
}

static const char *aur__stat_key(const void *A, int k) { return ((const aur__aurora *)A)->stats[k].key; }

/* Normalisation statistics a model can use: x' = (x - loc) / scale. */
static int aur__stats_usable(double loc, double scale) { return isfinite(loc) && isfinite(scale) && scale > 0; }

AURDEF int aur_aurora_set_stats(aur_model *m, const char *key, double loc, double scale)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    if (!aur__stats_usable(loc, scale))
        return aur__err(AUR_EINVAL, "statistics for '%s': location %g and scale %g (the scale must be finite and positive)", key, loc, scale);
    if (strlen(key) >= sizeof A->stats[0].key) return aur__err(AUR_EINVAL, "statistics key '%s' is too long", key);
    int i = aur__names_find(&A->stats_index, key, aur__stat_key, A);
    if (i < 0) {
        if (aur__grow((void **)&A->stats, &A->cap_stats, A->n_stats + 1, sizeof(aur__stat))) return AUR_ENOMEM;
        snprintf(A->stats[A->n_stats].key, sizeof A->stats[0].key, "%s", key);
        if (aur__names_add(&A->stats_index, A->n_stats, aur__stat_key, A)) return AUR_ENOMEM;
        i = A->n_stats++;
    }
    A->stats[i].loc = loc;
    A->stats[i].scale = scale;
    return 0;
}

AURDEF int aur_aurora_get_stats(const aur_model *m, const char *key, double *loc, double *scale)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    int i = aur__names_find(&A->stats_index, key, aur__stat_key, A);
    if (i >= 0) {
        *loc = A->stats[i].loc;
        *scale = A->stats[i].scale;
        return 0;
    }
    return aur__err(AUR_EINVAL, "no normalisation statistics for '%s'\n---> HINT: register them with aur_aurora_set_stats(m, \"%s\", loc, scale)",
                    key, key);
}

/* A surface or static variable's statistics: surf_stats first, then the registry. */
static int aur__surf_stats(const aur__aurora *A, const char *v, double *loc, double *scale)
{
    for (int i = 0; i < A->cfg.n_surf_stats; i++)
        if (!strcmp(A->cfg.surf_stats_name[i], v)) {
            *loc = A->cfg.surf_stats[i][0];
            *scale = A->cfg.surf_stats[i][1];
            return 0;
        }
    return aur_aurora_get_stats(A->m, v, loc, scale);
}

/* An atmospheric variable's statistics at each level: keys "{v}_{level}". */
static int aur__atmos_stats(const aur__aurora *A, const char *v, const double *levels, int C, double *loc, double *scale)
{
    char key[AUR_NAME_LEN + 32], lv[32];
    for (int c = 0; c < C; c++) {
        aur_level_to_str(levels[c], lv, sizeof lv);
        snprintf(key, sizeof key, "%s_%s", v, lv);
        if (aur_aurora_get_stats(A->m, key, &loc[c], &scale[c])) return AUR_EINVAL;
    }
    return 0;
}

/* ---- initialisation (the reference's init_weights and module inits) ---- */

typedef struct aur__rng {
    uint64_t s;
} aur__rng;

static double aur__rng_uniform(aur__rng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    return (double)(aur__mix64(r->s) >> 11) * (1.0 / 9007199254740992.0);
}

static double aur__rng_normal(aur__rng *r)
{
    double u = aur__rng_uniform(r) + 1e-300, v = aur__rng_uniform(r);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static int aur__ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The initial value of one parameter element, by the reference's rules: aurora/model/util.py:
   init_weights (Linear weights N(0, 0.02), truncated at +-2 absolute), the modules' own
   init_weights (patchembed.py: LevelPatchEmbed, film.py: AdaptiveLayerNorm, lora.py: LoRA)
   and the encoder's latents (encoder.py: Perceiver3DEncoder.__init__). */
static double aur__init_value(const aur_aurora_config *c, const aur_tensor *p, aur__rng *r)
{
    const char *n = p->name;
    double tk = 1.0 / sqrt((double)c->max_history_size * c->patch_size * c->patch_size);
    if (strstr(n, "_token_embeds.")) return (2 * aur__rng_uniform(r) - 1) * tk; /* kernels and their shared bias */
    if (strstr(n, "ln_modulation.1.")) return 0;                                 /* every residual branch starts at 0 */
    if (aur__ends_with(n, ".lora_B")) return 0;
    if (aur__ends_with(n, ".lora_A")) return (2 * aur__rng_uniform(r) - 1) / sqrt((double)p->shape[1]);
    if (strstr(n, "feature_combiner.")) return aur__ends_with(n, ".weight") ? 0.5 : 0;
    if (p->ndim == 1 && !strcmp(n, "encoder.surf_level_encoding")) return 0.02 * aur__rng_normal(r);
    if (p->ndim == 1) /* biases 0; LayerNorm weights 1 */
        return aur__ends_with(n, ".weight") ? 1 : 0;
    return 0.02 * aur__rng_normal(r); /* Linear weights and the latents: N(0, 0.02^2) (trunc at +-2: no effect) */
}

/* Sets every parameter and buffer in table order: fill writes p's p->numel
   initial values into a host buffer (Aurora's and Surya's initialisations). */
static int aur__init_params(aur_model *m, void (*fill)(void *ctx, const aur_tensor *p, aur_real *v), void *ctx)
{
    int rc = 0;
    if (m->device == AUR_META) return 0; /* no values to draw */
    for (int i = 0; i < m->n && !rc; i++) {
        aur_tensor *p = m->params[i];
        aur_real *v = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(p->numel ? p->numel : 1), "initial weights");
        if (!v) return AUR_ENOMEM;
        fill(ctx, p, v);
        rc = aur_tensor_set(p, v, p->numel);
        AUR_FREE(v);
    }
    return rc;
}

/* An empty model with a zeroed implementation struct of impl_size bytes attached (Aurora, Surya). */
static aur_model *aur__model_with_impl(size_t impl_size, void (*impl_free)(void *), const char *what)
{
    aur_model *m = aur_model_create();
    void *impl = aur__calloc(impl_size, what);
    if (!m || !impl) {
        AUR_FREE(impl);
        aur_model_free(m);
        return NULL;
    }
    m->impl = impl;
    m->impl_free = impl_free;
    return m;
}

typedef struct aur__aurora_init {
    const aur_aurora_config *cfg;
    aur__rng r;
} aur__aurora_init;

static void aur__aurora_fill(void *ctx, const aur_tensor *p, aur_real *v)
{
    aur__aurora_init *in = (aur__aurora_init *)ctx;
    for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)aur__init_value(in->cfg, p, &in->r);
}

AURDEF int aur_aurora_init_weights(aur_model *m, uint64_t seed)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    aur__aurora_init in = {&A->cfg, {seed * 0x9E3779B97F4A7C15ull + 1}};
    return aur__init_params(m, aur__aurora_fill, &in);
}

AURDEF aur_model *aur_aurora_declare_model(const aur_aurora_config *cfg)
{
    aur_model *m = aur__model_with_impl(sizeof(aur__aurora), aur__aurora_free, "an Aurora model");
    if (!m) return NULL;
    aur__aurora *A = (aur__aurora *)m->impl;
    A->cfg = *cfg;
    A->m = m;
    int rc = aur_aurora_declare(m, cfg);
    for (size_t i = 0; i < sizeof aur__builtin_stats / sizeof aur__builtin_stats[0] && !rc; i++)
        rc = aur_aurora_set_stats(m, aur__builtin_stats[i].key, aur__builtin_stats[i].loc, aur__builtin_stats[i].scale);
    if (rc) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}

AURDEF aur_model *aur_aurora_create(const aur_aurora_config *cfg, aur_device device, uint64_t seed)
{
    aur_model *m = aur_aurora_declare_model(cfg);
    if (m && (aur_model_alloc(m, device) || aur_aurora_init_weights(m, seed))) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}

AURDEF void aur_aurora_set_probe(aur_model *m, aur_probe_fn fn, void *ctx)
{
    aur__aurora *A = aur__A(m);
    if (!A) return;
    A->probe = fn;
    A->probe_ctx = ctx;
}

AURDEF int aur_aurora_override_encodings(aur_model *m, const float *pos, const float *scale, int64_t L)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    AUR_FREE(A->pos_override);
    AUR_FREE(A->scale_override);
    A->pos_override = A->scale_override = NULL;
    A->override_L = 0;
    if (!pos || !scale) return 0;
    size_t n = (size_t)L * (size_t)A->cfg.embed_dim;
    A->pos_override = (float *)aur__malloc(sizeof(float) * n, "encodings");
    A->scale_override = (float *)aur__malloc(sizeof(float) * n, "encodings");
    if (!A->pos_override || !A->scale_override) return AUR_ENOMEM;
    memcpy(A->pos_override, pos, sizeof(float) * n);
    memcpy(A->scale_override, scale, sizeof(float) * n);
    A->override_L = L;
    return 0;
}

/* ==== Aurora: Fourier encodings ====
   Computed once per call on the host in double precision (aurora/model/fourier.py:
   FourierExpansion, aurora/model/posencoding.py): the phases
   reach 1e8 rad, so float32 sin would not be reproducible between builds. */

#define AUR__PI 3.14159265358979323846
#define AUR__EARTH_R 6378.137
#define AUR__A_MIN 1.0814085263058073e-04

/* d/2 log-spaced wavelengths in [lower, upper], as torch.logspace computes them (two-sided). */
static void aur__wavenumbers(double lower, double upper, int d, double *k)
{
    int n = d / 2;
    double a = log10(lower), b = log10(upper), s = n > 1 ? (b - a) / (n - 1) : 0;
    for (int i = 0; i < n; i++) {
        double lam = i < n / 2 ? pow(10, a + s * i) : pow(10, b - s * (n - 1 - i));
        k[i] = (1.0 / lam) * 6.283185307179586; /* reciprocal first, as torch evaluates 2 pi / lambda */
    }
}

/* FourierExpansion: [sin(x k_0..k_{n-1}), cos(...)], each rounded to float32. */
static int aur__fourier(const double *x, int64_t count, double lower, double upper, int d, int check, float *out, const char *what)
{
    double k[4096];
    if (d % 2 || d / 2 > 4096) return aur__err(AUR_EINVAL, "%s encoding: dimension %d must be even (and <= 8192)", what, d);
    double mx = 0;
    for (int64_t j = 0; j < count; j++) mx = fabs(x[j]) > mx ? fabs(x[j]) : mx;
    for (int64_t j = 0; check && j < count; j++)
        if (x[j] != 0 && !(fabs(x[j]) >= lower && mx <= upper))
            return aur__err(AUR_EINVAL, "%s encoding: value %.9g is outside [%g, %g] (and not 0)", what, x[j], lower, upper);
    aur__wavenumbers(lower, upper, d, k);
    for (int64_t j = 0; j < count; j++)
        for (int i = 0; i < d / 2; i++) {
            double ph = x[j] * k[i];
            out[j * d + i] = (float)sin(ph);
            out[j * d + d / 2 + i] = (float)cos(ph);
        }
    return 0;
}

/* Levels in hPa: integers exactly, and any fractional level rounded to float32 (as torch builds the tensor). */
static void aur__levels_input(const double *levels, int C, double *x)
{
    int any_frac = 0;
    for (int c = 0; c < C; c++) any_frac |= levels[c] != floor(levels[c]);
    for (int c = 0; c < C; c++) x[c] = any_frac ? (double)(float)levels[c] : levels[c];
}

/* The float32 lat/lon grid value at (i, j). */
static float aur__grid(const float *g, int is_2d, int64_t i, int64_t j, int64_t W, int along_rows)
{
    if (is_2d) return g[i * W + j];
    return along_rows ? g[i] : g[j];
}

/* Position and scale encodings of every patch (aurora/model/posencoding.py:
   pos_scale_enc): (L, D) each, with scratch from the tape's arena. */
static int aur__patch_encodings(aur_tape *t, const aur_batch *b, int64_t H, int64_t W, int P, int D, float *pos, float *scl)
{
    const int64_t h = H / P, w = W / P;
    const float cdeg = (float)0.017453292519943295;
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    double *mlat = (double *)aur__alloc(t, AUR_CPU, sizeof(double) * (size_t)(3 * h * w + 1));
    float *tmp = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(D / 2));
    if (!mlat || !tmp) {
        aur__arena_release(&t->main[AUR_CPU], mk);
        return AUR_ENOMEM;
    }
    double *mlon = mlat + h * w, *root = mlon + h * w;
    int rc = 0;
    for (int64_t pi = 0; pi < h && !rc; pi++)
        for (int64_t pj = 0; pj < w && !rc; pj++) {
            float slat = 0, slon = 0, lat_max = -INFINITY, lat_min = INFINITY, lon_max = -INFINITY, lon_min = INFINITY;
            for (int64_t r = pi * P; r < (pi + 1) * P; r++) /* the CPU average-pool order */
                for (int64_t c = pj * P; c < (pj + 1) * P; c++) {
                    float la = aur__grid(b->lat, b->lat_2d, r, c, W, 1), lo = aur__grid(b->lon, b->lon_2d, r, c, W, 0);
                    slat = slat + la;
                    slon = slon + lo;
                    lat_max = la > lat_max ? la : lat_max;
                    lat_min = la < lat_min ? la : lat_min;
                    lon_max = lo > lon_max ? lo : lon_max;
                    lon_min = lo < lon_min ? lo : lon_min;
                }
            int64_t l = pi * w + pj;
            mlat[l] = (double)(float)(slat / (float)(P * P));
            mlon[l] = (double)(float)(slon / (float)(P * P));
            if (!(lat_max > lat_min && lon_max > lon_min && fabsf(lat_max) <= 90 && fabsf(lat_min) <= 90 && lon_min >= 0 && lon_max <= 360)) {
                rc = aur__err(AUR_EINVAL, "patch (%lld, %lld): latitudes [%g, %g], longitudes [%g, %g] do not span a valid area",
                              (long long)pi, (long long)pj, lat_min, lat_max, lon_min, lon_max);
                break;
            }
            /* the area in float32, one rounding per operation, as posencoding.py: patch_root_area */
            float a1 = lat_max * cdeg, a2 = lat_min * cdeg, o1 = lon_max * cdeg, o2 = lon_min * cdeg;
            float ds = (float)sin((double)a1) - (float)sin((double)a2), dl = o1 - o2;
            float area = ((float)127516117.97744706 * ds) * dl;
            if (!(area > 0)) rc = aur__err(AUR_EINVAL, "patch (%lld, %lld) has area %g", (long long)pi, (long long)pj, area);
            root[l] = (double)(float)sqrt((double)area);
        }
    for (int64_t l = 0; l < h * w && !rc; l++) {
        rc = aur__fourier(&mlat[l], 1, 0.01, 720, D / 2, 1, tmp, "position (latitude)");
        if (!rc) memcpy(pos + l * D, tmp, sizeof(float) * (size_t)(D / 2));
        if (!rc) rc = aur__fourier(&mlon[l], 1, 0.01, 720, D / 2, 1, tmp, "position (longitude)");
        if (!rc) memcpy(pos + l * D + D / 2, tmp, sizeof(float) * (size_t)(D / 2));
    }
    if (!rc) rc = aur__fourier(root, h * w, AUR__A_MIN, 4 * AUR__PI * AUR__EARTH_R * AUR__EARTH_R, D, 1, scl, "scale");
    aur__arena_release(&t->main[AUR_CPU], mk);
    return rc;
}

/* ==== Aurora: layouts (index tables of the backbone's shuffles) ==== */

enum { AUR__LAYOUT_WINDOWS = 1, AUR__LAYOUT_MERGE = 2, AUR__LAYOUT_SPLIT = 3 };

static aur__layout *aur__layout_find(aur__aurora *A, const int64_t *key)
{
    for (aur__layout *l = A->layouts; l; l = l->next)
        if (!memcmp(l->key, key, sizeof l->key)) return l;
    return NULL;
}

/* A layout's tables, not yet in the cache: the caller fills them, then publishes them. */
static aur__layout *aur__layout_new(const int64_t *key, int64_t n_fwd, int64_t n_back)
{
    aur__layout *l = (aur__layout *)aur__calloc(sizeof *l, "a layout");
    if (!l) return NULL;
    memcpy(l->key, key, sizeof l->key);
    l->fwd.idx = (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)(n_fwd + 1), "an index table");
    l->back.idx = n_back ? (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)n_back, "an index table") : NULL;
    if (!l->fwd.idx || (n_back && !l->back.idx)) {
        aur__layout_free(l);
        return NULL;
    }
    l->fwd.n_out = n_fwd;
    l->back.n_out = n_back;
    l->fwd.injective = l->back.injective = 1;
    return l;
}

/* Puts a complete layout in the model's cache, so a failure halfway never leaves a half-built entry. */
static aur__layout *aur__layout_publish(aur__aurora *A, aur__layout *l)
{
    l->next = A->layouts;
    A->layouts = l;
    return l;
}

/* Window and shift per axis (aurora/model/util.py: maybe_adjust_windows): an
   axis no longer than its window takes the whole axis and no shift. */
static void aur__adjust_window(const int *window, int shifted, const int64_t *res, int64_t *ws, int64_t *ss)
{
    for (int a = 0; a < 3; a++) {
        ws[a] = window[a];
        ss[a] = shifted ? window[a] / 2 : 0;
        if (res[a] <= window[a]) {
            ws[a] = res[a];
            ss[a] = 0;
        }
    }
}

/* Shifted-window group label of a position on one axis (swin3d.py: compute_3d_shifted_window_mask). */
static int aur__shift_label(int64_t i, int64_t N, int64_t w, int64_t s)
{
    if (s == 0) return 2; /* Python's slices with s = 0 give the last group everywhere */
    return i < N - w ? 0 : i < N - s ? 1 : 2;
}

/* Roll by -ss, pad, partition into windows; its reverse; and the shift mask. */
static aur__layout *aur__windows(aur__aurora *A, const int64_t *res, const int *window, int shifted)
{
    int64_t ws[3], ss[3], pb[3], pad[3], np[3], nw[3];
    aur__adjust_window(window, shifted, res, ws, ss);
    int64_t key[10] = {AUR__LAYOUT_WINDOWS, res[0], res[1], res[2], ws[0], ws[1], ws[2], ss[0], ss[1], ss[2]};
    aur__layout *l = aur__layout_find(A, key);
    if (l) return l;
    for (int a = 0; a < 3; a++) {
        pad[a] = (ws[a] - res[a] % ws[a]) % ws[a];
        pb[a] = pad[a] / 2; /* split padding: the smaller half before */
        np[a] = res[a] + pad[a];
        nw[a] = np[a] / ws[a];
    }
    const int64_t C = res[0], H = res[1], W = res[2], n = ws[0] * ws[1] * ws[2], nwin = nw[0] * nw[1] * nw[2];
    l = aur__layout_new(key, nwin * n, C * H * W);
    if (!l) return NULL;
    l->nwin = nwin;
    l->n = n;
    l->fwd.n_in = C * H * W;
    l->back.n_in = nwin * n;
    int has_shift = ss[0] || ss[1] || ss[2];
    int *group = (int *)aur__malloc(sizeof(int) * (size_t)(nwin * n), "window groups");
    if (has_shift) l->mask = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(nwin * n * n), "a window mask");
    if (!group || (has_shift && !l->mask)) {
        AUR_FREE(group);
        aur__layout_free(l);
        return NULL;
    }
    for (int64_t win = 0; win < nwin; win++)
        for (int64_t tok = 0; tok < n; tok++) {
            int64_t iw = win % nw[2], ih = (win / nw[2]) % nw[1], ic = win / (nw[1] * nw[2]);
            int64_t tw = tok % ws[2], th = (tok / ws[2]) % ws[1], tc = tok / (ws[1] * ws[2]);
            int64_t c = ic * ws[0] + tc - pb[0], h = ih * ws[1] + th - pb[1], w = iw * ws[2] + tw - pb[2];
            int64_t row = win * n + tok;
            if (c < 0 || c >= C || h < 0 || h >= H || w < 0 || w >= W) {
                l->fwd.idx[row] = -1;
                group[row] = 27; /* padding is its own group */
                continue;
            }
            /* x'[c,h,w] = x[c+ss, h+ss, w+ss] (torch.roll by -ss) */
            l->fwd.idx[row] = (((c + ss[0]) % C) * H + (h + ss[1]) % H) * W + (w + ss[2]) % W;
            /* the reverse rolls back by +ss: output (c0,h0,w0) reads window row of (c0-ss, h0-ss, w0-ss) */
            int64_t c0 = (c + ss[0]) % C, h0 = (h + ss[1]) % H, w0 = (w + ss[2]) % W;
            l->back.idx[(c0 * H + h0) * W + w0] = row;
            int lw = aur__shift_label(w, W, ws[2], ss[2]);
            group[row] = 9 * aur__shift_label(c, C, ws[0], ss[0]) + 3 * aur__shift_label(h, H, ws[1], ss[1]) + (lw ? 2 : 0);
        }
    for (int64_t win = 0; has_shift && win < nwin; win++) /* -100 between groups, as the reference (not -inf) */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                l->mask[(win * n + i) * n + j] = group[win * n + i] == group[win * n + j] ? 0 : -100;
    AUR_FREE(group);
    return aur__layout_publish(A, l);
}

/* PatchMerging3D: (C, H, W) tokens -> (C, H2, W2) tokens of 4 neighbours,
   [x(2i,2j), x(2i,2j+1), x(2i+1,2j), x(2i+1,2j+1)], zero-padded bottom/right. */
static aur__layout *aur__merge_layout(aur__aurora *A, const int64_t *res)
{
    int64_t key[10] = {AUR__LAYOUT_MERGE, res[0], res[1], res[2], 0, 0, 0, 0, 0, 0};
    aur__layout *l = aur__layout_find(A, key);
    if (l) return l;
    const int64_t C = res[0], H = res[1], W = res[2], H2 = (H + H % 2) / 2, W2 = (W + W % 2) / 2;
    l = aur__layout_new(key, C * H2 * W2 * 4, 0);
    if (!l) return NULL;
    l->fwd.n_in = C * H * W;
    for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < H2; i++)
            for (int64_t j = 0; j < W2; j++)
                for (int k = 0; k < 4; k++) {
                    int64_t hh = 2 * i + k / 2, ww = 2 * j + k % 2;
                    l->fwd.idx[((c * H2 + i) * W2 + j) * 4 + k] = hh < H && ww < W ? (c * H + hh) * W + ww : -1;
                }
    return aur__layout_publish(A, l);
}

/* PatchSplitting3D: token (c,i,j) with 4 sub-rows (h,w) -> grid (C, 2H-cH, 2W-cW). */
static aur__layout *aur__split_layout(aur__aurora *A, const int64_t *res, int64_t cH, int64_t cW)
{
    int64_t key[10] = {AUR__LAYOUT_SPLIT, res[0], res[1], res[2], cH, cW, 0, 0, 0, 0};
    aur__layout *l = aur__layout_find(A, key);
    if (l) return l;
    const int64_t C = res[0], H = res[1], W = res[2], H2 = 2 * H - cH, W2 = 2 * W - cW;
    l = aur__layout_new(key, C * H2 * W2, 0);
    if (!l) return NULL;
    l->fwd.n_in = C * H * W * 4;
    for (int64_t c = 0; c < C; c++)
        for (int64_t r = 0; r < H2; r++)
            for (int64_t s = 0; s < W2; s++)
                l->fwd.idx[(c * H2 + r) * W2 + s] = ((c * H + r / 2) * W + s / 2) * 4 + (r % 2) * 2 + s % 2;
    return aur__layout_publish(A, l);
}

/* ==== Aurora: batches ==== */

AURDEF void aur_batch_free(aur_batch *b)
{
    if (!b || b->on_tape) return;
    for (int i = 0; b->owns_tensors && i < b->surf_names.n; i++) aur_tensor_free(b->surf[i]);
    for (int i = 0; b->owns_tensors && i < b->static_names.n; i++) aur_tensor_free(b->statics[i]);
    for (int i = 0; b->owns_tensors && i < b->atmos_names.n; i++) aur_tensor_free(b->atmos[i]);
    AUR_FREE(b->lat);
    AUR_FREE(b->lon);
    AUR_FREE(b->time);
    AUR_FREE(b);
}

/* An empty batch struct with lat/lon/time buffers of the given sizes. */
static aur_batch *aur__batch_shell(int B, int T, int C, int H, int W, int lat_2d, int lon_2d)
{
    aur_batch *b = (aur_batch *)aur__calloc(sizeof *b, "a batch");
    if (!b) return NULL;
    b->B = B;
    b->T = T;
    b->C = C;
    b->H = H;
    b->W = W;
    b->lat_2d = lat_2d;
    b->lon_2d = lon_2d;
    b->lat = (float *)aur__calloc(sizeof(float) * (size_t)(lat_2d ? H * W : H) + 1, "latitudes");
    b->lon = (float *)aur__calloc(sizeof(float) * (size_t)(lon_2d ? H * W : W) + 1, "longitudes");
    b->time = (double *)aur__calloc(sizeof(double) * (size_t)B + 1, "times");
    if (!b->lat || !b->lon || !b->time) {
        aur_batch_free(b);
        return NULL;
    }
    return b;
}

/* The same on the tape (a step's predictions and the rollout's inputs): the
   struct from the tape's result blocks, the coordinates in its arena. */
static aur_batch *aur__batch_on_tape(aur_tape *t, int B, int T, int C, int H, int W, int lat_2d, int lon_2d)
{
    aur_batch *b = (aur_batch *)aur__tape_object(t, sizeof *b);
    if (!b) return NULL;
    b->on_tape = 1;
    b->B = B, b->T = T, b->C = C, b->H = H, b->W = W;
    b->lat_2d = lat_2d;
    b->lon_2d = lon_2d;
    b->lat = (float *)aur_tape_alloc(t, sizeof(float) * (size_t)(lat_2d ? H * W : H));
    b->lon = (float *)aur_tape_alloc(t, sizeof(float) * (size_t)(lon_2d ? H * W : W));
    b->time = (double *)aur_tape_alloc(t, sizeof(double) * (size_t)B);
    return b->lat && b->lon && b->time ? b : NULL;
}

/* A batch on the tape with src's metadata: its grid's first H rows, times,
   levels, rollout step and variable names; T history steps, no tensors yet. */
static aur_batch *aur__batch_like(aur_tape *t, const aur_batch *src, int T, int H)
{
    aur_batch *b = aur__batch_on_tape(t, src->B, T, src->C, H, src->W, src->lat_2d, src->lon_2d);
    if (!b) return NULL;
    memcpy(b->lat, src->lat, sizeof(float) * (size_t)(src->lat_2d ? H * src->W : H));
    memcpy(b->lon, src->lon, sizeof(float) * (size_t)(src->lon_2d ? H * src->W : src->W));
    memcpy(b->time, src->time, sizeof(double) * (size_t)src->B);
    memcpy(b->levels, src->levels, sizeof b->levels);
    b->rollout_step = src->rollout_step;
    b->surf_names = src->surf_names;
    b->static_names = src->static_names;
    b->atmos_names = src->atmos_names;
    return b;
}

/* aur_batch_create with the tensors on dev (zeroed; AUR_META: shapes only). */
static aur_batch *aur__batch_create_on(aur_device dev, int B, int T, int C, int H, int W, const aur_var_list *surf,
                                       const aur_var_list *statics, const aur_var_list *atmos)
{
    if (B < 1 || T < 1 || C < 0 || C > AUR_MAX_LEVELS || H < 1 || W < 1) {
        aur__err(AUR_EINVAL, "aur_batch_create: sizes B %d T %d C %d H %d W %d", B, T, C, H, W);
        return NULL;
    }
    aur_batch *b = aur__batch_shell(B, T, C, H, W, 0, 0);
    if (!b) return NULL;
    b->owns_tensors = 1;
    int ok = 1;
    if (surf) b->surf_names = *surf;
    if (statics) b->static_names = *statics;
    if (atmos) b->atmos_names = *atmos;
    for (int i = 0; i < b->surf_names.n && ok; i++) ok = (b->surf[i] = aur_tensor_create(AUR_F32, dev, aur_shape4(B, T, H, W))) != NULL;
    for (int i = 0; i < b->static_names.n && ok; i++) ok = (b->statics[i] = aur_tensor_create(AUR_F32, dev, aur_shape2(H, W))) != NULL;
    for (int i = 0; i < b->atmos_names.n && ok; i++)
        ok = (b->atmos[i] = aur_tensor_create(AUR_F32, dev, aur_shape5(B, T, C, H, W))) != NULL;
    if (!ok) {
        aur_batch_free(b);
        return NULL;
    }
    return b;
}

/* A host batch of T steps with layout's sizes, grid shape and names (tensors
   zeroed, in pinned memory when asked), for a series' windows. */
static aur_batch *aur__batch_alloc_like(const aur_batch *layout, int T, int pinned)
{
    const aur_batch *l = layout;
    aur_batch *b = aur__batch_shell(l->B, T, l->C, l->H, l->W, l->lat_2d, l->lon_2d);
    if (!b) return NULL;
    b->owns_tensors = 1;
    b->surf_names = l->surf_names, b->static_names = l->static_names, b->atmos_names = l->atmos_names;
    aur_shape s4 = aur_shape4(l->B, T, l->H, l->W), s5 = aur_shape5(l->B, T, l->C, l->H, l->W), s2 = aur_shape2(l->H, l->W);
    int ok = 1;
    for (int i = 0; i < l->surf_names.n && ok; i++)
        ok = (b->surf[i] = pinned ? aur__tensor_create_pinned(AUR_F32, s4) : aur_tensor_create(AUR_F32, AUR_CPU, s4)) != NULL;
    for (int i = 0; i < l->static_names.n && ok; i++)
        ok = (b->statics[i] = pinned ? aur__tensor_create_pinned(AUR_F32, s2) : aur_tensor_create(AUR_F32, AUR_CPU, s2)) != NULL;
    for (int i = 0; i < l->atmos_names.n && ok; i++)
        ok = (b->atmos[i] = pinned ? aur__tensor_create_pinned(AUR_F32, s5) : aur_tensor_create(AUR_F32, AUR_CPU, s5)) != NULL;
    if (!ok) aur_batch_free(b);
    return ok ? b : NULL;
}

AURDEF aur_batch *aur_batch_create(int B, int T, int C, int H, int W, const aur_var_list *surf, const aur_var_list *statics,
                                   const aur_var_list *atmos)
{
    return aur__batch_create_on(AUR_CPU, B, T, C, H, W, surf, statics, atmos);
}

static aur_tensor *aur__vl_get(const aur_var_list *l, aur_tensor *const *t, const char *name)
{
    int i = aur__vl_find(l, name);
    return i < 0 ? NULL : t[i];
}
AURDEF aur_tensor *aur_batch_surf(const aur_batch *b, const char *name) { return aur__vl_get(&b->surf_names, b->surf, name); }
AURDEF aur_tensor *aur_batch_atmos(const aur_batch *b, const char *name) { return aur__vl_get(&b->atmos_names, b->atmos, name); }
AURDEF aur_tensor *aur_batch_static(const aur_batch *b, const char *name) { return aur__vl_get(&b->static_names, b->statics, name); }

/* Variable names for a group: from the metadata's comma list, else every
   "{group}/{v}" tensor in name order. */
static int aur__batch_names(const aur_st_file *f, const char *group, aur_var_list *out)
{
    char key[64];
    memset(out, 0, sizeof *out);
    snprintf(key, sizeof key, "%s_vars", group);
    const char *list = aur_st_meta(f, key);
    if (list) return aur__vl_split(out, list, ", ");
    size_t k = strlen(group);
    for (int i = 0; i < f->n; i++)
        if (!strncmp(f->tensors[i].name, group, k) && f->tensors[i].name[k] == '/')
            if (aur__vl_add(out, f->tensors[i].name + k + 1)) return AUR_EINVAL;
    return 0;
}

/* The entry "{group}/{name}" with an expected shape (-1 = any), or NULL with an error naming it. */
static const aur_st_tensor *aur__batch_entry(const aur_st_file *f, const char *group, const char *name, int ndim, const int64_t *want)
{
    char key[160], s1[64];
    snprintf(key, sizeof key, "%s/%s", group, name);
    const aur_st_tensor *e = aur_st_find(f, key);
    if (!e) return aur__err(AUR_EFORMAT, "%s: batch variable '%s' is missing", f->path, key), (const aur_st_tensor *)NULL;
    int ok = e->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 || e->shape[i] == want[i];
    if (!ok)
        return aur__err(AUR_ESHAPE, "%s: '%s' has shape %s; expected rank %d matching the other variables", f->path, key,
                        aur_shape_str(e->shape, e->ndim, s1, sizeof s1), ndim), (const aur_st_tensor *)NULL;
    return e;
}

/* Reads "{group}/{name}" with an expected shape (-1 = any) into a new owned tensor, refusing NaN/Inf. */
static aur_tensor *aur__batch_read(const aur_st_file *f, const char *group, const char *name, int ndim, const int64_t *want,
                                   int keep_nonfinite)
{
    const aur_st_tensor *e = aur__batch_entry(f, group, name, ndim, want);
    if (!e) return NULL;
    aur_tensor *t = aur_tensor_create(AUR_F32, AUR_CPU, aur_shapev(e->ndim, e->shape));
    if (!t || aur_st_read(f, e, AUR_F32, t->data)) {
        aur_tensor_free(t);
        return NULL;
    }
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(aur_tensor_f32(t)[i])) {
            bad++;
            first = first < 0 ? i : first;
        }
    if (bad && !keep_nonfinite) {
        aur__err(AUR_ENAN, "%s: variable '%s/%s' has %lld NaN or infinite values (first at flat index %lld)", f->path, group, name,
                 (long long)bad, (long long)first);
        aur_tensor_free(t);
        return NULL;
    }
    return t;
}

/* Reads a 1-D or 2-D coordinate into host floats. */
static float *aur__batch_coord(const aur_st_file *f, const char *name, int64_t n1, int64_t H, int64_t W, int *is_2d)
{
    const aur_st_tensor *e = aur_st_find(f, name);
    char s1[64];
    if (!e || !((e->ndim == 1 && e->shape[0] == n1) || (e->ndim == 2 && e->shape[0] == H && e->shape[1] == W))) {
        aur__err(AUR_EFORMAT, "%s: '%s' %s; expected (%lld) or (%lld, %lld)", f->path, name,
                 e ? aur_shape_str(e->shape, e->ndim, s1, sizeof s1) : "is missing", (long long)n1, (long long)H, (long long)W);
        return NULL;
    }
    *is_2d = e->ndim == 2;
    aur_real *tmp = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)e->numel, "coordinates");
    float *out = (float *)aur__malloc(sizeof(float) * (size_t)e->numel, "coordinates");
    if (tmp && out && !aur_st_read(f, e, AUR_F32, tmp)) {
        for (int64_t i = 0; i < e->numel; i++) out[i] = (float)tmp[i];
        AUR_FREE(tmp);
        return out;
    }
    AUR_FREE(tmp);
    AUR_FREE(out);
    return NULL;
}

/* Sizes (B, T, C, H, W) from the first variables present. */
static int aur__batch_sizes(const aur_st_file *f, const aur_var_list *surf, const aur_var_list *atmos, int64_t *sz)
{
    char key[160];
    const aur_st_tensor *e = NULL;
    if (surf->n) {
        snprintf(key, sizeof key, "surf/%s", surf->name[0]);
        if ((e = aur_st_find(f, key)) && e->ndim == 4) {
            sz[0] = e->shape[0], sz[1] = e->shape[1], sz[3] = e->shape[2], sz[4] = e->shape[3];
        }
    }
    if (atmos->n) {
        snprintf(key, sizeof key, "atmos/%s", atmos->name[0]);
        const aur_st_tensor *a = aur_st_find(f, key);
        if (a && a->ndim == 5) {
            sz[0] = a->shape[0], sz[1] = a->shape[1], sz[2] = a->shape[2], sz[3] = a->shape[3], sz[4] = a->shape[4];
            e = a;
        }
    }
    if (!e) return aur__err(AUR_EFORMAT, "%s: no surf/{v} (B,T,H,W) or atmos/{v} (B,T,C,H,W) variables to read the sizes from", f->path);
    if (sz[0] < 1 || sz[1] < 1 || sz[3] < 1 || sz[4] < 1 || sz[2] > AUR_MAX_LEVELS)
        return aur__err(AUR_EFORMAT, "%s: batch sizes (B %lld, T %lld, C %lld, H %lld, W %lld) are not usable", f->path,
                        (long long)sz[0], (long long)sz[1], (long long)sz[2], (long long)sz[3], (long long)sz[4]);
    return 0;
}

/* "a,b,c" -> doubles; returns the count or -1. */
static int aur__parse_doubles(const char *s, double *out, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        char *end;
        out[n++] = strtod(s, &end);
        if (end == s) return -1;
        s = *end == ',' ? end + 1 : end;
        while (*s == ' ') s++;
    }
    return s && *s ? -1 : n;
}

static int aur__batch_meta(const aur_st_file *f, aur_batch *b)
{
    const char *tu = aur_st_meta(f, "time_unix"), *rs = aur_st_meta(f, "rollout_step");
    for (int i = 0; i < b->B; i++) b->time[i] = NAN;
    if (tu && aur__parse_doubles(tu, b->time, b->B) != b->B)
        return aur__err(AUR_EFORMAT, "%s: metadata time_unix '%s' does not give %d times", f->path, tu, b->B);
    b->rollout_step = rs ? atoi(rs) : 0;
    const char *ss = aur_st_meta(f, "step_seconds");
    if (ss && (aur__parse_doubles(ss, &b->step_seconds, 1) != 1 || !(b->step_seconds >= 0)))
        return aur__err(AUR_EFORMAT, "%s: metadata step_seconds '%s' is not a number of seconds", f->path, ss);
    const aur_st_tensor *lv = aur_st_find(f, "meta/levels");
    if (b->C > 0) {
        aur_real tmp[AUR_MAX_LEVELS];
        if (!lv || lv->numel != b->C || aur_st_read(f, lv, AUR_F32, tmp))
            return aur__err(AUR_EFORMAT, "%s: meta/levels must hold the %d pressure levels", f->path, b->C);
        for (int c = 0; c < b->C; c++) b->levels[c] = tmp[c];
    }
    AUR_FREE(b->lat);
    AUR_FREE(b->lon);
    b->lat = aur__batch_coord(f, "meta/lat", b->H, b->H, b->W, &b->lat_2d);
    b->lon = b->lat ? aur__batch_coord(f, "meta/lon", b->W, b->H, b->W, &b->lon_2d) : NULL;
    return b->lat && b->lon ? 0 : AUR_EFORMAT;
}

/* A safetensors batch's names and sizes as a batch without tensors yet (NULL on error). */
static aur_batch *aur__batch_st_shell(const aur_st_file *f)
{
    aur_var_list surf, statics, atmos;
    int64_t sz[5] = {0, 0, 0, 0, 0};
    int rc = aur__batch_names(f, "surf", &surf) || aur__batch_names(f, "static", &statics) || aur__batch_names(f, "atmos", &atmos);
    if (!rc) rc = aur__batch_sizes(f, &surf, &atmos, sz);
    aur_batch *b = rc ? NULL : aur__batch_shell((int)sz[0], (int)sz[1], (int)sz[2], (int)sz[3], (int)sz[4], 0, 0);
    if (!b) return NULL;
    b->owns_tensors = 1;
    b->surf_names = surf, b->static_names = statics, b->atmos_names = atmos;
    return b;
}

static aur_batch *aur__batch_load(const char *path, int keep_nonfinite)
{
    aur_st_file *f = aur_st_open(path);
    if (!f) return NULL;
    aur_batch *b = aur__batch_st_shell(f);
    int rc = b ? 0 : AUR_EFORMAT;
    if (!rc) {
        int64_t s4[4] = {b->B, b->T, b->H, b->W}, s2[2] = {b->H, b->W}, s5[5] = {b->B, b->T, b->C, b->H, b->W};
        for (int i = 0; i < b->surf_names.n && !rc; i++)
            rc = (b->surf[i] = aur__batch_read(f, "surf", b->surf_names.name[i], 4, s4, keep_nonfinite)) ? 0 : AUR_EFORMAT;
        for (int i = 0; i < b->static_names.n && !rc; i++)
            rc = (b->statics[i] = aur__batch_read(f, "static", b->static_names.name[i], 2, s2, keep_nonfinite)) ? 0 : AUR_EFORMAT;
        for (int i = 0; i < b->atmos_names.n && !rc; i++)
            rc = (b->atmos[i] = aur__batch_read(f, "atmos", b->atmos_names.name[i], 5, s5, keep_nonfinite)) ? 0 : AUR_EFORMAT;
    }
    if (!rc) rc = aur__batch_meta(f, b);
    aur_st_close(f);
    if (rc) {
        aur_batch_free(b);
        return NULL;
    }
    return b;
}

AURDEF aur_batch *aur_batch_load(const char *path) { return aur__batch_load(path, 0); }
AURDEF aur_batch *aur_batch_load_unchecked(const char *path) { return aur__batch_load(path, 1); }

static void aur__join_names(const aur_var_list *l, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < l->n && k < size; i++) k += (size_t)snprintf(buf + k, size - k, i ? ",%s" : "%s", l->name[i]);
}

AURDEF int aur_batch_save(const aur_batch *b, const char *path)
{
    aur_st_writer *w = aur_st_writer_create();
    char name[160], list[4096], num[64];
    int rc = w ? 0 : AUR_ENOMEM;
    aur_tensor *lat = NULL, *lon = NULL, *lev = NULL;
    for (int i = 0; i < b->surf_names.n && !rc; i++) {
        snprintf(name, sizeof name, "surf/%s", b->surf_names.name[i]);
        rc = aur_st_writer_add(w, name, b->surf[i]);
    }
    for (int i = 0; i < b->static_names.n && !rc; i++) {
        snprintf(name, sizeof name, "static/%s", b->static_names.name[i]);
        rc = aur_st_writer_add(w, name, b->statics[i]);
    }
    for (int i = 0; i < b->atmos_names.n && !rc; i++) {
        snprintf(name, sizeof name, "atmos/%s", b->atmos_names.name[i]);
        rc = aur_st_writer_add(w, name, b->atmos[i]);
    }
    if (!rc) {
        lat = aur_tensor_create(AUR_F32, AUR_CPU, b->lat_2d ? aur_shape2(b->H, b->W) : aur_shape1(b->H));
        lon = aur_tensor_create(AUR_F32, AUR_CPU, b->lon_2d ? aur_shape2(b->H, b->W) : aur_shape1(b->W));
        lev = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape1(b->C));
        rc = lat && lon && lev ? 0 : AUR_ENOMEM;
    }
    for (int64_t i = 0; !rc && i < lat->numel; i++) aur_tensor_f32(lat)[i] = b->lat[i];
    for (int64_t i = 0; !rc && i < lon->numel; i++) aur_tensor_f32(lon)[i] = b->lon[i];
    for (int64_t i = 0; !rc && i < lev->numel; i++) aur_tensor_f32(lev)[i] = (aur_real)b->levels[i];
    if (!rc) rc = aur_st_writer_add(w, "meta/lat", lat) || aur_st_writer_add(w, "meta/lon", lon) || aur_st_writer_add(w, "meta/levels", lev);
    if (!rc) {
        aur__join_names(&b->surf_names, list, sizeof list);
        rc = aur_st_writer_meta(w, "surf_vars", list);
        aur__join_names(&b->static_names, list, sizeof list);
        if (!rc) rc = aur_st_writer_meta(w, "static_vars", list);
        aur__join_names(&b->atmos_names, list, sizeof list);
        if (!rc) rc = aur_st_writer_meta(w, "atmos_vars", list);
        size_t k = 0;
        list[0] = 0;
        for (int i = 0; i < b->B && k < sizeof list; i++) k += (size_t)snprintf(list + k, sizeof list - k, i ? ",%.17g" : "%.17g", b->time[i]);
        if (!rc) rc = aur_st_writer_meta(w, "time_unix", list);
        snprintf(num, sizeof num, "%d", b->rollout_step);
        if (!rc) rc = aur_st_writer_meta(w, "rollout_step", num);
        snprintf(num, sizeof num, "%.17g", b->step_seconds);
        if (!rc && b->step_seconds > 0) rc = aur_st_writer_meta(w, "step_seconds", num);
    }
    if (!rc) rc = aur_st_writer_write(w, path);
    aur_st_writer_free(w);
    aur_tensor_free(lat);
    aur_tensor_free(lon);
    aur_tensor_free(lev);
    return rc;
}

/* The reference's metadata checks (aurora/batch.py: Metadata.__post_init__), as errors. */
static int aur__check_coords(const aur_batch *b)
{
    if (b->lat_2d != b->lon_2d) return aur__err(AUR_EINVAL, "batch: lat and lon must both be 1-D or both 2-D");
    int64_t nlat = b->lat_2d ? (int64_t)b->H * b->W : b->H, nlon = b->lon_2d ? (int64_t)b->H * b->W : b->W;
    for (int64_t i = 0; i < nlat; i++)
        if (!(b->lat[i] >= -90 && b->lat[i] <= 90)) return aur__err(AUR_EINVAL, "batch: latitude %g is outside [-90, 90]", b->lat[i]);
    for (int64_t i = 0; i < nlon; i++)
        if (!(b->lon[i] >= 0 && b->lon[i] < 360)) return aur__err(AUR_EINVAL, "batch: longitude %g is outside [0, 360)", b->lon[i]);
    if (!b->lat_2d) {
        for (int i = 0; i + 1 < b->H; i++)
            if (!(b->lat[i + 1] < b->lat[i])) return aur__err(AUR_EINVAL, "batch: latitudes must strictly decrease (row %d)", i + 1);
        for (int j = 0; j + 1 < b->W; j++)
            if (!(b->lon[j + 1] > b->lon[j])) return aur__err(AUR_EINVAL, "batch: longitudes must strictly increase (column %d)", j + 1);
        return 0;
    }
    for (int i = 0; i < b->H; i++)
        for (int j = 0; j + 1 < b->W; j++)
            if (!(b->lon[i * b->W + j + 1] > b->lon[i * b->W + j]))
                return aur__err(AUR_EINVAL, "batch: 2-D longitudes must increase along each row (row %d)", i);
    for (int i = 0; i + 1 < b->H; i++) { /* the reference only asks consecutive rows to differ */
        int differ = 1;
        for (int j = 0; j < b->W; j++) differ &= b->lat[(i + 1) * b->W + j] != b->lat[i * b->W + j];
        if (!differ) return aur__err(AUR_EINVAL, "batch: 2-D latitude rows %d and %d do not differ", i, i + 1);
    }
    return 0;
}

/* ==== Aurora: weather files as a series ====
   The reference's examples (docs/example_era5.ipynb, example_hres_t0,
   example_cams) open ERA5, HRES or CAMS NetCDF files with xarray, rename
   the variables to Aurora's (t2m -> 2t, ...), stack them into a Batch and
   rely on the data stores' conventions: latitudes decreasing, longitudes
   in [0, 360), pressure levels in hPa. Here the same with libnetcdf
   (NetCDF-3, NetCDF-4/HDF5, and local Zarr v2 stores through NCZarr):
   every variable of the files that lies on the latitude-longitude grid,
   renamed, checked (units, grid, levels, times), flipped or rolled into
   the conventions, as one series of B = 1 with every time step in order.
   GRIB files join the same series through aurora/grib.c (ecCodes).
   Values are what xarray decodes, rounded to float32 as the model's
   batch.type(float32) does. */

/* What a path holds, from its first bytes: 0 safetensors (or anything else), 1 NetCDF, HDF5 or a Zarr store, 2 GRIB;
   an error if there is nothing there. */
static int aur__data_kind(const char *path)
{
    struct stat st;
    if (stat(path, &st)) return aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return 1;
    unsigned char m[8] = {0};
    FILE *fp = fopen(path, "rb");
    size_t got = fp ? fread(m, 1, sizeof m, fp) : 0;
    if (fp) fclose(fp);
    if (got >= 4 && !memcmp(m, "CDF", 3) && (m[3] == 1 || m[3] == 2 || m[3] == 5)) return 1;
    if (got == 8 && !memcmp(m, "\x89HDF\r\n\x1a\n", 8)) return 1;
    if (got >= 4 && !memcmp(m, "GRIB", 4)) return 2;
    return 0;
}

#ifdef AUR_NETCDF
#include <netcdf.h>
#include <netcdf_filter.h>

/* The files' names of Aurora's variables: ERA5/HRES short names as the
   Copernicus stores write them, and WeatherBench2's long names. */
static const char *const aur__wx_renames[][2] = {
    {"t2m", "2t"},
    {"u10", "10u"},
    {"v10", "10v"},
    {"2m_temperature", "2t"},
    {"10m_u_component_of_wind", "10u"},
    {"10m_v_component_of_wind", "10v"},
    {"mean_sea_level_pressure", "msl"},
    {"geopotential", "z"},
    {"temperature", "t"},
    {"u_component_of_wind", "u"},
    {"v_component_of_wind", "v"},
    {"specific_humidity", "q"},
    {"geopotential_at_surface", "z"},
    {"land_sea_mask", "lsm"},
    {"soil_type", "slt"},
};

/* The units the model's statistics assume, spelt without spaces, "**" or "^"
   (lower case); and what to say when a common other unit comes instead. */
typedef struct aur__wx_unit {
    const char *name; /* Aurora's */
    const char *want; /* as the stores write it, for messages */
    const char *ok[4];
    const char *other, *hint;
} aur__wx_unit;
static const aur__wx_unit aur__wx_units[] = {
    {"2t", "K", {"k", "kelvin"}, "degc", "add 273.15"},
    {"t", "K", {"k", "kelvin"}, "degc", "add 273.15"},
    {"10u", "m s**-1", {"ms-1", "m/s"}, NULL, NULL},
    {"10v", "m s**-1", {"ms-1", "m/s"}, NULL, NULL},
    {"u", "m s**-1", {"ms-1", "m/s"}, NULL, NULL},
    {"v", "m s**-1", {"ms-1", "m/s"}, NULL, NULL},
    {"msl", "Pa", {"pa"}, "hpa", "multiply by 100"},
    {"z", "m**2 s**-2", {"m2s-2", "m2/s2"}, "m", "this is geopotential height: multiply by 9.80665"},
    {"q", "kg kg**-1", {"kgkg-1", "kg/kg", "1"}, NULL, NULL},
};


enum { AUR__WX_TIME, AUR__WX_LEVEL, AUR__WX_LAT, AUR__WX_LON, AUR__WX_OTHER };
enum { AUR__WX_SURF, AUR__WX_ATMOS, AUR__WX_STATIC };
static const char *const aur__wx_group_name[] = {"surf", "atmos", "static"};

typedef struct aur__grib_field aur__grib_field; /* aurora/grib.c */

/* One NetCDF file or Zarr store; or one parameter and level type of a GRIB file (grib set), holding one variable. */
typedef struct aur__wx_file {
    const char *path;
    int nc, zarr;
    aur__grib_field *grib;
    int dim[4];      /* ids of the time, level, latitude and longitude dimensions (-1: none) */
    size_t len[4];
    double *time;    /* Unix seconds */
    double *level;   /* hPa */
    double *lat, *lon;
    int level_in_pa; /* the file's levels were in Pa */
} aur__wx_file;

/* One data variable of one file. */
typedef struct aur__wx_var {
    char name[AUR_NAME_LEN], file_name[NC_MAX_NAME + 1];
    int group, file, ndims;
    int role[NC_MAX_VAR_DIMS]; /* AUR__WX_* of each dimension, in the file's order */
    size_t len[NC_MAX_VAR_DIMS];
    aur__cf_var cf;
} aur__wx_var;

typedef struct aur__wx_set {
    aur__wx_file *files;
    int n_files, n_paths;
    aur__wx_var *vars;
    int n_vars;
    double *times; /* every time step of the series, increasing */
    int T, C, H, W;
    double step;   /* seconds between steps (0: one step) */
    int grid_file, level_var, flip_lat, lon_shift;
    double *work;      /* a field being read, kept from window to window */
    size_t work_len;
} aur__wx_set;

/* ---- names, roles, units ---- */

static int aur__name_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

/* "m s**-1" -> "ms-1": no spaces, "**" or "^", lower case. */
static void aur__units_key(const char *u, char *out, size_t size)
{
    size_t k = 0;
    for (; *u && k + 1 < size; u++)
        if (*u != ' ' && *u != '*' && *u != '^') out[k++] = (char)tolower((unsigned char)*u);
    out[k] = 0;
}

/* A dimension's role, from its name or its coordinate's CF attributes. */
static int aur__wx_dim_role(int nc, const char *dim)
{
    static const char *const times[] = {"time", "valid_time", NULL};
    static const char *const levels[] = {"level", "pressure_level", "isobaricInhPa", "plev", "lev", "air_pressure", NULL};
    static const char *const lats[] = {"latitude", "lat", NULL}, *const lons[] = {"longitude", "lon", NULL};
    if (aur__name_in(dim, times)) return AUR__WX_TIME;
    if (aur__name_in(dim, levels)) return AUR__WX_LEVEL;
    if (aur__name_in(dim, lats)) return AUR__WX_LAT;
    if (aur__name_in(dim, lons)) return AUR__WX_LON;
    int id;
    char sn[64], units[128];
    if (nc_inq_varid(nc, dim, &id) != NC_NOERR) return AUR__WX_OTHER;
    aur__nc_text_att(nc, id, "standard_name", sn, sizeof sn);
    aur__nc_text_att(nc, id, "units", units, sizeof units);
    if (!strcmp(sn, "latitude") || !strcmp(units, "degrees_north")) return AUR__WX_LAT;
    if (!strcmp(sn, "longitude") || !strcmp(units, "degrees_east")) return AUR__WX_LON;
    if (!strcmp(sn, "time") || strstr(units, " since ")) return AUR__WX_TIME;
    if (!strcmp(sn, "air_pressure")) return AUR__WX_LEVEL;
    return AUR__WX_OTHER;
}

/* Aurora's name of a file's variable: the caller's renames ("from=to,..."), then the table, else its own. */
static int aur__wx_aurora_name(const char *file_name, const char *renames, char *out)
{
    const char *s = renames ? renames : "";
    size_t k = strlen(file_name);
    while (*s) {
        const char *end = strchr(s, ','), *eq = strchr(s, '=');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (eq && eq < s + n && (size_t)(eq - s) == k && !strncmp(s, file_name, k)) {
            size_t m = n - k - 1;
            if (!m || m >= AUR_NAME_LEN) return aur__err(AUR_EINVAL, "rename '%.*s': the new name must be 1 to %d characters", (int)n, s, AUR_NAME_LEN - 1);
            memcpy(out, eq + 1, m);
            out[m] = 0;
            return 0;
        }
        s += n + (end != NULL);
    }
    for (size_t i = 0; i < sizeof aur__wx_renames / sizeof aur__wx_renames[0]; i++)
        if (!strcmp(file_name, aur__wx_renames[i][0])) return snprintf(out, AUR_NAME_LEN, "%s", aur__wx_renames[i][1]), 0;
    if (k >= AUR_NAME_LEN) return aur__err(AUR_EINVAL, "variable '%s': a name of at most %d characters is needed (rename it)", file_name, AUR_NAME_LEN - 1);
    memcpy(out, file_name, k + 1);
    return 0;
}

/* A variable's units must be what the model's statistics assume (when it states them). */
static int aur__wx_check_units(const char *path, const aur__wx_var *v, const char *units)
{
    char key[128];
    if (!units[0]) return 0;
    aur__units_key(units, key, sizeof key);
    for (size_t i = 0; i < sizeof aur__wx_units / sizeof aur__wx_units[0]; i++) {
        const aur__wx_unit *u = &aur__wx_units[i];
        if (strcmp(u->name, v->name)) continue;
        for (int k = 0; k < 4 && u->ok[k]; k++)
            if (!strcmp(key, u->ok[k])) return 0;
        int known = u->other && (!strcmp(key, u->other) || (!strcmp(u->other, "m") && !strcmp(key, "gpm")));
        return aur__err(AUR_EFORMAT, "%s: variable '%s' (Aurora's %s) is in '%s'; the model expects %s%s%s", path, v->file_name, v->name, units,
                        u->want, known ? ": " : "", known ? u->hint : "");
    }
    return 0;
}

/* ---- CF times ---- */

/* "hours since 1900-01-01 00:00:00.0" (or days, minutes, seconds; a "T"
   or a trailing "Z"/"UTC"/"+00:00") -> seconds per unit and the epoch in
   Unix seconds; calendars the proleptic Gregorian count fits only. */
static int aur__cf_time_units(const char *units, const char *calendar, double *unit, double *epoch)
{
    static const struct { const char *name; double s; } u[] = {
        {"days", 86400}, {"day", 86400}, {"d", 86400}, {"hours", 3600}, {"hour", 3600}, {"hrs", 3600}, {"hr", 3600}, {"h", 3600},
        {"minutes", 60}, {"minute", 60}, {"mins", 60}, {"min", 60}, {"seconds", 1}, {"second", 1}, {"secs", 1}, {"sec", 1}, {"s", 1},
        {"milliseconds", 1e-3}, {"ms", 1e-3}, {"microseconds", 1e-6}, {"us", 1e-6}, {"nanoseconds", 1e-9}, {"ns", 1e-9}};
    static const char *const calendars[] = {"", "standard", "gregorian", "proleptic_gregorian", NULL};
    char word[32];
    int used = 0, y, mo, d, h = 0, mi = 0;
    double sec = 0;
    if (!aur__name_in(calendar, calendars))
        return aur__err(AUR_EUNSUPPORTED, "calendar '%s': only the standard (proleptic Gregorian) calendar is read", calendar);
    if (sscanf(units, "%31s since %d-%d-%d%n", word, &y, &mo, &d, &used) != 4) return aur__err(AUR_EFORMAT, "time units '%s' are not 'UNIT since DATE'", units);
    const char *s = units + used;
    if (*s == ' ' || *s == 'T') {
        int n = 0;
        if (sscanf(s + 1, "%d:%d%n", &h, &mi, &n) == 2) {
            s += 1 + n;
            if (*s == ':' && sscanf(s + 1, "%lf%n", &sec, &n) == 1) s += 1 + n;
        }
    }
    while (*s == ' ') s++;
    if (*s && strcmp(s, "Z") && strcmp(s, "UTC") && strcmp(s, "+00:00") && strcmp(s, "+0000") && strcmp(s, "00:00"))
        return aur__err(AUR_EUNSUPPORTED, "time units '%s': only UTC reference times are read", units);
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || !(sec >= 0 && sec < 61))
        return aur__err(AUR_EFORMAT, "time units '%s': not a valid date", units);
    if (strcmp(calendar, "proleptic_gregorian") && (y < 1582 || (y == 1582 && (mo < 10 || (mo == 10 && d < 15)))))
        return aur__err(AUR_EUNSUPPORTED, "time units '%s': a Julian-calendar reference date (before 1582-10-15)", units);
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (!strcmp(word, u[i].name)) {
            *unit = u[i].s;
            *epoch = (double)((aur__days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
            return 0;
        }
    return aur__err(AUR_EFORMAT, "time units '%s': unknown unit '%s'", units, word);
}

static const char *aur__wx_time_str(double t, char *buf, size_t size) { return aur__format_time((int64_t)llround(t) * 1000000000LL, buf, size); }

/* ---- one file ---- */

/* A coordinate variable (1-D, over its own dimension), as doubles. */
static double *aur__wx_coord(const aur__wx_file *f, int role, const char *dim, int *id)
{
    int ndims = 0;
    nc_type type;
    if (nc_inq_varid(f->nc, dim, id) != NC_NOERR || nc_inq_var(f->nc, *id, NULL, &type, &ndims, NULL, NULL) != NC_NOERR || ndims != 1 ||
        !aur__nc_numeric(type)) {
        static const char *const what[] = {"time", "level", "latitude", "longitude"};
        aur__err(AUR_EFORMAT, "%s: dimension '%s' (%s) has no numeric coordinate variable '%s'", f->path, dim, what[role], dim);
        return NULL;
    }
    double *v = (double *)aur__malloc(sizeof(double) * (f->len[role] + 1), "a coordinate");
    int st = v ? nc_get_var_double(f->nc, *id, v) : NC_ENOMEM;
    if (st != NC_NOERR) {
        AUR_FREE(v);
        aur__nc_err(st, f->path, dim);
        return NULL;
    }
    return v;
}

/* The coordinates' units: times to Unix seconds, levels to hPa. */
static int aur__wx_coord_units(aur__wx_file *f, int role, int id, const char *dim)
{
    char units[128], cal[64];
    aur__nc_text_att(f->nc, id, "units", units, sizeof units);
    if (role == AUR__WX_TIME) {
        double unit = 1, epoch = 0;
        aur__nc_text_att(f->nc, id, "calendar", cal, sizeof cal);
        if (aur__cf_time_units(units, cal, &unit, &epoch)) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%.1000s", aur_last_error());
            return aur__err(AUR_EFORMAT, "%s: coordinate '%s': %s", f->path, dim, msg);
        }
        for (size_t i = 0; i < f->len[role]; i++) f->time[i] = epoch + f->time[i] * unit;
    } else if (role == AUR__WX_LEVEL) {
        char key[128];
        aur__units_key(units, key, sizeof key);
        static const char *const hpa[] = {"", "hpa", "millibars", "millibar", "mbar", "mb", NULL};
        f->level_in_pa = !strcmp(key, "pa");
        if (!f->level_in_pa && !aur__name_in(key, hpa))
            return aur__err(AUR_EFORMAT, "%s: pressure levels '%s' are in '%s'; hPa or Pa are read", f->path, dim, units);
        for (size_t i = 0; f->level_in_pa && i < f->len[role]; i++) f->level[i] /= 100;
    }
    return 0;
}

/* A Zarr store's path for libnetcdf ("file:///abs/store#mode=zarr,file"); 0 if path is no directory. */
static int aur__wx_zarr_url(const char *path, char *url, size_t size)
{
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) return 0;
    char abs[PATH_MAX], cwd[PATH_MAX], probe[PATH_MAX + 32];
    if (path[0] != '/' && !getcwd(cwd, sizeof cwd)) return aur__err(AUR_EIO, "%s: cannot find the working directory: %s", path, strerror(errno));
    if (snprintf(abs, sizeof abs, "%s%s%s", path[0] == '/' ? "" : cwd, path[0] == '/' ? "" : "/", path) >= (int)sizeof abs || strchr(abs, '#'))
        return aur__err(AUR_EINVAL, "%s: a Zarr path must be shorter than %d characters, without '#'", path, PATH_MAX);
    snprintf(probe, sizeof probe, "%s/zarr.json", abs);
    if (!access(probe, F_OK)) return aur__err(AUR_EUNSUPPORTED, "%s: a Zarr v3 store; libnetcdf reads Zarr v2 (write it with zarr_format=2)", path);
    snprintf(probe, sizeof probe, "%s/.zgroup", abs);
    if (access(probe, F_OK)) return aur__err(AUR_EFORMAT, "%s: a directory without .zgroup (not a Zarr v2 store)", path);
    if (snprintf(url, size, "file://%s#mode=zarr,file", abs) >= (int)size) return aur__err(AUR_EINVAL, "%s: path too long", path);
    return 1;
}

/* NCZarr hands back a chunk's stored bytes when it lacks the store's codec
   (Debian's libnetcdf has no NCZarr codec plugins), so a compressed array
   it does not report a filter for is refused here, from its .zarray. */
static int aur__wx_zarr_codec(const aur__wx_file *f, const aur__wx_var *v)
{
    size_t n = 0;
    if (nc_inq_var_filter_ids(f->nc, v->cf.id, &n, NULL) == NC_NOERR && n > 0) return 0; /* libnetcdf decodes it (checked as for HDF5) */
    char meta[PATH_MAX + NC_MAX_NAME + 16];
    size_t len;
    snprintf(meta, sizeof meta, "%s/%s/.zarray", f->path, v->file_name);
    char *text = aur__read_text_file(meta, (size_t)1 << 20, "a .zarray", &len);
    if (!text) return AUR_EFORMAT;
    cJSON *j = cJSON_Parse(text);
    AUR_FREE(text);
    const cJSON *comp = j ? cJSON_GetObjectItemCaseSensitive(j, "compressor") : NULL, *filt = j ? cJSON_GetObjectItemCaseSensitive(j, "filters") : NULL;
    const cJSON *id = cJSON_IsObject(comp) ? cJSON_GetObjectItemCaseSensitive(comp, "id") : NULL;
    int plain = j && (!comp || cJSON_IsNull(comp)) && (!filt || cJSON_IsNull(filt) || (cJSON_IsArray(filt) && !cJSON_GetArraySize(filt)));
    char codec[64];
    snprintf(codec, sizeof codec, "%s", cJSON_IsString(id) ? id->valuestring : !j ? "?" : comp && !cJSON_IsNull(comp) ? "a compressor" : "filters");
    cJSON_Delete(j);
    if (plain) return 0;
    return aur__err(AUR_EUNSUPPORTED, "%s: Zarr array '%s' is stored with %s, which this libnetcdf's NCZarr cannot decode; write the store "
                    "uncompressed (to_zarr(..., encoding={name: {'compressors': None}}))", f->path, v->file_name, codec);
}

/* Opens a NetCDF file or Zarr store and reads its coordinates. */
static int aur__wx_open(aur__wx_file *f)
{
    char url[PATH_MAX + 64];
    int zarr = aur__wx_zarr_url(f->path, url, sizeof url);
    if (zarr < 0) return zarr;
    f->zarr = zarr;
    int st = nc_open(zarr ? url : f->path, NC_NOWRITE, &f->nc);
    if (st != NC_NOERR) return f->nc = -1, aur__nc_err(st, f->path, "cannot open as NetCDF");
    int ndims = 0;
    nc_inq_ndims(f->nc, &ndims);
    for (int r = 0; r < 4; r++) f->dim[r] = -1;
    for (int d = 0; d < ndims; d++) {
        char name[NC_MAX_NAME + 1];
        size_t len;
        if (nc_inq_dim(f->nc, d, name, &len) != NC_NOERR) continue;
        int role = aur__wx_dim_role(f->nc, name);
        if (role == AUR__WX_OTHER) continue;
        if (f->dim[role] >= 0) return aur__err(AUR_EFORMAT, "%s: two dimensions play one role ('%s' and another)", f->path, name);
        f->dim[role] = d, f->len[role] = len;
        double **out[] = {&f->time, &f->level, &f->lat, &f->lon};
        int id;
        if (!(*out[role] = aur__wx_coord(f, role, name, &id))) return AUR_EFORMAT;
        int rc = aur__wx_coord_units(f, role, id, name);
        if (rc) return rc;
    }
    return 0;
}

/* GRIB files (aurora/grib.c) */
static int aur__grib_scan(aur__wx_set *s, const char *path, const char *renames);
static int aur__grib_read_step(const aur__wx_file *f, size_t j, double *work, size_t *stride);
static void aur__grib_close(aur__wx_file *f);

static void aur__wx_close(aur__wx_file *f)
{
    if (f->nc >= 0) nc_close(f->nc);
    aur__grib_close(f);
    AUR_FREE(f->time);
    AUR_FREE(f->level);
    AUR_FREE(f->lat);
    AUR_FREE(f->lon);
}

/* Static fields: no time dimension, or the land-sea mask, soil type and
   surface geopotential (which the stores deliver with one time step). */
static int aur__wx_group(const aur__wx_var *v, int has_time, int has_level)
{
    if (has_level) return AUR__WX_ATMOS;
    if (!has_time || !strcmp(v->name, "z") || !strcmp(v->name, "lsm") || !strcmp(v->name, "slt")) return AUR__WX_STATIC;
    return AUR__WX_SURF;
}

/* Adds a variable to the set; two of one group and Aurora name in one file are refused. */
static int aur__wx_add_var(aur__wx_set *s, const aur__wx_var *v)
{
    for (int i = 0; i < s->n_vars; i++)
        if (s->vars[i].file == v->file && s->vars[i].group == v->group && !strcmp(s->vars[i].name, v->name))
            return aur__err(AUR_EFORMAT, "%s: variables '%s' and '%s' are both Aurora's %s %s", s->files[v->file].path, s->vars[i].file_name,
                            v->file_name, aur__wx_group_name[v->group], v->name);
    aur__wx_var *grown = (aur__wx_var *)AUR_REALLOC(s->vars, sizeof *grown * (size_t)(s->n_vars + 1));
    if (!grown) return aur__err(AUR_ENOMEM, "out of memory listing variables");
    s->vars = grown;
    s->vars[s->n_vars++] = *v;
    return 0;
}

/* Adds a file to the set: its index, or an error. */
static int aur__wx_add_file(aur__wx_set *s, const char *path)
{
    aur__wx_file *grown = (aur__wx_file *)AUR_REALLOC(s->files, sizeof *grown * (size_t)(s->n_files + 1));
    if (!grown) return aur__err(AUR_ENOMEM, "out of memory listing files");
    s->files = grown;
    aur__wx_file *f = &s->files[s->n_files];
    memset(f, 0, sizeof *f);
    f->nc = -1, f->path = path;
    return s->n_files++;
}

/* A file's variable, if it is data on the grid (else 0 and it is skipped). */
static int aur__wx_var_of(aur__wx_set *s, int fi, int id, const char *renames)
{
    aur__wx_file *f = &s->files[fi];
    aur__wx_var v;
    int dims[NC_MAX_VAR_DIMS], has[5] = {0};
    memset(&v, 0, sizeof v);
    if (nc_inq_var(f->nc, id, v.file_name, &v.cf.type, &v.ndims, dims, NULL) != NC_NOERR || !aur__nc_numeric(v.cf.type)) return 0;
    for (int d = 0; d < v.ndims; d++) {
        v.role[d] = AUR__WX_OTHER;
        for (int r = 0; r < 4; r++)
            if (dims[d] == f->dim[r]) v.role[d] = r;
        has[v.role[d]]++;
        nc_inq_dimlen(f->nc, dims[d], &v.len[d]);
        char dn[NC_MAX_NAME + 1];
        if (nc_inq_dimname(f->nc, dims[d], dn) == NC_NOERR && !strcmp(dn, v.file_name)) return 0; /* a coordinate */
    }
    if (has[AUR__WX_LAT] != 1 || has[AUR__WX_LON] != 1) return 0;
    for (int d = 0; d < v.ndims; d++)
        if (v.role[d] == AUR__WX_OTHER && v.len[d] != 1) {
            char dn[NC_MAX_NAME + 1] = "?";
            nc_inq_dimname(f->nc, dims[d], dn);
            return aur__err(AUR_EFORMAT, "%s: variable '%s' has dimension '%s' of size %zu; only time, level, latitude and longitude can "
                            "have more than one element (select one member or experiment first)", f->path, v.file_name, dn, v.len[d]);
        }
    v.cf.id = id, v.file = fi;
    int rc = aur__wx_aurora_name(v.file_name, renames, v.name);
    if (!rc) rc = aur__cf_attributes(f->nc, f->path, v.file_name, &v.cf);
    if (!rc && f->zarr) rc = aur__wx_zarr_codec(f, &v);
    v.group = aur__wx_group(&v, has[AUR__WX_TIME], has[AUR__WX_LEVEL]);
    if (!rc) {
        char units[128];
        aur__nc_text_att(f->nc, v.cf.id, "units", units, sizeof units);
        rc = aur__wx_check_units(f->path, &v, units);
    }
    return rc ? rc : aur__wx_add_var(s, &v);
}

static int aur__wx_scan_file(aur__wx_set *s, int fi, const char *renames)
{
    aur__wx_file *f = &s->files[fi];
    int rc = aur__wx_open(f), nvars = 0, before = s->n_vars;
    if (rc) return rc;
    nc_inq_nvars(f->nc, &nvars);
    for (int id = 0; id < nvars && !rc; id++) rc = aur__wx_var_of(s, fi, id, renames);
    if (!rc && s->n_vars == before)
        rc = aur__err(AUR_EFORMAT, "%s: no variable on a latitude-longitude grid (dimensions named latitude/lat and longitude/lon)", f->path);
    return rc;
}

/* ---- the files together ---- */

/* A longitude in [0, 360). */
static double aur__lon360(double lon) { return fmod(fmod(lon, 360) + 360, 360); }

/* Every file's grid must be the first variable's; then the flip and roll into the conventions. */
static int aur__wx_grid(aur__wx_set *s)
{
    const aur__wx_file *g = &s->files[s->vars[0].file];
    s->grid_file = s->vars[0].file;
    s->H = (int)g->len[AUR__WX_LAT], s->W = (int)g->len[AUR__WX_LON];
    for (int i = 0; i < s->n_vars; i++) {
        const aur__wx_file *f = &s->files[s->vars[i].file];
        if (f == g) continue;
        int same = f->len[AUR__WX_LAT] == g->len[AUR__WX_LAT] && f->len[AUR__WX_LON] == g->len[AUR__WX_LON];
        for (int y = 0; same && y < s->H; y++) same = fabs(f->lat[y] - g->lat[y]) <= 1e-4;
        for (int x = 0; same && x < s->W; x++) same = fabs(f->lon[x] - g->lon[x]) <= 1e-4;
        if (!same)
            return aur__err(AUR_EFORMAT, "%s: its grid (%zu latitudes %g..%g, %zu longitudes %g..%g) is not %s's (%d, %g..%g; %d, %g..%g)", f->path,
                            f->len[AUR__WX_LAT], f->lat[0], f->lat[f->len[AUR__WX_LAT] - 1], f->len[AUR__WX_LON], f->lon[0],
                            f->lon[f->len[AUR__WX_LON] - 1], g->path, s->H, g->lat[0], g->lat[s->H - 1], s->W, g->lon[0], g->lon[s->W - 1]);
    }
    s->flip_lat = s->H > 1 && g->lat[0] < g->lat[s->H - 1];
    for (int y = 0; y + 1 < s->H; y++) {
        double a = g->lat[s->flip_lat ? s->H - 1 - y : y], b = g->lat[s->flip_lat ? s->H - 2 - y : y + 1];
        if (!(b < a) || a > 90 || b < -90)
            return aur__err(AUR_EFORMAT, "%s: latitudes are not monotonic within [-90, 90] (at %g, %g)", g->path, a, b);
    }
    s->lon_shift = 0;
    for (int x = 1; x < s->W; x++)
        if (aur__lon360(g->lon[x]) < aur__lon360(g->lon[s->lon_shift])) s->lon_shift = x;
    for (int x = 0; x + 1 < s->W; x++) {
        double a = aur__lon360(g->lon[(x + s->lon_shift) % s->W]), b = aur__lon360(g->lon[(x + 1 + s->lon_shift) % s->W]);
        if (!(b > a)) return aur__err(AUR_EFORMAT, "%s: longitudes do not increase around the globe once in [0, 360) (at %g, %g)", g->path, a, b);
    }
    return 0;
}

/* Every atmospheric variable must come on the same pressure levels. */
static int aur__wx_levels(aur__wx_set *s)
{
    s->C = 0, s->level_var = -1;
    for (int i = 0; i < s->n_vars; i++) {
        const aur__wx_var *v = &s->vars[i];
        if (v->group != AUR__WX_ATMOS) continue;
        const aur__wx_file *f = &s->files[v->file];
        if (s->level_var < 0) {
            s->level_var = i, s->C = (int)f->len[AUR__WX_LEVEL];
            if (s->C > AUR_MAX_LEVELS) return aur__err(AUR_EFORMAT, "%s: %d pressure levels; at most %d", f->path, s->C, AUR_MAX_LEVELS);
            continue;
        }
        const aur__wx_file *r = &s->files[s->vars[s->level_var].file];
        int same = (int)f->len[AUR__WX_LEVEL] == s->C;
        for (int c = 0; same && c < s->C; c++) same = fabs(f->level[c] - r->level[c]) < 1e-6;
        if (!same)
            return aur__err(AUR_EFORMAT, "%s: variable '%s' is on other pressure levels (or in another order) than '%s' in %s", f->path, v->file_name,
                            s->vars[s->level_var].file_name, r->path);
    }
    return 0;
}

static int aur__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v (cmp's order) and keeps one of each run of values less than tol apart (tol 0: equal ones): the count kept. */
static size_t aur__sort_unique(double *v, size_t n, int (*cmp)(const void *, const void *), double tol)
{
    qsort(v, n, sizeof(double), cmp);
    size_t k = 0;
    for (size_t j = 0; j < n; j++)
        if (!k || (v[j] != v[k - 1] && fabs(v[j] - v[k - 1]) >= tol)) v[k++] = v[j];
    return k;
}

/* Whether variable i is the first of its group and Aurora name (the others are its other files). */
static int aur__wx_first_of_name(const aur__wx_set *s, int i)
{
    for (int e = 0; e < i; e++)
        if (s->vars[e].group == s->vars[i].group && !strcmp(s->vars[e].name, s->vars[i].name)) return 0;
    return 1;
}

/* The step of the series holding time t (-1: none). */
static int aur__wx_step_of(const aur__wx_set *s, double t)
{
    int lo = 0, hi = s->T - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (fabs(s->times[mid] - t) < 1e-3) return mid;
        if (s->times[mid] < t) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* The series' times: every time of the surface and atmospheric variables,
   evenly spaced, each variable holding each exactly once. */
static int aur__wx_times(aur__wx_set *s)
{
    size_t n = 0;
    for (int i = 0; i < s->n_vars; i++)
        if (s->vars[i].group != AUR__WX_STATIC) n += s->files[s->vars[i].file].len[AUR__WX_TIME];
    if (!n) return aur__err(AUR_EFORMAT, "%s: no surface or atmospheric variable with a time dimension", s->files[0].path);
    s->times = (double *)aur__malloc(sizeof(double) * n, "the time steps");
    if (!s->times) return AUR_ENOMEM;
    size_t k = 0;
    for (int i = 0; i < s->n_vars; i++) {
        const aur__wx_file *f = &s->files[s->vars[i].file];
        for (size_t j = 0; s->vars[i].group != AUR__WX_STATIC && j < f->len[AUR__WX_TIME]; j++) s->times[k++] = f->time[j];
    }
    s->T = (int)aur__sort_unique(s->times, n, aur__cmp_double, 1e-3);
    char t1[32], t2[32], t3[32];
    s->step = s->T > 1 ? s->times[1] - s->times[0] : 0;
    for (int j = 1; j + 1 < s->T; j++)
        if (fabs(s->times[j + 1] - s->times[j] - s->step) > 1e-3)
            return aur__err(AUR_EFORMAT, "%s: the time steps are not evenly spaced: %s, %s, then %s", s->files[0].path,
                            aur__wx_time_str(s->times[0], t1, sizeof t1), aur__wx_time_str(s->times[1], t2, sizeof t2),
                            j > 1 ? aur__wx_time_str(s->times[j + 1], t3, sizeof t3) : aur__wx_time_str(s->times[2], t3, sizeof t3));
    int *seen = (int *)aur__calloc(sizeof(int) * (size_t)s->T, "a time table");
    if (!seen) return AUR_ENOMEM;
    int rc = 0;
    for (int i = 0; i < s->n_vars && !rc; i++) { /* each variable (all its files): every step exactly once */
        const aur__wx_var *v = &s->vars[i];
        if (v->group == AUR__WX_STATIC || !aur__wx_first_of_name(s, i)) continue;
        memset(seen, 0, sizeof(int) * (size_t)s->T);
        for (int e = i; e < s->n_vars && !rc; e++) {
            const aur__wx_var *w = &s->vars[e];
            if (w->group != v->group || strcmp(w->name, v->name)) continue;
            const aur__wx_file *f = &s->files[w->file];
            for (size_t j = 0; j < f->len[AUR__WX_TIME] && !rc; j++)
                if (seen[aur__wx_step_of(s, f->time[j])]++)
                    rc = aur__err(AUR_EFORMAT, "%s: %s %s at %s is there twice (variable '%s')", f->path, aur__wx_group_name[v->group], v->name,
                                  aur__wx_time_str(f->time[j], t1, sizeof t1), w->file_name);
        }
        for (int t = 0; t < s->T && !rc; t++)
            if (!seen[t])
                rc = aur__err(AUR_EFORMAT, "%s: %s %s ('%s') has no data at %s, which other variables have", s->files[v->file].path,
                              aur__wx_group_name[v->group], v->name, v->file_name, aur__wx_time_str(s->times[t], t1, sizeof t1));
    }
    for (int i = 0; i < s->n_vars && !rc; i++)
        for (int e = i + 1; e < s->n_vars && !rc; e++)
            if (s->vars[i].group == AUR__WX_STATIC && s->vars[e].group == AUR__WX_STATIC && !strcmp(s->vars[i].name, s->vars[e].name))
                rc = aur__err(AUR_EFORMAT, "static %s is in both %s and %s", s->vars[i].name, s->files[s->vars[i].file].path, s->files[s->vars[e].file].path);
    AUR_FREE(seen);
    return rc;
}

/* ---- reading ---- */

/* Step j of a NetCDF variable, decoded, into work; the strides of its time, level, latitude and longitude there. */
static int aur__wx_nc_read_step(const aur__wx_file *f, const aur__wx_var *v, size_t j, double *work, size_t *stride)
{
    size_t start[NC_MAX_VAR_DIMS] = {0}, count[NC_MAX_VAR_DIMS] = {0}, n = 1;
    for (int d = 0; d < v->ndims; d++) {
        int time = v->role[d] == AUR__WX_TIME;
        start[d] = time ? j : 0, count[d] = time ? 1 : v->len[d];
    }
    for (int d = v->ndims - 1; d >= 0; d--) stride[v->role[d]] = n, n *= count[d];
    int st = nc_get_vara_double(f->nc, v->cf.id, start, count, work);
    if (st != NC_NOERR) return aur__nc_err(st, f->path, v->file_name);
    aur__cf_decode(&v->cf, work, n);
    return 0;
}

/* Reads step j of a file's variable (or its only step) into (C, H, W) floats in the conventions' order. */
static int aur__wx_read_step(const aur__wx_set *s, const aur__wx_var *v, size_t j, double *work, float *out)
{
    const aur__wx_file *f = &s->files[v->file];
    size_t stride[5] = {0, 0, 0, 0, 0};
    int rc = f->grib ? aur__grib_read_step(f, j, work, stride) : aur__wx_nc_read_step(f, v, j, work, stride);
    if (rc) return rc;
    int C = v->group == AUR__WX_ATMOS ? s->C : 1, H = s->H, W = s->W, shift = s->lon_shift;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++) {
            const double *row = work + c * stride[AUR__WX_LEVEL] + (size_t)(s->flip_lat ? H - 1 - y : y) * stride[AUR__WX_LAT];
            float *o = out + ((size_t)c * H + y) * W;
            if (stride[AUR__WX_LON] == 1) { /* longitude fastest (every store's layout): the roll as two runs */
                for (int x = 0; x < W - shift; x++) o[x] = (float)row[x + shift];
                for (int x = W - shift; x < W; x++) o[x] = (float)row[x + shift - W];
            } else
                for (int x = 0; x < W; x++) o[x] = (float)row[(size_t)((x + shift) % W) * stride[AUR__WX_LON]];
        }
    return 0;
}

/* Steps first..first+b->T-1 of every surface and atmospheric variable of
   the set into b's steps 0..b->T-1 (B = 1): a window read without the rest. */
static int aur__wx_fill_steps(aur__wx_set *s, aur_batch *b, int first)
{
    size_t plane = (size_t)s->H * s->W * (size_t)(s->C > 1 ? s->C : 1);
    if (s->work_len < plane) { /* once: a fresh buffer each window would be page faults the size of a field */
        AUR_FREE(s->work);
        s->work = (double *)aur__malloc(sizeof(double) * plane, "a field being read");
        s->work_len = s->work ? plane : 0;
    }
    double *work = s->work;
    int rc = work ? 0 : AUR_ENOMEM;
    for (int i = 0; i < s->n_vars && !rc; i++) {
        const aur__wx_var *v = &s->vars[i];
        const aur__wx_file *f = &s->files[v->file];
        if (v->group == AUR__WX_STATIC) continue;
        aur_tensor *t = v->group == AUR__WX_ATMOS ? aur_batch_atmos(b, v->name) : aur_batch_surf(b, v->name);
        size_t per_step = (size_t)s->H * s->W * (size_t)(v->group == AUR__WX_ATMOS ? s->C : 1);
        for (size_t j = 0; j < f->len[AUR__WX_TIME] && !rc; j++) {
            int k = aur__wx_step_of(s, f->time[j]) - first;
            if (k >= 0 && k < b->T) rc = aur__wx_read_step(s, v, j, work, (float *)t->data + (size_t)k * per_step);
        }
    }
    return rc;
}

/* The set's layout as a batch without its surface and atmospheric tensors:
   names in the files' order, the conventions' coordinates, the levels, the
   last step's time, and the static fields read. T is the series' length. */
static aur_batch *aur__wx_layout(const aur__wx_set *s)
{
    if (sizeof(aur_real) != sizeof(float)) return aur__err(AUR_EUNSUPPORTED, "weather files: a float32 build is needed"), (aur_batch *)NULL;
    aur_batch *b = aur__batch_shell(1, s->T, s->C, s->H, s->W, 0, 0);
    if (!b) return NULL;
    b->owns_tensors = 1;
    aur_var_list *lists[3] = {&b->surf_names, &b->atmos_names, &b->static_names};
    int rc = 0;
    for (int i = 0; i < s->n_vars && !rc; i++)
        if (aur__vl_find(lists[s->vars[i].group], s->vars[i].name) < 0) rc = aur__vl_add(lists[s->vars[i].group], s->vars[i].name);
    const aur__wx_file *g = &s->files[s->grid_file];
    for (int y = 0; y < s->H; y++) b->lat[y] = (float)g->lat[s->flip_lat ? s->H - 1 - y : y];
    for (int x = 0; x < s->W; x++) b->lon[x] = (float)aur__lon360(g->lon[(x + s->lon_shift) % s->W]);
    for (int c = 0; c < s->C; c++) b->levels[c] = s->files[s->vars[s->level_var].file].level[c];
    b->time[0] = s->times[s->T - 1];
    b->step_seconds = s->step;
    double *work = rc ? NULL : (double *)aur__malloc(sizeof(double) * (size_t)s->H * s->W, "a field being read");
    rc = rc ? rc : work ? 0 : AUR_ENOMEM;
    for (int i = 0; i < s->n_vars && !rc; i++) {
        const aur__wx_var *v = &s->vars[i];
        if (v->group != AUR__WX_STATIC) continue;
        int k = aur__vl_find(&b->static_names, v->name);
        b->statics[k] = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape2(s->H, s->W));
        rc = b->statics[k] ? aur__wx_read_step(s, v, 0, work, (float *)b->statics[k]->data) : AUR_ENOMEM;
    }
    AUR_FREE(work);
    if (rc) aur_batch_free(b);
    return rc ? NULL : b;
}

/* What was read, and how it was turned into the conventions. */
static void aur__wx_describe(const aur__wx_set *s, FILE *out)
{
    char t1[32], t2[32];
    fprintf(out, "weather data: %d file%s, %d step%s", s->n_paths, s->n_paths > 1 ? "s" : "", s->T, s->T > 1 ? "s" : "");
    if (s->T > 1) fprintf(out, " %g h apart", s->step / 3600);
    fprintf(out, " from %s to %s, grid %d x %d", aur__wx_time_str(s->times[0], t1, sizeof t1), aur__wx_time_str(s->times[s->T - 1], t2, sizeof t2),
            s->H, s->W);
    if (s->C) {
        const aur__wx_file *f = &s->files[s->vars[s->level_var].file];
        fprintf(out, ", %d levels (", s->C);
        for (int c = 0; c < s->C; c++) fprintf(out, c ? ", %g" : "%g", f->level[c]);
        fprintf(out, " hPa%s)", f->level_in_pa ? ", from Pa" : "");
    }
    fprintf(out, "\n");
    for (int g = 0; g < 3; g++) {
        int any = 0;
        for (int i = 0; i < s->n_vars; i++) {
            const aur__wx_var *v = &s->vars[i];
            if (v->group != g || !aur__wx_first_of_name(s, i)) continue;
            fprintf(out, any ? ", " : "  %-6s ", aur__wx_group_name[g]);
            if (strcmp(v->name, v->file_name)) fprintf(out, "%s (%s)", v->name, v->file_name);
            else fprintf(out, "%s", v->name);
            any = 1;
        }
        if (any) fprintf(out, "\n");
    }
    if (s->flip_lat || s->lon_shift) {
        fprintf(out, "  conventions:%s", s->flip_lat ? " latitudes reversed to decrease" : "");
        if (s->lon_shift) fprintf(out, "%s longitudes rolled by %d columns into [0, 360)", s->flip_lat ? ";" : "", s->lon_shift);
        fprintf(out, "\n");
    }
}

/* Scans weather files into a set: each file's variables, then one grid, one set of levels and the times. */
static int aur__wx_scan(aur__wx_set *s, const char *const *paths, int n, const char *renames)
{
    memset(s, 0, sizeof *s);
    s->n_paths = n;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        int kind = aur__data_kind(paths[i]), fi = kind == 2 || kind < 0 ? kind : aur__wx_add_file(s, paths[i]);
        rc = kind == 2 ? aur__grib_scan(s, paths[i], renames) : fi < 0 ? fi : aur__wx_scan_file(s, fi, renames);
    }
    if (!rc) rc = aur__wx_grid(s);
    if (!rc) rc = aur__wx_levels(s);
    if (!rc) rc = aur__wx_times(s);
    return rc;
}

static void aur__wx_free(aur__wx_set *s)
{
    for (int i = 0; i < s->n_files; i++) aur__wx_close(&s->files[i]);
    AUR_FREE(s->files);
    AUR_FREE(s->vars);
    AUR_FREE(s->times);
    AUR_FREE(s->work);
    memset(s, 0, sizeof *s);
}

#endif

/* ==== Aurora: GRIB files in a weather series ====
   The reference's HRES examples (docs/example_hres_t0, example_hres_0.1)
   open GRIB 1/2 files with xarray's cfgrib engine, which decodes every
   message with ecCodes. Here the same messages through ecCodes' C API.
   A GRIB file is a sequence of 2-D fields, each with its parameter
   (shortName), level type and level, and valid time; this reader gathers
   the messages of one parameter and level type into what a NetCDF
   variable is for aurora/weather.c (a "file" of its own, with time, level,
   latitude and longitude coordinates), so the series' checks, flips and
   rolls are the NetCDF reader's. Levels come in cfgrib's order
   (decreasing pressure), times increasing, values as ecCodes decodes them
   (doubles, rounded to float32), bitmap points as NaN. */

#ifdef AUR_NETCDF
#ifdef AUR_GRIB
#include <eccodes.h>

/* One parameter and level type of one GRIB file: where its messages are. */
struct aur__grib_field {
    FILE *fp;     /* the file's one stream, shared by its fields */
    int owns_fp;  /* the file's first field closes it */
    long *offset; /* [time][level]: the message's byte offset in the file */
    size_t points, stride_lat, stride_lon;
};

/* What one message says about itself. */
typedef struct aur__grib_msg {
    char short_name[64], level_type[64], grid[32], units[64];
    long level, number, ni, nj, j_consecutive, alternative_rows, paramid, j_positive, i_negative;
    double lat_first, lon_first; /* degrees: a field's messages must lie on one grid */
    double time; /* valid time, Unix seconds */
    long offset;
    int index;   /* its place in the file, from 1, for messages */
} aur__grib_msg;

static int aur__grib_err(int code, const char *path, int index, const char *what)
{
    return aur__err(AUR_EFORMAT, "%s: GRIB message %d: %s: %s", path, index, what, codes_get_error_message(code));
}

static long aur__grib_long(codes_handle *h, const char *key, long fallback)
{
    long v;
    return codes_get_long(h, key, &v) == CODES_SUCCESS ? v : fallback;
}

static void aur__grib_text(codes_handle *h, const char *key, char *out, size_t size)
{
    size_t n = size;
    if (codes_get_string(h, key, out, &n) != CODES_SUCCESS) out[0] = 0;
}

static int aur__grib_read_msg(codes_handle *h, const char *path, int index, aur__grib_msg *m)
{
    memset(m, 0, sizeof *m);
    m->index = index;
    aur__grib_text(h, "shortName", m->short_name, sizeof m->short_name);
    aur__grib_text(h, "typeOfLevel", m->level_type, sizeof m->level_type);
    aur__grib_text(h, "gridType", m->grid, sizeof m->grid);
    aur__grib_text(h, "units", m->units, sizeof m->units);
    m->level = aur__grib_long(h, "level", 0), m->number = aur__grib_long(h, "number", 0), m->paramid = aur__grib_long(h, "paramId", 0);
    m->ni = aur__grib_long(h, "Ni", 0), m->nj = aur__grib_long(h, "Nj", 0), m->j_consecutive = aur__grib_long(h, "jPointsAreConsecutive", 0);
    m->alternative_rows = aur__grib_long(h, "alternativeRowScanning", 0);
    m->j_positive = aur__grib_long(h, "jScansPositively", 0), m->i_negative = aur__grib_long(h, "iScansNegatively", 0);
    if (codes_get_double(h, "latitudeOfFirstGridPointInDegrees", &m->lat_first) != CODES_SUCCESS) m->lat_first = NAN;
    if (codes_get_double(h, "longitudeOfFirstGridPointInDegrees", &m->lon_first) != CODES_SUCCESS) m->lon_first = NAN;
    long date = aur__grib_long(h, "validityDate", -1), hhmm = aur__grib_long(h, "validityTime", -1);
    int rc = codes_get_long(h, "offset", &m->offset);
    if (rc != CODES_SUCCESS) return aur__grib_err(rc, path, index, "offset");
    if (!m->short_name[0] || !strcmp(m->short_name, "unknown"))
        return aur__err(AUR_EFORMAT, "%s: GRIB message %d: a parameter ecCodes does not know (paramId %ld); is the centre's local table installed?",
                        path, index, m->paramid);
    if (strcmp(m->grid, "regular_ll") && strcmp(m->grid, "regular_gg"))
        return aur__err(AUR_EUNSUPPORTED, "%s: GRIB message %d (%s): grid '%s'; only regular latitude-longitude (or Gaussian) grids are read: "
                        "interpolate to one first (e.g. with MIR or cdo)", path, index, m->short_name, m->grid);
    if (m->ni < 1 || m->nj < 1 || m->alternative_rows)
        return aur__err(AUR_EFORMAT, "%s: GRIB message %d (%s): a %ld x %ld grid%s", path, index, m->short_name, m->nj, m->ni,
                        m->alternative_rows ? " scanned in alternating rows" : "");
    int d = (int)(date % 100), mo = (int)(date / 100 % 100), y = (int)(date / 10000), hh = (int)(hhmm / 100), mi = (int)(hhmm % 100);
    if (date < 0 || hhmm < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mi > 59)
        return aur__err(AUR_EFORMAT, "%s: GRIB message %d (%s): no valid time (validityDate %ld, validityTime %ld)", path, index, m->short_name, date, hhmm);
    m->time = (double)((aur__days_from_civil(y, mo, d) * 24 + hh) * 60 + mi) * 60;
    return 0;
}

/* Every message's header, in file order. */
static int aur__grib_list(const char *path, aur__grib_msg **out, int *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno));
    aur__grib_msg *msgs = NULL;
    int count = 0, rc = 0;
    for (;;) {
        int err = 0;
        codes_handle *h = codes_handle_new_from_file(NULL, fp, PRODUCT_GRIB, &err);
        if (!h) {
            if (err != CODES_SUCCESS && err != CODES_END_OF_FILE) rc = aur__grib_err(err, path, count + 1, "cannot be read (a truncated file?)");
            break;
        }
        aur__grib_msg *grown = (aur__grib_msg *)AUR_REALLOC(msgs, sizeof *grown * (size_t)(count + 1));
        rc = grown ? aur__grib_read_msg(h, path, count + 1, &grown[count]) : aur__err(AUR_ENOMEM, "out of memory listing GRIB messages");
        codes_handle_delete(h);
        if (grown) msgs = grown;
        if (rc) break;
        count++;
    }
    /* ecCodes stops without an error at bytes that do not start a message: the file must end with its last message */
    if (!rc && !feof(fp)) {
        long end = ftell(fp);
        if (fgetc(fp) != EOF) rc = aur__err(AUR_EFORMAT, "%s: bytes after GRIB message %d (at offset %ld) are no GRIB message (a truncated file?)", path, count, end);
    }
    fclose(fp);
    if (!rc && !count) rc = aur__err(AUR_EFORMAT, "%s: no GRIB message", path);
    if (rc) return AUR_FREE(msgs), rc;
    *out = msgs, *n = count;
    return 0;
}

/* Pressure levels are the atmosphere's; model levels are refused; any other level type is one level. */
static int aur__grib_level_kind(const aur__grib_msg *m)
{
    if (!strcmp(m->level_type, "isobaricInhPa")) return 1;
    if (!strcmp(m->level_type, "isobaricInPa")) return 2;
    if (!strcmp(m->level_type, "hybrid") || !strncmp(m->level_type, "generalVertical", 15) || !strcmp(m->level_type, "hybridPressure")) return -1;
    return 0;
}

static int aur__cmp_level_down(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The sorted distinct values of one key over the messages of a field. */
static int aur__grib_axis(const aur__grib_msg *msgs, const int *sel, int n, int levels, double **out, int *len)
{
    double *v = (double *)aur__malloc(sizeof(double) * (size_t)n, "a GRIB axis");
    if (!v) return AUR_ENOMEM;
    for (int i = 0; i < n; i++) v[i] = levels ? (double)msgs[sel[i]].level : msgs[sel[i]].time;
    *out = v, *len = (int)aur__sort_unique(v, (size_t)n, levels ? aur__cmp_level_down : aur__cmp_double, 0);
    return 0;
}

static int aur__grib_index_of(const double *axis, int n, double x)
{
    for (int i = 0; i < n; i++)
        if (axis[i] == x) return i;
    return -1;
}

/* The grid's coordinates in the messages' point order, from ecCodes' latitudes and longitudes of the first message. */
static int aur__grib_coords(aur__wx_file *f, const aur__grib_msg *m)
{
    aur__grib_field *g = f->grib;
    FILE *fp = g->fp;
    int err = 0;
    if (fseek(fp, m->offset, SEEK_SET)) return aur__err(AUR_EIO, "%s: cannot seek: %s", f->path, strerror(errno));
    codes_handle *h = codes_handle_new_from_file(NULL, fp, PRODUCT_GRIB, &err);
    if (!h) return aur__grib_err(err ? err : CODES_END_OF_FILE, f->path, m->index, "cannot be read");
    size_t n = g->points, got_lat = n, got_lon = n;
    double *lats = (double *)aur__malloc(sizeof(double) * n, "GRIB latitudes"), *lons = (double *)aur__malloc(sizeof(double) * n, "GRIB longitudes");
    int rc = lats && lons ? 0 : AUR_ENOMEM;
    if (!rc && (err = codes_get_double_array(h, "latitudes", lats, &got_lat)) == CODES_SUCCESS) err = codes_get_double_array(h, "longitudes", lons, &got_lon);
    if (!rc && (err || got_lat != n || got_lon != n)) rc = aur__grib_err(err ? err : CODES_WRONG_ARRAY_SIZE, f->path, m->index, "coordinates");
    codes_handle_delete(h);
    f->lat = rc ? NULL : (double *)aur__malloc(sizeof(double) * f->len[AUR__WX_LAT], "GRIB latitudes");
    f->lon = rc ? NULL : (double *)aur__malloc(sizeof(double) * f->len[AUR__WX_LON], "GRIB longitudes");
    if (!rc && (!f->lat || !f->lon)) rc = AUR_ENOMEM;
    for (size_t y = 0; !rc && y < f->len[AUR__WX_LAT]; y++) f->lat[y] = lats[y * g->stride_lat];
    for (size_t x = 0; !rc && x < f->len[AUR__WX_LON]; x++) f->lon[x] = lons[x * g->stride_lon];
    AUR_FREE(lats);
    AUR_FREE(lons);
    return rc;
}

/* The messages of one parameter and level type as a "file" and its variable. */
static int aur__grib_field_of(aur__wx_set *s, int fi, const aur__grib_msg *msgs, const int *sel, int n, const char *renames)
{
    aur__wx_file *f = &s->files[fi];
    const aur__grib_msg *m0 = &msgs[sel[0]];
    int kind = aur__grib_level_kind(m0), nt = 0, nl = 0;
    if (kind < 0)
        return aur__err(AUR_EUNSUPPORTED, "%s: %s is on model levels ('%s'); Aurora takes pressure levels (isobaricInhPa)", f->path, m0->short_name,
                        m0->level_type);
    int rc = aur__grib_axis(msgs, sel, n, 0, &f->time, &nt);
    if (!rc) rc = aur__grib_axis(msgs, sel, n, 1, &f->level, &nl);
    if (rc) return rc;
    if (!kind && nl > 1)
        return aur__err(AUR_EFORMAT, "%s: %s comes on %d levels of type '%s' (%g, %g, ...); only pressure levels can have more than one", f->path,
                        m0->short_name, nl, m0->level_type, f->level[0], f->level[1]);
    f->len[AUR__WX_TIME] = (size_t)nt, f->len[AUR__WX_LEVEL] = kind ? (size_t)nl : 0;
    f->len[AUR__WX_LAT] = (size_t)m0->nj, f->len[AUR__WX_LON] = (size_t)m0->ni;
    f->level_in_pa = kind == 2;
    for (int c = 0; f->level_in_pa && c < nl; c++) f->level[c] /= 100;
    aur__grib_field *g = f->grib;
    g->points = (size_t)m0->ni * (size_t)m0->nj;
    g->stride_lat = m0->j_consecutive ? 1 : (size_t)m0->ni, g->stride_lon = m0->j_consecutive ? (size_t)m0->nj : 1;
    g->offset = (long *)aur__malloc(sizeof(long) * (size_t)nt * (size_t)nl, "GRIB message offsets");
    if (!g->offset) return AUR_ENOMEM;
    for (int i = 0; i < nt * nl; i++) g->offset[i] = -1;
    char t1[32];
    for (int i = 0; i < n; i++) {
        const aur__grib_msg *m = &msgs[sel[i]];
        if (m->ni != m0->ni || m->nj != m0->nj || m->j_consecutive != m0->j_consecutive || m->j_positive != m0->j_positive ||
            m->i_negative != m0->i_negative || !(fabs(m->lat_first - m0->lat_first) <= 1e-6) || !(fabs(m->lon_first - m0->lon_first) <= 1e-6))
            return aur__err(AUR_EFORMAT, "%s: GRIB message %d (%s): its grid (%ld x %ld from %g, %g, or its scanning) is not message %d's (%ld x %ld "
                            "from %g, %g)", f->path, m->index, m->short_name, m->nj, m->ni, m->lat_first, m->lon_first, m0->index, m0->nj, m0->ni,
                            m0->lat_first, m0->lon_first);
        long *slot = &g->offset[aur__grib_index_of(f->time, nt, m->time) * nl + aur__grib_index_of(f->level, nl, (double)m->level / (kind == 2 ? 100 : 1))];
        if (*slot >= 0)
            return aur__err(AUR_EFORMAT, "%s: GRIB message %d: %s at level %ld at %s is there twice (ensemble members or several forecasts? select "
                            "one with grib_copy -w)", f->path, m->index, m->short_name, m->level, aur__wx_time_str(m->time, t1, sizeof t1));
        *slot = m->offset;
    }
    for (int t = 0; t < nt; t++)
        for (int c = 0; c < nl; c++)
            if (g->offset[t * nl + c] < 0)
                return aur__err(AUR_EFORMAT, "%s: %s has no message at level %g at %s, which it has at other times", f->path, m0->short_name,
                                f->level[c], aur__wx_time_str(f->time[t], t1, sizeof t1));
    if ((rc = aur__grib_coords(f, m0))) return rc;

    aur__wx_var v;
    memset(&v, 0, sizeof v);
    v.file = fi;
    snprintf(v.file_name, sizeof v.file_name, "%s", m0->short_name);
    if ((rc = aur__wx_aurora_name(v.file_name, renames, v.name))) return rc;
    v.group = aur__wx_group(&v, 1, kind != 0);
    if ((rc = aur__wx_check_units(f->path, &v, m0->units))) return rc;
    return aur__wx_add_var(s, &v);
}

/* Every parameter and level type of a GRIB file, each as a "file" of the set. */
static int aur__grib_scan(aur__wx_set *s, const char *path, const char *renames)
{
    aur__grib_msg *msgs = NULL;
    int n = 0, rc = aur__grib_list(path, &msgs, &n);
    if (rc) return rc;
    int *sel = (int *)aur__malloc(sizeof(int) * (size_t)n, "GRIB messages"), *done = (int *)aur__calloc(sizeof(int) * (size_t)n, "GRIB messages");
    if (!sel || !done) rc = AUR_ENOMEM;
    FILE *fp = NULL; /* one stream for all the file's fields, closed with its first field */
    for (int i = 0; i < n && !rc; i++) {
        if (done[i]) continue;
        int k = 0;
        for (int e = i; e < n; e++)
            if (!done[e] && !strcmp(msgs[e].short_name, msgs[i].short_name) && !strcmp(msgs[e].level_type, msgs[i].level_type)) sel[k++] = e, done[e] = 1;
        int fi = aur__wx_add_file(s, path);
        if (fi < 0) { rc = fi; break; }
        aur__wx_file *f = &s->files[fi];
        f->grib = (aur__grib_field *)aur__calloc(sizeof(aur__grib_field), "a GRIB field");
        if (!f->grib) { rc = AUR_ENOMEM; break; }
        if (!fp && !(fp = fopen(path, "rb"))) { rc = aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno)); break; }
        f->grib->fp = fp, f->grib->owns_fp = !i;
        rc = aur__grib_field_of(s, fi, msgs, sel, k, renames);
    }
    AUR_FREE(sel);
    AUR_FREE(done);
    AUR_FREE(msgs);
    return rc;
}

/* Step j of a GRIB field: every level's message into work, (level, lat, lon) strides as the points lie. */
static int aur__grib_read_step(const aur__wx_file *f, size_t j, double *work, size_t *stride)
{
    const aur__grib_field *g = f->grib;
    size_t nl = f->len[AUR__WX_LEVEL] ? f->len[AUR__WX_LEVEL] : 1;
    for (size_t c = 0; c < nl; c++) {
        int err = 0;
        long off = g->offset[j * nl + c];
        if (fseek(g->fp, off, SEEK_SET)) return aur__err(AUR_EIO, "%s: cannot seek: %s", f->path, strerror(errno));
        codes_handle *h = codes_handle_new_from_file(NULL, g->fp, PRODUCT_GRIB, &err);
        if (!h) return aur__err(AUR_EIO, "%s: the GRIB message at offset %ld cannot be read again: %s", f->path, off, codes_get_error_message(err));
        size_t got = g->points;
        double *out = work + c * g->points, missing = 0;
        err = codes_get_double_array(h, "values", out, &got);
        int bitmap = aur__grib_long(h, "bitmapPresent", 0) && codes_get_double(h, "missingValue", &missing) == CODES_SUCCESS;
        codes_handle_delete(h);
        if (err || got != g->points)
            return aur__err(AUR_EFORMAT, "%s: the GRIB message at offset %ld: %zu values for %zu points: %s", f->path, off, got, g->points,
                            codes_get_error_message(err ? err : CODES_WRONG_ARRAY_SIZE));
        for (size_t i = 0; bitmap && i < got; i++)
            if (out[i] == missing) out[i] = NAN;
    }
    stride[AUR__WX_LEVEL] = g->points, stride[AUR__WX_LAT] = g->stride_lat, stride[AUR__WX_LON] = g->stride_lon;
    return 0;
}

static void aur__grib_close(aur__wx_file *f)
{
    if (!f->grib) return;
    if (f->grib->fp && f->grib->owns_fp) fclose(f->grib->fp);
    AUR_FREE(f->grib->offset);
    AUR_FREE(f->grib);
}

#else /* built without ecCodes */

static int aur__grib_scan(aur__wx_set *s, const char *path, const char *renames)
{
    (void)s, (void)renames;
    return aur__err(AUR_EUNSUPPORTED, "%s: reading GRIB needs the implementation compiled with -DAUR_GRIB and linked with -leccodes (Debian: "
                    "libeccodes-dev); or convert it to NetCDF with grib_to_netcdf", path);
}
static int aur__grib_read_step(const aur__wx_file *f, size_t j, double *work, size_t *stride)
{
    (void)f, (void)j, (void)work, (void)stride;
    return AUR_EUNSUPPORTED;
}
static void aur__grib_close(aur__wx_file *f) { (void)f; }
#endif
#endif

/* ==== Aurora: a series read window by window ====
   A training run visits a series as windows of history + rollout steps.
   Reading the whole series to cut one window costs a year of ERA5 at
   0.25 degrees (about 400 GB) for every file; here a series is opened once
   (names, grid, levels, times and the static fields are read and checked)
   and each window reads only its own steps: byte ranges of a safetensors
   series, hyperslabs of NetCDF and Zarr variables, the messages of GRIB
   fields. A window equals aur_batch_window of the whole series, bit for bit.

   libnetcdf, HDF5 and ecCodes are not thread-safe, and a loader thread
   reads while the trainer evaluates: every call into them here holds
   aur__io_lock. */

static pthread_mutex_t aur__io_lock = PTHREAD_MUTEX_INITIALIZER;

/* Takes the lock (and quiets HDF5 on a thread new to it). */
static void aur__io_enter(void)
{
    pthread_mutex_lock(&aur__io_lock);
#ifdef AUR_NETCDF
    aur__nc_quiet_thread();
#endif
}

struct aur_series {
    char **paths;
    int n_paths;
    aur_batch *layout; /* names, grid, levels, last time, statics; no surface or atmospheric tensors; T = the length */
    aur_st_file *st;   /* a safetensors series, or */
#ifdef AUR_NETCDF
    aur__wx_set wx;    /* weather files (aurora/weather.c) */
#endif
};

/* ---- opening ---- */

/* A safetensors series: every surface and atmospheric entry of the batch's shape and a readable dtype, the statics read. */
static aur_batch *aur__series_st_layout(const aur_st_file *f)
{
    aur_batch *b = aur__batch_st_shell(f);
    int rc = b ? 0 : AUR_EFORMAT;
    size_t size;
    if (!rc) {
        int64_t s4[4] = {b->B, b->T, b->H, b->W}, s2[2] = {b->H, b->W}, s5[5] = {b->B, b->T, b->C, b->H, b->W};
        const aur_st_tensor *e;
        for (int i = 0; i < b->surf_names.n && !rc; i++)
            rc = (e = aur__batch_entry(f, "surf", b->surf_names.name[i], 4, s4)) ? aur__st_readable(f, e, &size) : AUR_EFORMAT;
        for (int i = 0; i < b->atmos_names.n && !rc; i++)
            rc = (e = aur__batch_entry(f, "atmos", b->atmos_names.name[i], 5, s5)) ? aur__st_readable(f, e, &size) : AUR_EFORMAT;
        for (int i = 0; i < b->static_names.n && !rc; i++)
            rc = (b->statics[i] = aur__batch_read(f, "static", b->static_names.name[i], 2, s2, 1)) ? 0 : AUR_EFORMAT;
    }
    if (!rc) rc = aur__batch_meta(f, b);
    if (rc) aur_batch_free(b);
    return rc ? NULL : b;
}

/* What each path holds: 0 all weather files, 1 one safetensors file; an error for a mix. */
static int aur__series_kind(const char *const *paths, int n)
{
    int other = -1; /* the first path that is neither NetCDF, Zarr nor GRIB */
    for (int i = 0; i < n; i++) {
        int kind = aur__data_kind(paths[i]);
        if (kind < 0) return kind;
        if (!kind && other < 0) other = i;
    }
    if (n == 1 && other == 0) return 1;
    if (other >= 0)
        return aur__err(AUR_EINVAL, "%s: a safetensors batch is one file on its own; several files together must be NetCDF, Zarr or GRIB",
                        paths[other]);
    return 0;
}

static int aur__series_open_weather(aur_series *s, FILE *log, const char *renames)
{
#ifdef AUR_NETCDF
    int rc = aur__wx_scan(&s->wx, (const char *const *)s->paths, s->n_paths, renames);
    if (!rc) rc = (s->layout = aur__wx_layout(&s->wx)) ? 0 : AUR_EFORMAT;
    if (!rc && log) aur__wx_describe(&s->wx, log);
    return rc;
#else
    (void)log, (void)renames;
    return aur__err(AUR_EUNSUPPORTED, "%s: reading NetCDF, Zarr or GRIB needs the implementation compiled with -DAUR_NETCDF (and -DAUR_GRIB) and "
                    "linked with -lnetcdf (-leccodes) (Debian: libnetcdf-dev, libeccodes-dev)", s->paths[0]);
#endif
}

static void aur__series_free(aur_series *s)
{
    if (!s) return;
#ifdef AUR_NETCDF
    aur__wx_free(&s->wx);
#endif
    aur_st_close(s->st);
    aur_batch_free(s->layout);
    for (int i = 0; i < s->n_paths; i++) AUR_FREE(s->paths[i]);
    AUR_FREE(s->paths);
    AUR_FREE(s);
}

static aur_series *aur__series_open(const char *const *paths, int n, const char *renames, FILE *log)
{
    if (!paths || n < 1) return aur__err(AUR_EINVAL, "aur_series_open: no files"), (aur_series *)NULL;
    int kind = aur__series_kind(paths, n);
    if (kind < 0) return NULL;
    aur_series *s = (aur_series *)aur__calloc(sizeof *s, "a series");
    char **copy = s ? (char **)aur__calloc(sizeof(char *) * (size_t)n, "a series' paths") : NULL;
    if (!copy) return AUR_FREE(s), (aur_series *)NULL;
    s->paths = copy; /* the weather set keeps pointers to its paths */
    int rc = 0;
    for (int i = 0; i < n && !rc; i++, s->n_paths++) rc = (s->paths[i] = aur__strdup(paths[i])) ? 0 : AUR_ENOMEM;
    if (!rc && kind == 1) {
        rc = (s->st = aur_st_open(paths[0])) ? 0 : AUR_EFORMAT;
        if (!rc) rc = (s->layout = aur__series_st_layout(s->st)) ? 0 : AUR_EFORMAT;
    } else if (!rc) rc = aur__series_open_weather(s, log, renames);
    if (rc) aur__series_free(s);
    return rc ? NULL : s;
}

AURDEF aur_series *aur_series_open(const char *const *paths, int n, const char *renames, FILE *log)
{
    aur__io_enter();
    aur_series *s = aur__series_open(paths, n, renames, log);
    pthread_mutex_unlock(&aur__io_lock);
    return s;
}

AURDEF void aur_series_close(aur_series *s)
{
    aur__io_enter();
    aur__series_free(s);
    pthread_mutex_unlock(&aur__io_lock);
}

AURDEF int aur_series_length(const aur_series *s) { return s ? s->layout->T : 0; }
AURDEF double aur_series_step_seconds(const aur_series *s) { return s ? s->layout->step_seconds : 0; }
AURDEF const char *aur_series_path(const aur_series *s) { return s ? s->paths[0] : ""; }

/* ---- reading a window ---- */

/* Whether w has the series' layout (its names, sizes and grid) for a window of w->T steps. */
static int aur__series_fits(const aur_batch *l, const aur_batch *w)
{
    if (w->B != l->B || w->C != l->C || w->H != l->H || w->W != l->W || w->lat_2d != l->lat_2d || w->lon_2d != l->lon_2d || !w->owns_tensors)
        return 0;
    const aur_var_list *a[3] = {&l->surf_names, &l->static_names, &l->atmos_names}, *b[3] = {&w->surf_names, &w->static_names, &w->atmos_names};
    for (int k = 0; k < 3; k++) {
        if (a[k]->n != b[k]->n) return 0;
        for (int i = 0; i < a[k]->n; i++)
            if (strcmp(a[k]->name[i], b[k]->name[i])) return 0;
    }
    return 1;
}

/* Steps start..start+w->T-1 of every surface and atmospheric entry of a safetensors series: one byte range per sample. */
static int aur__series_st_fill(const aur_series *s, aur_batch *w, int start)
{
    const aur_batch *l = s->layout;
    int64_t hw = (int64_t)l->H * l->W;
    int rc = 0;
    for (int g = 0; g < 2 && !rc; g++) {
        const aur_var_list *names = g ? &l->atmos_names : &l->surf_names;
        int64_t per_step = g ? hw * l->C : hw;
        for (int i = 0; i < names->n && !rc; i++) {
            char key[160];
            snprintf(key, sizeof key, "%s/%s", g ? "atmos" : "surf", names->name[i]);
            aur_real *dst = (aur_real *)(g ? w->atmos[i] : w->surf[i])->data;
            const aur_st_tensor *e = aur_st_find(s->st, key);
            for (int b = 0; b < l->B && !rc; b++)
                rc = aur_st_read_range(s->st, e, ((int64_t)b * l->T + start) * per_step, w->T * per_step, dst + (int64_t)b * w->T * per_step);
        }
    }
    return rc;
}

/* The layout's coordinates, levels, statics and step, and the window's times (as aur_batch_window's). */
static void aur__series_meta(const aur_batch *l, aur_batch *w, int start, double step_seconds)
{
    int64_t hw = (int64_t)l->H * l->W;
    memcpy(w->lat, l->lat, sizeof(float) * (size_t)(l->lat_2d ? hw : l->H));
    memcpy(w->lon, l->lon, sizeof(float) * (size_t)(l->lon_2d ? hw : l->W));
    memcpy(w->levels, l->levels, sizeof w->levels);
    for (int i = 0; i < l->static_names.n; i++) memcpy(w->statics[i]->data, l->statics[i]->data, sizeof(aur_real) * (size_t)hw);
    w->step_seconds = l->step_seconds;
    w->rollout_step = 0;
    for (int b = 0; b < l->B; b++) w->time[b] = l->time[b] - (double)(l->T - start - w->T) * step_seconds;
}

AURDEF int aur_series_read_into(aur_series *s, int start, double step_seconds, aur_batch *w)
{
    if (!s || !w) return aur__err(AUR_EINVAL, "aur_series_read_into: no series or window");
    if (start < 0 || w->T < 1 || start + w->T > s->layout->T)
        return aur__err(AUR_EINVAL, "%s: a window of %d steps at step %d: the series has %d steps", s->paths[0], w->T, start, s->layout->T);
    if (!aur__series_fits(s->layout, w))
        return aur__err(AUR_ESHAPE, "%s: the window's buffer has another layout (variables, sizes or grid) than the series", s->paths[0]);
    aur__series_meta(s->layout, w, start, step_seconds);
    aur__io_enter();
#ifdef AUR_NETCDF
    int rc = s->st ? aur__series_st_fill(s, w, start) : aur__wx_fill_steps(&s->wx, w, start);
#else
    int rc = aur__series_st_fill(s, w, start);
#endif
    pthread_mutex_unlock(&aur__io_lock);
    return rc;
}

AURDEF aur_batch *aur_series_window_alloc(const aur_series *s, int steps, int pinned)
{
    if (!s || steps < 1) return aur__err(AUR_EINVAL, "aur_series_window_alloc: no series, or %d steps", steps), (aur_batch *)NULL;
    return aur__batch_alloc_like(s->layout, steps, pinned);
}

AURDEF aur_batch *aur_series_read(aur_series *s, int start, int steps, double step_seconds)
{
    aur_batch *w = aur_series_window_alloc(s, steps, 0);
    if (w && aur_series_read_into(s, start, step_seconds, w)) {
        aur_batch_free(w);
        return NULL;
    }
    return w;
}

/* ---- whole series ---- */

AURDEF aur_batch *aur_weather_load(const char *const *paths, int n, const char *renames, FILE *log)
{
    if (n < 1 || !paths) return aur__err(AUR_EINVAL, "aur_weather_load: no files"), (aur_batch *)NULL;
    for (int i = 0; i < n; i++)
        if (!aur__data_kind(paths[i]))
            return aur__err(AUR_EFORMAT, "%s: not a NetCDF file, Zarr store or GRIB file", paths[i]), (aur_batch *)NULL;
    aur_series *s = aur_series_open(paths, n, renames, log);
    aur_batch *b = s ? aur_series_read(s, 0, aur_series_length(s), aur_series_step_seconds(s)) : NULL;
    aur_series_close(s);
    return b;
}

AURDEF aur_batch *aur_batch_load_files(const char *const *paths, int n, const char *renames, FILE *log)
{
    int kind = aur__series_kind(paths, n);
    if (kind < 0) return NULL;
    return kind ? aur_batch_load_unchecked(paths[0]) : aur_weather_load(paths, n, renames, log);
}

/* ==== Aurora: forward ====
   One step of the model, as aurora/model/aurora.py: Aurora.forward runs it:

     batch_transform_hook      the variant's change of the raw batch (AuroraWave)
     normalise, crop           aurora/batch.py: Batch.normalise, Batch.crop
     clamp positive variables, then _pre_encoder_hook (AuroraAirPollution, AuroraWave)
     Perceiver3DEncoder        aurora/model/encoder.py: patches of every variable -> (B, Ld L, D) tokens
     Swin3DTransformerBackbone aurora/model/swin3d.py: a 3-D Swin U-Net over (levels, lat, lon)
     Perceiver3DDecoder        aurora/model/decoder.py: tokens -> a field per variable
     _post_decoder_hook        (AuroraAirPollution, AuroraWave)
     clamp positive variables, unnormalise

   This file holds the entry point and the steps around the three modules;
   encoder.c, backbone.c and decoder.c hold the modules (their building
   blocks, shared with the Perceivers, are in layers.c), variants.c the hooks. */

/* One forward call's working state. The sizes use the reference's letters
   (aurora/model/encoder.py: B, T, C, H, W; patch_size P; embed_dim D). */
typedef struct aur__fwd {
    aur__aurora *A;
    aur_tape *t;
    const aur_aurora_config *c;
    aur_batch *in;      /* the input batch as the hooks leave it (AuroraWave renames variables) */
    int B;              /* samples */
    int T;              /* history steps */
    int C;              /* pressure levels */
    int H, W;           /* latitudes and longitudes, cropped to whole patches */
    int P;              /* patch size */
    int h, w;           /* patches along latitude and longitude: H / P, W / P */
    int64_t L;          /* patches per level: h w */
    int D;              /* embed_dim: the token width (the decoder works at 2 D) */
    int Ld;             /* latent_levels: the surface level and Ld - 1 aggregated atmospheric ones */
    int step;           /* the input's rollout_step (for LoRA sets and probes) */
    int lora_set;       /* the LoRA set this step uses, or -1 */
    /* the normalised, cropped batch (the `batch` the decoder and the post-decoder hook see) */
    aur_tensor *surf[AUR_MAX_VARS], *statics[AUR_MAX_VARS], *atmos[AUR_MAX_VARS];
    /* the encoder's inputs: positive variables clamped, then the pre-encoder hook (`transformed_batch`) */
    aur_tensor *enc_surf[AUR_MAX_VARS], *enc_atmos[AUR_MAX_VARS];
    double levels[AUR_MAX_LEVELS]; /* hPa */
    float *lead_enc;    /* (B, D): the lead time's Fourier encoding (the encoder and the backbone's time_mlp) */
} aur__fwd;

/* The decoder's normalised predictions, before the post-decoder hook and unnormalisation. */
typedef struct aur__decoded {
    aur_var_list surf_names;     /* the post-decoder hook of AuroraWave renames them */
    aur_tensor *surf[AUR_MAX_VARS], *atmos[AUR_MAX_VARS];   /* (B, H, W) and (B, C, H, W) */
    aur_tensor *surf_mod[AUR_MAX_VARS], *atmos_mod[AUR_MAX_VARS]; /* modulation heads (AuroraAirPollution), or NULL */
    int n_atmos;
} aur__decoded;

/* The modules, in the order they run (encoder.c, backbone.c, decoder.c). */
static aur_tensor *aur__perceiver3d_encoder(aur__fwd *F);
static aur_tensor *aur__swin3d_backbone(aur__fwd *F, aur_tensor *x);
static int aur__perceiver3d_decoder(aur__fwd *F, aur_tensor *x, aur__decoded *out);
/* The variants' hooks (variants.c): each does nothing for the plain Aurora. */
static int aur__batch_transform_hook(aur_tape *t, const aur_aurora_config *c, aur_batch *b);
static int aur__pre_encoder_hook(aur__fwd *F);
static int aur__post_decoder_hook(aur__fwd *F, aur__decoded *d);

static aur__fwd *aur__fwd_begin(aur__aurora *A, aur_tape *t, const aur_batch *b);
static int aur__fwd_inputs(aur__fwd *F);
static int aur__clamp_positive_inputs(aur__fwd *F);
static aur_batch *aur__fwd_outputs(aur__fwd *F, const aur__decoded *d);
static void aur__keep_batch(aur_tape *t, aur_scope scope, const aur_batch *p);

AURDEF aur_batch *aur_aurora_forward(aur_model *m, aur_tape *t, const aur_batch *b)
{
    aur__aurora *A = aur__A(m);
    if (!A || !t || !b) return NULL;
    aur_scope scope = aur_scope_begin(t); /* what the step made goes at its end, but the prediction and what backward reads */
    aur__fwd *F = aur__fwd_begin(A, t, b);
    if (!F || aur__batch_transform_hook(t, F->c, F->in)) return NULL;
    if (aur__fwd_inputs(F) || aur__clamp_positive_inputs(F) || aur__pre_encoder_hook(F)) return NULL;
    aur_tensor *x = aur__perceiver3d_encoder(F);
    x = aur__swin3d_backbone(F, x);
    aur__decoded *d = (aur__decoded *)aur_tape_alloc(t, sizeof *d);
    if (!x || !d || aur__perceiver3d_decoder(F, x, d) || aur__post_decoder_hook(F, d)) return NULL;
    aur_batch *p = aur__fwd_outputs(F, d);
    if (p) aur__keep_batch(t, scope, p);
    return p;
}

/* Ends the forward's scope keeping the prediction's tensors. */
static void aur__keep_batch(aur_tape *t, aur_scope scope, const aur_batch *p)
{
    aur_tensor *keep[3 * AUR_MAX_VARS];
    int n = 0;
    for (int i = 0; i < p->surf_names.n; i++) keep[n++] = p->surf[i];
    for (int i = 0; i < p->static_names.n; i++) keep[n++] = p->statics[i];
    for (int i = 0; i < p->atmos_names.n; i++) keep[n++] = p->atmos[i];
    aur_scope_end(t, scope, keep, n);
}

/* The LoRA set a step uses (aurora/model/lora.py: LoRARollout), or -1. */
static int aur__lora_set(const aur_aurora_config *c, int step)
{
    if (!c->use_lora || step >= c->lora_steps) return -1;
    if (c->lora_mode == AUR_LORA_SINGLE) return 0;
    if (c->lora_mode == AUR_LORA_FROM_SECOND) return step >= 1 ? 0 : -1;
    return step;
}

/* The working state, in the step's arena, with a copy of the batch struct the hooks may change. */
static aur__fwd *aur__fwd_begin(aur__aurora *A, aur_tape *t, const aur_batch *b)
{
    const aur_aurora_config *c = &A->cfg;
    if (c->drop_rate > 0 && t->training) /* (aur_tape_set_training(t, 0) evaluates with it) */
        return aur__err(AUR_EUNSUPPORTED, "Aurora: drop_rate > 0 in training mode needs attention-weight dropout, not implemented"),
               (aur__fwd *)NULL;
    aur__fwd *F = (aur__fwd *)aur_tape_alloc(t, sizeof *F);
    aur_batch *w = (aur_batch *)aur_tape_alloc(t, sizeof *w);
    if (!F || !w) return NULL;
    memset(F, 0, sizeof *F);
    *w = *b;
    w->owns_tensors = 0;
    F->A = A, F->t = t, F->c = c, F->in = w;
    F->D = c->embed_dim, F->Ld = c->latent_levels;
    F->step = b->rollout_step;
    F->lora_set = aur__lora_set(c, F->step);
    return F;
}

/* ---- bands of patch rows ----
   The encoder and the decoder work patch by patch, so a large grid goes
   through them in bands of patch rows, one after another: only a band's
   activations exist at a time in a checkpointed module (and a band's
   temporaries in a plain one). A grid of up to AUR__BAND_FLOATS floats per
   unit (B L C width) is one band, so small grids run as before
   (cfg.band_floats sets another size). */
#define AUR__BAND_FLOATS ((int64_t)1 << 23)

/* How many bands a module with `per_patch` floats per patch (C levels x its
   width) takes the grid in, each of *rows patch rows but the last; at most
   1024 (-1 with an error naming the module). */
static int aur__bands(const aur__fwd *F, int64_t per_patch, const char *module, int *rows)
{
    int64_t band = F->c->band_floats > 0 ? (int64_t)F->c->band_floats : AUR__BAND_FLOATS;
    int64_t row = (int64_t)F->B * F->w * per_patch, r = row ? band / row : F->h;
    *rows = r < 1 ? 1 : r > F->h ? F->h : (int)r;
    int n = (F->h + *rows - 1) / *rows;
    if (n > 1024) return aur__err(AUR_EINVAL, "%s: %d bands of patch rows (at most 1024)", module, n), -1;
    return n;
}

/* The working state of band k, patch rows [k rows, k rows + its rows) (whose
   tokens the caller slices out): the same step on a shorter grid. */
static aur__fwd *aur__fwd_band(const aur__fwd *F, int k, int rows)
{
    aur__fwd *G = (aur__fwd *)aur_tape_alloc(F->t, sizeof *G); /* lives until backward (checkpoints keep it) */
    if (!G) return NULL;
    *G = *F;
    G->h = F->h - k * rows < rows ? F->h - k * rows : rows;
    G->H = G->h * F->P, G->L = (int64_t)G->h * F->w;
    return G;
}

/* A probe sees a named intermediate with the step's rollout_step (test hook). */
static void aur__probe(const aur__fwd *F, const char *name, const aur_tensor *x)
{
    if (F->A->probe && x) F->A->probe(F->A->probe_ctx, name, F->step, x);
}

/* ---- inputs: normalise and crop (aurora/batch.py: Batch.normalise, Batch.crop;
   aurora/normalisation.py) ---- */

/* x, a constant made on the host, on device dev: itself on the CPU, a copy in the step's arena on a GPU. */
static aur_tensor *aur__on(aur_tape *t, aur_tensor *x, aur_device dev)
{
    return !x || dev == AUR_CPU ? x : aur_to_device(t, x, dev);
}

static aur_tensor *aur__norm1(aur_tape *t, aur_tensor *x, double loc, double scale, int inverse)
{
    if (!x) return NULL;
    aur_tensor *flat = aur_reshape(t, x, aur_shape2(1, x->numel));
    return aur_reshape(t, aur_normalise(t, flat, 0, &loc, &scale, inverse), aur_tensor_shape(x));
}

/* Normalises a surface/static variable (or inverts it). */
static aur_tensor *aur__norm_surf(const aur__fwd *F, aur_tensor *x, const char *v, int inverse)
{
    double loc = 0, scale = 1;
    if (aur__surf_stats(F->A, v, &loc, &scale)) return NULL;
    return aur__norm1(F->t, x, loc, scale, inverse);
}

/* Normalises an atmospheric variable (..., C, H, W) per level. */
static aur_tensor *aur__norm_atmos(const aur__fwd *F, aur_tensor *x, const char *v, int inverse)
{
    double loc[AUR_MAX_LEVELS], scale[AUR_MAX_LEVELS];
    if (!x || aur__atmos_stats(F->A, v, F->levels, F->C, loc, scale)) return NULL;
    return aur_normalise(F->t, x, x->ndim - 3, loc, scale, inverse);
}

/* Drops the last latitude row when H0 % P == 1. */
static aur_tensor *aur__crop_rows(aur_tape *t, aur_tensor *x, int H)
{
    if (!x || x->shape[x->ndim - 2] == H) return x;
    return aur_slice(t, x, x->ndim - 2, 0, H);
}

static int aur__check_names(const aur_var_list *have, const aur_var_list *model, const char *what)
{
    for (int i = 0; i < have->n; i++)
        if (aur__vl_find(model, have->name[i]) < 0)
            return aur__err(AUR_EINVAL, "the batch has %s variable '%s', which the model has no weights for\n"
                            "---> HINT: add it to the config's %s_vars (and register its statistics)", what, have->name[i], what);
    return 0;
}

/* The sizes, checked against the model. */
static int aur__fwd_sizes(aur__fwd *F, const aur_batch *b)
{
    const aur_aurora_config *c = F->c;
    int P = c->patch_size, H0 = b->H;
    /* surface names are checked after the Wave hooks, which rename them */
    if ((!c->wave && aur__check_names(&b->surf_names, &c->surf_vars, "surf")) || aur__check_names(&b->static_names, &c->static_vars, "static") ||
        aur__check_names(&b->atmos_names, &c->atmos_vars, "atmos") || aur__check_coords(b))
        return AUR_EINVAL;
    if (b->W % P) return aur__err(AUR_ESHAPE, "batch: width %d is not a multiple of the patch size %d", b->W, P);
    if (H0 % P > 1) return aur__err(AUR_ESHAPE, "batch: height %d is more than one row off a multiple of the patch size %d", H0, P);
    if (H0 % P == 1 && b->lon_2d) return aur__err(AUR_EUNSUPPORTED, "batch: cropping a 2-D longitude grid (H %% P == 1) is ambiguous in the reference");
    if (b->T > c->max_history_size) return aur__err(AUR_ESHAPE, "batch: history %d is longer than max_history_size %d", b->T, c->max_history_size);
    if (b->atmos_names.n && b->C < 1) return aur__err(AUR_ESHAPE, "batch: atmospheric variables without pressure levels");
    for (int i = 0; i < b->B; i++)
        if (!isfinite(b->time[i])) return aur__err(AUR_EINVAL, "batch: element %d has no time (set batch->time[%d] to UTC Unix seconds)", i, i);
    F->B = b->B, F->T = b->T, F->C = b->C, F->W = b->W, F->P = P;
    F->H = H0 - H0 % P;
    F->h = F->H / P, F->w = F->W / P, F->L = (int64_t)F->h * F->w;
    memcpy(F->levels, b->levels, sizeof F->levels);
    return 0;
}

/* The lead time's encoding (the same for every sample). */
static int aur__lead_time_encoding(aur__fwd *F)
{
    F->lead_enc = (float *)aur_tape_alloc(F->t, sizeof(float) * (size_t)F->B * (size_t)F->D);
    if (!F->lead_enc) return AUR_ENOMEM;
    double hours = (double)(float)(F->c->timestep_seconds / 3600.0);
    /* fourier.py: lead_time_expansion, from a minute to three weeks */
    if (aur__fourier(&hours, 1, 1.0 / 60, 24 * 7 * 3, F->D, 1, F->lead_enc, "lead time")) return AUR_EINVAL;
    for (int i = 1; i < F->B; i++) memcpy(F->lead_enc + (int64_t)i * F->D, F->lead_enc, sizeof(float) * (size_t)F->D);
    return 0;
}

/* Brings the batch to the model's device, normalised and cropped to whole patches. */
static int aur__fwd_inputs(aur__fwd *F)
{
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    if (aur__fwd_sizes(F, b)) return AUR_EINVAL;
    aur_device dev = F->A->m->device;
    for (int i = 0; i < b->surf_names.n; i++)
        F->surf[i] = aur__crop_rows(t, aur__norm_surf(F, aur__on(t, b->surf[i], dev), b->surf_names.name[i], 0), F->H);
    for (int i = 0; i < b->static_names.n; i++)
        F->statics[i] = aur__crop_rows(t, aur__norm_surf(F, aur__on(t, b->statics[i], dev), b->static_names.name[i], 0), F->H);
    for (int i = 0; i < b->atmos_names.n; i++)
        F->atmos[i] = aur__crop_rows(t, aur__norm_atmos(F, aur__on(t, b->atmos[i], dev), b->atmos_names.name[i], 0), F->H);
    for (int i = 0; i < b->surf_names.n; i++)
        if (!F->surf[i]) return AUR_EINVAL;
    for (int i = 0; i < b->static_names.n; i++)
        if (!F->statics[i]) return AUR_EINVAL;
    for (int i = 0; i < b->atmos_names.n; i++)
        if (!F->atmos[i]) return AUR_EINVAL;
    return aur__lead_time_encoding(F);
}

/* x clamped at 0 when v is one of the positive variables. */
static aur_tensor *aur__clamp_if_positive(aur_tape *t, aur_tensor *x, const char *v, const aur_var_list *positive)
{
    return aur__vl_find(positive, v) < 0 ? x : aur_clamp(t, x, 0, INFINITY);
}

/* The encoder's inputs start as the batch with its positive variables clamped at 0. */
static int aur__clamp_positive_inputs(aur__fwd *F)
{
    const aur_batch *b = F->in;
    for (int i = 0; i < b->surf_names.n; i++)
        if (!(F->enc_surf[i] = aur__clamp_if_positive(F->t, F->surf[i], b->surf_names.name[i], &F->c->positive_surf_vars))) return AUR_EINVAL;
    for (int i = 0; i < b->atmos_names.n; i++)
        if (!(F->enc_atmos[i] = aur__clamp_if_positive(F->t, F->atmos[i], b->atmos_names.name[i], &F->c->positive_atmos_vars))) return AUR_EINVAL;
    return 0;
}

/* ---- outputs: clamp positive variables, unnormalise ---- */

/* The prediction batch on the tape: the batch's cropped grid, levels and names, the next step's time. */
static aur_batch *aur__pred_shell(const aur__fwd *F, const aur_var_list *surf_names)
{
    aur_batch *p = aur__batch_like(F->t, F->in, 1, F->H);
    if (!p) return NULL;
    for (int i = 0; i < F->B; i++) p->time[i] += F->c->timestep_seconds;
    p->rollout_step++;
    p->surf_names = *surf_names;
    return p;
}

/* The prediction in physical units, with its history axis; positive variables
   are clamped from the second step on (or from the first with clamp_at_first_step). */
static aur_batch *aur__fwd_outputs(aur__fwd *F, const aur__decoded *d)
{
    const aur_aurora_config *c = F->c;
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    aur_batch *p = aur__pred_shell(F, &d->surf_names);
    if (!p) return NULL;
    int clamp = p->rollout_step > 1 || c->clamp_at_first_step;
    for (int i = 0; i < d->surf_names.n; i++) {
        const char *v = d->surf_names.name[i];
        aur_tensor *y = aur_reshape(t, d->surf[i], aur_shape4(F->B, 1, F->H, F->W));
        if (clamp) y = aur__clamp_if_positive(t, y, v, &c->positive_surf_vars);
        if (!(p->surf[i] = aur__norm_surf(F, y, v, 1))) return NULL;
    }
    for (int i = 0; i < b->atmos_names.n; i++) {
        const char *v = b->atmos_names.name[i];
        aur_tensor *y = aur_reshape(t, d->atmos[i], aur_shape5(F->B, 1, F->C, F->H, F->W));
        if (clamp) y = aur__clamp_if_positive(t, y, v, &c->positive_atmos_vars);
        if (!(p->atmos[i] = aur__norm_atmos(F, y, v, 1))) return NULL;
    }
    for (int i = 0; i < b->static_names.n; i++) /* normalised then unnormalised, as the reference returns them */
        if (!(p->statics[i] = aur__norm_surf(F, F->statics[i], b->static_names.name[i], 1))) return NULL;
    return p;
}

/* ==== Aurora: the building blocks of its modules ====
   Parameters and linear layers by their state_dict names, constants on the
   model's device, the Perceivers' MLP and PerceiverResampler
   (aurora/model/perceiver.py), and the head split of attention. */

/* A constant tensor in the arena from host floats (no gradient), on dev. */
static aur_tensor *aur__const(aur_tape *t, aur_device dev, aur_shape s, const float *v)
{
    aur_tensor *x = aur__tensor(t, AUR_F32, AUR_CPU, s);
    if (x)
        for (int64_t i = 0; i < x->numel; i++) aur__wr(x)[i] = (aur_real)v[i];
    return aur__on(t, x, dev);
}

/* A constant view of a table the model keeps (cached masks, DFT matrices), on the model's device. */
static aur_tensor *aur__const_view(aur_tape *t, aur_model *m, aur_shape s, const aur_real *data)
{
    aur_tensor *x = (aur_tensor *)aur__alloc(t, AUR_CPU, sizeof *x);
    if (!x) return NULL;
    aur__tensor_init(x, AUR_F32, m->device, s);
    x->data = (void *)aur__mirror_of(m, data, sizeof(aur_real) * (size_t)aur_shape_numel(s));
    return x->data ? x : NULL;
}

/* A linear module by name; a PEFT-style adapter on it (lora.h) applies too. */
static aur_tensor *aur__lin(const aur__fwd *F, aur_tensor *x, const char *prefix, int bias)
{
    return aur_model_linear(F->t, F->A->m, prefix, x, bias);
}

static aur_tensor *aur__ln(const aur__fwd *F, aur_tensor *x, const char *prefix, double eps)
{
    aur_tensor *w = aur__paramf(F->A->m, "%s.weight", prefix), *b = aur__paramf(F->A->m, "%s.bias", prefix);
    return w && b ? aur_layernorm(F->t, x, w, b, eps) : NULL;
}

/* Linear -> GELU -> Linear -> dropout: perceiver.py: MLP (the Perceivers' and the surface level's);
   the Swin blocks' MLP (swin3d.py: MLP) drops out after the GELU as well. */
static aur_tensor *aur__mlp(const aur__fwd *F, aur_tensor *x, const char *fc1, const char *fc2, int swin)
{
    aur_scope s = aur_scope_begin(F->t), pre = aur_scope_begin(F->t); /* the hidden layer's bytes go at once (backward holds what it reads) */
    aur_tensor *h = aur_gelu(F->t, aur__lin(F, x, fc1, 1));
    aur_scope_end(F->t, pre, &h, 1); /* fc1's output before fc2 runs (under autocast backward keeps it in BF16) */
    if (swin) h = aur_dropout(F->t, h, F->c->drop_rate);
    aur_tensor *y = aur_dropout(F->t, aur__lin(F, h, fc2, 1), F->c->drop_rate);
    aur_scope_end(F->t, s, &y, 1);
    return y;
}

/* (N, L, nh*hd) -> (N, nh, L, hd) and back. */
static aur_tensor *aur__split_heads(aur_tape *t, aur_tensor *x, int nh)
{
    if (!x) return NULL;
    static const int perm[4] = {0, 2, 1, 3};
    int64_t N = x->shape[0], L = x->shape[1], hd = x->shape[2] / nh;
    return aur_permute(t, aur_reshape(t, x, aur_shape4(N, L, nh, hd)), perm);
}

static aur_tensor *aur__merge_heads(aur_tape *t, aur_tensor *x)
{
    if (!x) return NULL;
    static const int perm[4] = {0, 2, 1, 3};
    int64_t N = x->shape[0], nh = x->shape[1], L = x->shape[2], hd = x->shape[3];
    return aur_reshape(t, aur_permute(t, x, perm), aur_shape3(N, L, nh * hd));
}

/* kv (N, L, 2 nh hd) -> k and v (N, nh, L, hd), views of one head-major copy (2, N, nh, L, hd). */
static void aur__split_kv(aur_tape *t, aur_tensor *kv, int nh, aur_tensor **k, aur_tensor **v)
{
    *k = *v = NULL;
    if (!kv) return;
    static const int perm[5] = {2, 0, 3, 1, 4};
    int64_t N = kv->shape[0], L = kv->shape[1], hd = kv->shape[2] / (2 * nh), s5[5] = {N, L, 2, nh, hd};
    aur_tensor *both = aur_permute(t, aur_reshape(t, kv, aur_shapev(5, s5)), perm);
    *k = aur_reshape(t, aur_slice(t, both, 0, 0, 1), aur_shape4(N, nh, L, hd));
    *v = aur_reshape(t, aur_slice(t, both, 0, 1, 1), aur_shape4(N, nh, L, hd));
}

/* aurora/model/perceiver.py: PerceiverResampler. Latents Q (N, Lq, dim)
   attend to the context X (N, Lc, dim), depth times: attention
   (PerceiverAttention), then the MLP, each with a post-norm residual. With
   ln_kq (stabilise_level_agg) the first layer normalises k and q. */
static aur_tensor *aur__perceiver_resampler(const aur__fwd *F, const char *prefix, aur_tensor *Q, aur_tensor *X, int depth, int ln_kq,
                                            double eps)
{
    char p[256], p2[256];
    aur_tape *t = F->t;
    int nh = F->c->num_heads;
    aur_scope s = aur_scope_begin(t); /* ended after each layer: its temporaries and its input go */
    for (int k = 0; k < depth && Q; k++) {
        aur_scope attn = aur_scope_begin(t);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_q", prefix, k);
        aur_tensor *q = aur__lin(F, Q, p, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_kv", prefix, k);
        aur_tensor *kv = aur__lin(F, X, p, 0);
        int64_t inner = q ? q->shape[2] : 0;
        aur_tensor *kh, *vh;
        if (ln_kq && k == 0) { /* k normalised before the head split, eps 1e-5 */
            aur_tensor *kk = aur_slice(t, kv, -1, 0, inner), *vv = aur_slice(t, kv, -1, inner, inner);
            snprintf(p, sizeof p, "%s.layers.0.0.ln_k", prefix);
            kh = aur__split_heads(t, aur__ln(F, kk, p, 1e-5), nh);
            vh = aur__split_heads(t, vv, nh);
            snprintf(p, sizeof p, "%s.layers.0.0.ln_q", prefix);
            q = aur__ln(F, q, p, 1e-5);
        } else { /* k and v split into heads by one copy, as views of it */
            aur__split_kv(t, kv, nh, &kh, &vh);
        }
        aur_tensor *o = aur_sdpa(t, aur__split_heads(t, q, nh), kh, vh, NULL, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_out", prefix, k);
        o = aur__lin(F, aur__merge_heads(t, o), p, 0);
        aur_scope_end(t, attn, &o, 1); /* the attention's temporaries go at once */
        snprintf(p, sizeof p, "%s.layers.%d.2", prefix, k);
        Q = aur_add(t, aur__ln(F, o, p, eps), Q); /* post-norm residuals */
        snprintf(p, sizeof p, "%s.layers.%d.1.net.0", prefix, k);
        snprintf(p2, sizeof p2, "%s.layers.%d.1.net.2", prefix, k);
        aur_tensor *h = aur__mlp(F, Q, p, p2, 0);
        snprintf(p, sizeof p, "%s.layers.%d.3", prefix, k);
        Q = aur_add(t, aur__ln(F, h, p, eps), Q);
        aur_scope_end(t, s, &Q, 1);
    }
    return Q;
}

/* ==== Aurora: Perceiver3DEncoder (aurora/model/encoder.py) ====
   Each patch becomes one D-wide token per level: the (T, P, P) values of
   every variable, each through its own kernel, summed (LevelPatchEmbed).
   The surface level keeps its tokens; the C
   pressure levels, tagged with their levels' encodings, are aggregated into
   Ld - 1 latent levels by a PerceiverResampler per patch. Position, scale,
   lead-time and absolute-time encodings are added: -> (B, Ld L, D). */

static int aur__encoder_inputs(const aur__fwd *F, aur_tensor **sx, aur_var_list *snames, aur_tensor **ax, aur_var_list *anames);
static aur_tensor *aur__level_patch_embed(const aur__fwd *F, aur_tensor *x, const char *prefix, const aur_var_list *names);
static aur_tensor *aur__stack_vars(aur_tape *t, aur_tensor *const *xs, int V);
static aur_tensor *aur__atmos_stack(aur_tape *t, aur_tensor *const *xs, int V, int level);
static aur_tensor *aur__encoded_levels(const aur__fwd *F, int width, const char *embed, const char *probe);
static aur_tensor *aur__add_patch_encodings(aur__fwd *F, aur_tensor *x);
static aur_tensor *aur__add_time_encodings(aur__fwd *F, aur_tensor *x);

static aur_tensor *aur__encoder_run(aur__fwd *F);
static aur_tensor *aur__surface_level(const aur__fwd *F, aur_tensor *const *sx, const aur_var_list *snames);
static aur_tensor *aur__atmos_latents(aur__fwd *F, aur_tensor *const *ax, const aur_var_list *anames);
static int aur__encoder_bands(const aur__fwd *F, int *rows);

/* A checkpointed encoder reads the batch's tensors through the segment's inputs (so the node holds them). */
static aur_tensor *aur__encoder_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    (void)t, (void)in, (void)n_in;
    return aur__encoder_run((aur__fwd *)ctx);
}

/* Checkpointed, the encoder is one segment on a grid of one band; on more,
   each band's atmospheric levels are a segment of their own (below), so only
   one band's activations are remade at a time. */
static aur_tensor *aur__perceiver3d_encoder(aur__fwd *F)
{
    int rows;
    if (!(F->c->checkpoint & AUR_CHECKPOINT_ENCODER) || aur__encoder_bands(F, &rows) != 1) {
        aur_scope s = aur_scope_begin(F->t); /* the encodings' sums and copies go once the tokens are made */
        aur_tensor *x = aur__encoder_run(F);
        aur_scope_end(F->t, s, &x, 1);
        return x;
    }
    const aur_batch *b = F->in;
    aur_tensor *in[3 * AUR_MAX_VARS];
    int n = 0;
    for (int i = 0; i < b->surf_names.n; i++) in[n++] = F->enc_surf[i];
    for (int i = 0; i < b->static_names.n; i++) in[n++] = F->statics[i];
    for (int i = 0; i < b->atmos_names.n; i++) in[n++] = F->enc_atmos[i];
    return aur_checkpoint(F->t, aur__encoder_segment, F, in, n);
}

static aur_tensor *aur__encoder_run(aur__fwd *F)
{
    const aur_aurora_config *c = F->c;
    aur_tape *t = F->t;
    const int B = F->B, D = F->D, Ld = F->Ld;
    const int64_t L = F->L;
    aur_tensor *sx[AUR_MAX_VARS * 2], *ax[AUR_MAX_VARS * 3];
    aur_var_list snames, anames;
    if (aur__encoder_inputs(F, sx, &snames, ax, &anames)) return NULL;

    aur_tensor *xs = aur__surface_level(F, sx, &snames);
    aur_tensor *agg = aur__atmos_latents(F, ax, &anames); /* (B, Ld - 1, L, D) */

    /* the surface level and the latent levels stacked: (B, Ld, L, D) */
    aur_tensor *parts[2] = {aur_reshape(t, xs, aur_shape4(B, 1, L, D)), agg};
    aur_tensor *x = aur__add_patch_encodings(F, aur_concat(t, parts, 2, 1));
    x = aur__add_time_encodings(F, aur_reshape(t, x, aur_shape3(B, Ld * L, D)));
    x = aur_dropout(t, x, c->drop_rate);
    aur__probe(F, "encoder_out", x);
    return x;
}

/* ---- the atmospheric levels, aggregated patch by patch, in bands of patch rows ---- */

/* Bands of patch rows the atmospheric levels go through (C levels of D-wide tokens per patch). */
static int aur__encoder_bands(const aur__fwd *F, int *rows)
{
    return aur__bands(F, (int64_t)(F->C > 1 ? F->C : 1) * F->D, "encoder", rows);
}

/* The atmospheric variables (B, T, C, H, W) of a band's patch rows -> its
   latent levels (B, Ld - 1, L, D): the patch embedding (one for all levels,
   or one per level with level_condition), the levels' encodings, and
   aggregate_levels, where per patch (B L independent problems) Ld - 1
   latents attend to the C levels. */
static aur_tensor *aur__atmos_band(const aur__fwd *F, aur_tensor *const *ax, const aur_var_list *anames)
{
    const aur_aurora_config *c = F->c;
    aur_tape *t = F->t;
    const int B = F->B, C = F->C, D = F->D, Ld = F->Ld;
    const int64_t L = F->L;
    aur_tensor *xa;
    aur_scope s = aur_scope_begin(t);
    if (!c->n_level_condition) {
        xa = aur__level_patch_embed(F, aur__atmos_stack(t, ax, anames->n, -1), "encoder.atmos_token_embeds", anames);
        aur__probe(F, "encoder/atmos_patch_embed", xa);
    } else {
        aur_tensor *per[AUR_MAX_LEVELS];
        char prefix[128], lv[32];
        for (int l = 0; l < C; l++) {
            aur_level_to_str(F->levels[l], lv, sizeof lv);
            snprintf(prefix, sizeof prefix, "encoder.atmos_token_embeds.layers.%s", lv);
            per[l] = aur_reshape(t, aur__level_patch_embed(F, aur__atmos_stack(t, ax, anames->n, l), prefix, anames), aur_shape4(B, 1, L, D));
            if (!per[l]) return NULL;
        }
        xa = aur_concat(t, per, C, 1);
    }
    aur_scope_end(t, s, &xa, 1);
    xa = aur_reshape(t, xa, aur_shape4(B, C, L, D));
    aur_tensor *lev = aur__encoded_levels(F, D, "encoder.atmos_levels_embed", "encoder/levels_encode");
    xa = aur_add(t, xa, aur_reshape(t, lev, aur_shape4(1, C, 1, D)));
    static const int blcd[4] = {0, 2, 1, 3};
    aur_tensor *ctx = aur_reshape(t, aur_permute(t, xa, blcd), aur_shape3((int64_t)B * L, C, D));
    aur_tensor *lat = aur_reshape(t, aur__paramf(F->A->m, "encoder.atmos_latents"), aur_shape3(1, Ld - 1, D));
    aur_tensor *agg = aur__perceiver_resampler(F, "encoder.level_agg", aur_expand(t, lat, aur_shape3((int64_t)B * L, Ld - 1, D)), ctx,
                                               c->enc_depth, c->stabilise_level_agg, c->perceiver_ln_eps);
    aur__probe(F, "encoder/level_agg_out", agg);
    return aur_permute(t, aur_reshape(t, agg, aur_shape4(B, L, Ld - 1, D)), blcd);
}

/* A segment of the banded encoder: the working state (of the band) and the variables it reads. */
typedef struct aur__vars_ctx {
    const aur__fwd *F;
    aur_var_list names;
} aur__vars_ctx;

/* A checkpointed band: its inputs are the band's slices of the variables. */
static aur_tensor *aur__atmos_band_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__vars_ctx *k = (const aur__vars_ctx *)ctx;
    (void)t, (void)n_in;
    return aur__atmos_band(k->F, in, &k->names);
}

/* The surface level: patch embedding, its level encoding, and a Perceiver-like MLP (not aggregated). */
static aur_tensor *aur__surface_run(const aur__fwd *F, aur_tensor *const *sx, const aur_var_list *snames)
{
    aur_tape *t = F->t;
    aur_scope s = aur_scope_begin(t); /* the stacked copies go once embedded */
    aur_tensor *xs = aur__level_patch_embed(F, aur__stack_vars(t, sx, snames->n), "encoder.surf_token_embeds", snames);
    aur_scope_end(t, s, &xs, 1);
    aur__probe(F, "encoder/surf_patch_embed", xs);
    xs = aur_add(t, xs, aur__paramf(F->A->m, "encoder.surf_level_encoding"));
    return aur_add(t, xs, aur__ln(F, aur__mlp(F, xs, "encoder.surf_mlp.net.0", "encoder.surf_mlp.net.2", 0), "encoder.surf_norm", 1e-5));
}

static aur_tensor *aur__surface_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__vars_ctx *k = (const aur__vars_ctx *)ctx;
    (void)t, (void)n_in;
    return aur__surface_run(k->F, in, &k->names);
}

/* A checkpointed encoder in bands checkpoints the surface level as a segment of its own too. */
static aur_tensor *aur__surface_level(const aur__fwd *F, aur_tensor *const *sx, const aur_var_list *snames)
{
    int rows;
    if (!(F->c->checkpoint & AUR_CHECKPOINT_ENCODER) || aur__encoder_bands(F, &rows) == 1) return aur__surface_run(F, sx, snames);
    aur__vars_ctx *ctx = (aur__vars_ctx *)aur_tape_alloc(F->t, sizeof *ctx); /* lives until backward */
    if (!ctx) return NULL;
    ctx->F = F, ctx->names = *snames;
    return aur_checkpoint(F->t, aur__surface_segment, ctx, sx, snames->n);
}

static aur_tensor *aur__atmos_latents(aur__fwd *F, aur_tensor *const *ax, const aur_var_list *anames)
{
    int rows, n = aur__encoder_bands(F, &rows), V = anames->n;
    if (n < 0) return NULL;
    if (n == 1) return aur__atmos_band(F, ax, anames);
    aur_tensor **parts = (aur_tensor **)aur_tape_alloc(F->t, sizeof *parts * (size_t)n), *slices[AUR_MAX_VARS * 3];
    if (!parts) return NULL;
    for (int k = 0; k < n; k++) {
        aur__vars_ctx *ctx = (aur__vars_ctx *)aur_tape_alloc(F->t, sizeof *ctx); /* lives until backward */
        aur_scope s = aur_scope_begin(F->t); /* the band's slices go once it is made (a checkpoint holds its inputs) */
        if (!ctx || !(ctx->F = aur__fwd_band(F, k, rows))) return NULL;
        ctx->names = *anames;
        for (int v = 0; v < V; v++) slices[v] = aur_slice(F->t, ax[v], -2, (int64_t)k * rows * F->P, ctx->F->H);
        parts[k] = F->c->checkpoint & AUR_CHECKPOINT_ENCODER ? aur_checkpoint(F->t, aur__atmos_band_segment, ctx, slices, V)
                                                             : aur__atmos_band(ctx->F, slices, anames);
        if (!parts[k]) return NULL;
        aur_scope_end(F->t, s, &parts[k], 1);
    }
    return aur_concat(F->t, parts, n, 2);
}

/* ---- the inputs, variable by variable ---- */

/* The dynamic variables of AuroraAirPollution for one sample: cos and sin of
   the hour of the day, the weekday and the day of the month (the reference's
   "doy" is the day of the month), in that order. */
static int aur__dynamic_value(double unix_seconds, int which, double *out)
{
    time_t tt = (time_t)floor(unix_seconds);
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) return aur__err(AUR_EINVAL, "time %g cannot be converted to a date", unix_seconds);
    double hour = tm.tm_hour, weekday = (tm.tm_wday + 6) % 7, day = tm.tm_mday; /* Monday = 0; the day of the month, as the reference */
    double ang = which < 2 ? 2 * AUR__PI * hour / 24 : which < 4 ? 2 * AUR__PI * weekday / 7 : 2 * AUR__PI * day / 365.25;
    *out = which % 2 == 0 ? cos(ang) : sin(ang);
    return 0;
}

/* The encoder's variables: surface ones (B, T, H, W) in the kernels' order
   (surface, statics, dynamic), and atmospheric ones (B, T, C, H, W) (the
   variables, then the surface statics as static_{s} with atmos_static_vars). */
static int aur__encoder_inputs(const aur__fwd *F, aur_tensor **sx, aur_var_list *snames, aur_tensor **ax, aur_var_list *anames)
{
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    char name[AUR_NAME_LEN + 8];
    int V = 0;
    *snames = b->surf_names;
    for (int i = 0; i < b->surf_names.n; i++) sx[V++] = F->enc_surf[i];
    for (int i = 0; i < b->static_names.n; i++) {
        sx[V++] = aur_expand(t, F->statics[i], aur_shape4(F->B, F->T, F->H, F->W));
        if (aur__vl_add(snames, b->static_names.name[i])) return AUR_EINVAL;
    }
    for (int k = 0; F->c->dynamic_vars && k < 6; k++) {
        aur_tensor *x = aur_tensor_new(t, AUR_CPU, aur_shape4(F->B, F->T, F->H, F->W));
        if (!x) return AUR_ENOMEM;
        for (int bi = 0; bi < F->B; bi++) {
            double v = 0;
            if (aur__dynamic_value(b->time[bi], k, &v)) return AUR_EINVAL;
            for (int64_t i = 0; i < (int64_t)F->T * F->H * F->W; i++) aur__wr(x)[bi * (int64_t)F->T * F->H * F->W + i] = (aur_real)(float)v;
        }
        sx[V++] = aur__on(t, x, F->A->m->device);
        if (aur__vl_add(snames, aur__dynamic_names[k])) return AUR_EINVAL;
    }
    V = 0;
    *anames = b->atmos_names;
    for (int i = 0; i < b->atmos_names.n; i++) ax[V++] = F->enc_atmos[i];
    int z = aur__vl_find(&b->atmos_names, "z");
    for (int i = b->surf_names.n; F->c->atmos_static_vars && i < snames->n; i++) {
        snprintf(name, sizeof name, "static_%s", snames->name[i]);
        if (aur__vl_add(anames, name)) return AUR_EINVAL;
        aur_tensor *s = aur_reshape(t, sx[i], aur_shape5(F->B, F->T, 1, F->H, F->W));
        ax[V] = aur_expand(t, s, aur_shape5(F->B, F->T, F->C, F->H, F->W));
        /* the reference's simulate_indexing_bug: static_z takes the slice of atmospheric z */
        if (F->c->simulate_indexing_bug && z >= 0 && !strcmp(name, "static_z")) ax[V] = ax[z];
        V++;
    }
    return 0;
}

/* aurora/model/patchembed.py: LevelPatchEmbed. x (N, V*T, H, W) with the
   (D, 1, Tmax, P, P) kernels of the variables `names` (their first T history
   slices): one linear map of each patch's V T P P values -> (N, L, D). */
static aur_tensor *aur__level_patch_embed(const aur__fwd *F, aur_tensor *x, const char *prefix, const aur_var_list *names)
{
    aur_tape *t = F->t;
    int64_t N = x ? x->shape[0] : 0, V = names->n, T = F->T, P = F->P;
    static const int perm[6] = {0, 2, 4, 1, 3, 5};
    int64_t s6[6] = {N, V * T, F->h, P, F->w, P};
    aur_tensor *xp = aur_permute(t, aur_reshape(t, x, aur_shapev(6, s6)), perm); /* (N, h, w, V*T, P, P) */
    xp = aur_reshape(t, xp, aur_shape3(N, F->L, V * T * P * P));
    aur_tensor *kernels[AUR_MAX_VARS * 2];
    for (int v = 0; v < V; v++) {
        aur_tensor *k = aur__paramf(F->A->m, "%s.weights.%s", prefix, names->name[v]);
        kernels[v] = aur_slice(t, k, 2, 0, T);
        if (!kernels[v]) return NULL;
    }
    aur_tensor *K = aur_reshape(t, aur_concat(t, kernels, (int)V, 1), aur_shape2(F->D, V * T * P * P));
    return aur_linear(t, xp, K, aur__paramf(F->A->m, "%s.bias", prefix));
}

/* Stacks (B, T, H, W) variables into (B, V*T, H, W). */
static aur_tensor *aur__stack_vars(aur_tape *t, aur_tensor *const *xs, int V)
{
    aur_tensor *r[AUR_MAX_VARS * 2];
    for (int v = 0; v < V; v++) {
        if (!xs[v]) return NULL;
        r[v] = aur_reshape(t, xs[v], aur_shape5(xs[v]->shape[0], 1, xs[v]->shape[1], xs[v]->shape[2], xs[v]->shape[3]));
    }
    aur_tensor *x = aur_concat(t, r, V, 1);
    return x ? aur_reshape(t, x, aur_shape4(x->shape[0], x->shape[1] * x->shape[2], x->shape[3], x->shape[4])) : NULL;
}

/* (B, T, V, C, H, W) stacked -> (B*C, V*T, H, W), or the (B, V*T, H, W) slice of one level. */
static aur_tensor *aur__atmos_stack(aur_tape *t, aur_tensor *const *xs, int V, int level)
{
    aur_tensor *r[AUR_MAX_VARS * 2];
    for (int v = 0; v < V; v++) {
        if (!xs[v]) return NULL;
        const int64_t *s = xs[v]->shape, s6[6] = {s[0], s[1], 1, s[2], s[3], s[4]};
        r[v] = aur_reshape(t, xs[v], aur_shapev(6, s6));
    }
    aur_tensor *x = aur_concat(t, r, V, 2); /* (B, T, V, C, H, W) */
    if (!x) return NULL;
    static const int perm[6] = {0, 3, 2, 1, 4, 5};
    x = aur_permute(t, x, perm); /* (B, C, V, T, H, W) */
    int64_t B = x->shape[0], C = x->shape[1], VT = x->shape[2] * x->shape[3], H = x->shape[4], W = x->shape[5];
    if (level < 0) return aur_reshape(t, x, aur_shape4(B * C, VT, H, W));
    return aur_reshape(t, aur_slice(t, x, 1, level, 1), aur_shape4(B, VT, H, W));
}

/* ---- the encodings ---- */

/* The pressure levels' Fourier encodings (aurora/model/fourier.py: levels_expansion), width wide, through
   the linear layer `embed` -> (C, width). The decoder uses them too. */
static aur_tensor *aur__encoded_levels(const aur__fwd *F, int width, const char *embed, const char *probe)
{
    aur_tape *t = F->t;
    double lev_in[AUR_MAX_LEVELS];
    float *enc = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(F->C * width + 1));
    aur__levels_input(F->levels, F->C, lev_in);
    if (!enc || aur__fourier(lev_in, F->C, 0.01, 1e5, width, 1, enc, "level")) return NULL;
    aur_tensor *lev = aur__const(t, F->A->m->device, aur_shape2(F->C, width), enc);
    aur__probe(F, probe, lev);
    return aur__lin(F, lev, embed, 1);
}

/* x (B, Ld, L, D) plus every patch's position and scale encodings through
   pos_embed and scale_embed (aurora/model/posencoding.py: pos_scale_enc). */
static aur_tensor *aur__add_patch_encodings(aur__fwd *F, aur_tensor *x)
{
    aur__aurora *A = F->A;
    aur_tape *t = F->t;
    const int64_t L = F->L, D = F->D;
    float *pos = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(2 * L * D));
    if (!x || !pos) return NULL;
    float *scl = pos + L * D;
    aur_batch crop = *F->in; /* the grid's first H rows */
    crop.H = F->H;
    if (aur__patch_encodings(t, &crop, F->H, F->W, F->P, (int)D, pos, scl)) return NULL;
    aur__probe(F, "encoder/pos_encode", aur__const(t, A->m->device, aur_shape2(L, D), pos));
    aur__probe(F, "encoder/scale_encode", aur__const(t, A->m->device, aur_shape2(L, D), scl));
    if (A->pos_override) {
        if (A->override_L != L) {
            aur__err(AUR_ESHAPE, "Aurora: override encodings have %lld patches, the grid has %lld", (long long)A->override_L, (long long)L);
            return NULL;
        }
        pos = A->pos_override;
        scl = A->scale_override;
    }
    x = aur_add(t, x, aur__lin(F, aur__const(t, A->m->device, aur_shape2(L, D), pos), "encoder.pos_embed", 1));
    return aur_add(t, x, aur__lin(F, aur__const(t, A->m->device, aur_shape2(L, D), scl), "encoder.scale_embed", 1));
}

/* x (B, Ld L, D) plus the lead time's and each sample's absolute time's encodings, through their embeddings. */
static aur_tensor *aur__add_time_encodings(aur__fwd *F, aur_tensor *x)
{
    aur_tape *t = F->t;
    const int B = F->B, D = F->D;
    aur_tensor *lead = aur__const(t, F->A->m->device, aur_shape2(B, D), F->lead_enc);
    aur__probe(F, "encoder/lead_time_encode", lead);
    x = aur_add(t, x, aur_reshape(t, aur__lin(F, lead, "encoder.lead_time_embed", 1), aur_shape3(B, 1, D)));
    double *hours = (double *)aur__alloc(t, AUR_CPU, sizeof(double) * (size_t)B);
    float *abs_enc = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(B * D));
    if (!hours || !abs_enc) return NULL;
    for (int i = 0; i < B; i++) hours[i] = (double)(float)(F->in->time[i] / 3600.0);
    if (aur__fourier(hours, B, 1, 24 * 365.25, D, 0, abs_enc, "absolute time")) return NULL;
    aur_tensor *abst = aur__const(t, F->A->m->device, aur_shape2(B, D), abs_enc);
    aur__probe(F, "encoder/absolute_time_encode", abst);
    return aur_add(t, x, aur_reshape(t, aur__lin(F, abst, "encoder.absolute_time_embed", 1), aur_shape3(B, 1, D)));
}

/* ==== Aurora: Swin3DTransformerBackbone (aurora/model/swin3d.py) ====
   A U-Net of 3-D Swin transformer stages over the (Ld, h, w) token grid,
   conditioned on the lead time: encoder stages of Swin3DTransformerBlocks,
   each followed (but the last) by a PatchMerging3D that halves h and w and
   doubles the width; decoder stages mirror them with PatchSplitting3D, adding
   the encoder's outputs as skips, and the first stage's output is
   concatenated at the end: (B, Ld L, D) -> (B, Ld L, 2 D). Under autocast
   only the backbone runs with BF16 products, as the reference runs only the
   backbone inside torch.autocast. */

static aur_tensor *aur__basic_layer3d(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                      const int64_t *res, int64_t d, const double *dpr);
static aur_tensor *aur__patch_merging3d(const aur__fwd *F, aur_tensor *x, const int64_t *res, const char *prefix);
static aur_tensor *aur__patch_splitting3d(const aur__fwd *F, aur_tensor *x, const int64_t *res, int64_t cH, int64_t cW, const char *prefix);

static aur_tensor *aur__stage_blocks(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                     const int64_t *res, int64_t d, const double *dpr, unsigned checkpoint);
static aur_tensor *aur__stage_resample(const aur__fwd *F, aur_tensor *x, const int64_t *res, int64_t cH, int64_t cW, const char *prefix,
                                       int split, unsigned checkpoint);
static aur_tensor *aur__backbone_run(aur__fwd *F, aur_tensor *x);

static aur_tensor *aur__backbone_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    (void)t, (void)n_in;
    return aur__backbone_run((aur__fwd *)ctx, in[0]);
}

static aur_tensor *aur__swin3d_backbone(aur__fwd *F, aur_tensor *x)
{
    if (!(F->c->checkpoint & AUR_CHECKPOINT_BACKBONE)) return aur__backbone_run(F, x);
    return aur_checkpoint(F->t, aur__backbone_segment, F, &x, 1);
}

static aur_tensor *aur__backbone_run(aur__fwd *F, aur_tensor *x)
{
    const aur_aurora_config *c = F->c;
    aur_tape *t = F->t;
    const int S = c->n_stages, D = F->D;
    char name[96], layer[96];
    /* the lead time conditions every block's adaptive layer norms */
    aur_tensor *lead = aur__const(t, F->A->m->device, aur_shape2(F->B, D), F->lead_enc);
    aur_tensor *cond = aur__lin(F, aur_silu(t, aur__lin(F, lead, "backbone.time_mlp.0", 1)), "backbone.time_mlp.2", 1);
    aur__probe(F, "backbone/time_cond", cond);
    /* each stage's resolution (levels, lat, lon); the merges pad odd h and w, the level axis stays */
    int64_t res[AUR_MAX_STAGES][3], pad[AUR_MAX_STAGES][3];
    res[0][0] = F->Ld, res[0][1] = F->h, res[0][2] = F->w;
    for (int i = 1; i < S; i++) {
        pad[i - 1][0] = 0, pad[i - 1][1] = res[i - 1][1] % 2, pad[i - 1][2] = res[i - 1][2] % 2;
        res[i][0] = res[i - 1][0];
        res[i][1] = (res[i - 1][1] + pad[i - 1][1]) / 2;
        res[i][2] = (res[i - 1][2] + pad[i - 1][2]) / 2;
    }
    /* stochastic depth: linspace(0, drop_path) over the encoder's blocks; a decoder stage indexes it by the decoder's depths */
    int total = 0;
    for (int i = 0; i < S; i++) total += c->encoder_depths[i];
    double *dpr = (double *)aur_tape_alloc(t, sizeof(double) * (size_t)(total + 1));
    if (!dpr) return NULL;
    for (int i = 0; i < total; i++) dpr[i] = total > 1 ? c->drop_path * i / (total - 1) : 0;
    int saved_autocast = t->autocast;
    t->autocast = c->autocast; /* the reference runs only the backbone inside torch.autocast */
    aur_tensor *skips[AUR_MAX_STAGES] = {0};
    for (int i = 0, first = 0; i < S; first += c->encoder_depths[i], i++) {
        snprintf(layer, sizeof layer, "backbone.encoder_layers.%d", i);
        x = aur__stage_blocks(F, x, cond, layer, c->encoder_depths[i], c->encoder_num_heads[i], res[i], (int64_t)D << i, dpr + first,
                              c->checkpoint & AUR_CHECKPOINT_ENCODER_LAYERS);
        skips[i] = x;
        snprintf(name, sizeof name, i < S - 1 ? "backbone/enc%d_blocks_out" : "backbone/enc%d_out", i);
        aur__probe(F, name, x);
        if (i == S - 1) break;
        snprintf(layer, sizeof layer, "backbone.encoder_layers.%d.downsample", i);
        x = aur__stage_resample(F, x, res[i], 0, 0, layer, 0, c->checkpoint & AUR_CHECKPOINT_ENCODER_LAYERS);
        snprintf(name, sizeof name, "backbone/enc%d_resampled", i);
        aur__probe(F, name, x);
    }
    for (int i = 0, first = 0; i < S; first += c->decoder_depths[i], i++) {
        int k = S - 1 - i;
        snprintf(layer, sizeof layer, "backbone.decoder_layers.%d", i);
        x = aur__stage_blocks(F, x, cond, layer, c->decoder_depths[i], c->decoder_num_heads[i], res[k], (int64_t)D << k, dpr + first,
                              c->checkpoint & AUR_CHECKPOINT_DECODER_LAYERS);
        snprintf(name, sizeof name, i < S - 1 ? "backbone/dec%d_blocks_out" : "backbone/dec%d_out", i);
        aur__probe(F, name, x);
        if (i < S - 1) {
            snprintf(layer, sizeof layer, "backbone.decoder_layers.%d.upsample", i);
            x = aur__stage_resample(F, x, res[k], pad[k - 1][1], pad[k - 1][2], layer, 1, c->checkpoint & AUR_CHECKPOINT_DECODER_LAYERS);
            snprintf(name, sizeof name, "backbone/dec%d_resampled", i);
            aur__probe(F, name, x);
        }
        if (i > 0 && i < S - 1) x = aur_add(t, x, skips[k - 1]);
        if (i == S - 1) {
            aur_tensor *cat[2] = {x, skips[0]};
            x = aur_concat(t, cat, 2, -1);
        }
    }
    t->autocast = saved_autocast;
    aur__probe(F, "backbone_out", x);
    return x;
}

/* ---- a stage: BasicLayer3D (its blocks, then its patch merging or splitting) ---- */

/* A checkpointed stage: its blocks as one segment and its resampling as another (the
   reference's layer returns both outputs, the skip and the resampled tokens). */
typedef struct aur__stage_ctx {
    const aur__fwd *F;
    char layer[96];
    int depth, heads, split;
    int64_t res[3], d, crop[2];
    const double *dpr;
} aur__stage_ctx;

static aur_tensor *aur__basic_layer3d(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                      const int64_t *res, int64_t d, const double *dpr);

static aur_tensor *aur__stage_blocks_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__stage_ctx *k = (const aur__stage_ctx *)ctx;
    (void)t, (void)n_in;
    return aur__basic_layer3d(k->F, in[0], in[1], k->layer, k->depth, k->heads, k->res, k->d, k->dpr);
}

static aur_tensor *aur__stage_resample_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__stage_ctx *k = (const aur__stage_ctx *)ctx;
    (void)t, (void)n_in;
    return k->split ? aur__patch_splitting3d(k->F, in[0], k->res, k->crop[0], k->crop[1], k->layer)
                    : aur__patch_merging3d(k->F, in[0], k->res, k->layer);
}

static aur__stage_ctx *aur__stage_ctx_new(const aur__fwd *F, const char *layer, const int64_t *res)
{
    aur__stage_ctx *k = (aur__stage_ctx *)aur_tape_alloc(F->t, sizeof *k); /* lives until backward */
    if (!k) return NULL;
    memset(k, 0, sizeof *k);
    k->F = F;
    snprintf(k->layer, sizeof k->layer, "%s", layer);
    memcpy(k->res, res, sizeof k->res);
    return k;
}

static aur_tensor *aur__stage_blocks(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                     const int64_t *res, int64_t d, const double *dpr, unsigned checkpoint)
{
    if (!checkpoint) return aur__basic_layer3d(F, x, c, layer, depth, heads, res, d, dpr);
    aur__stage_ctx *k = aur__stage_ctx_new(F, layer, res);
    if (!k) return NULL;
    k->depth = depth, k->heads = heads, k->d = d, k->dpr = dpr;
    aur_tensor *in[2] = {x, c};
    return aur_checkpoint(F->t, aur__stage_blocks_segment, k, in, 2);
}

static aur_tensor *aur__stage_resample(const aur__fwd *F, aur_tensor *x, const int64_t *res, int64_t cH, int64_t cW, const char *prefix,
                                       int split, unsigned checkpoint)
{
    if (!checkpoint)
        return split ? aur__patch_splitting3d(F, x, res, cH, cW, prefix) : aur__patch_merging3d(F, x, res, prefix);
    aur__stage_ctx *k = aur__stage_ctx_new(F, prefix, res);
    if (!k) return NULL;
    k->split = split, k->crop[0] = cH, k->crop[1] = cW;
    return aur_checkpoint(F->t, aur__stage_resample_segment, k, &x, 1);
}

/* Everything a Swin block needs; in the arena, so that a checkpointed block
   can be recomputed during backward. */
typedef struct aur__block_ctx {
    const aur__fwd *F;
    char prefix[96];  /* "backbone.encoder_layers.{i}.blocks.{j}" */
    int64_t res[3], d; /* the stage's token grid and width */
    int heads, shifted, lora_set;
    double drop_path;
} aur__block_ctx;

static aur_tensor *aur__swin3d_block(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in);

/* BasicLayer3D's blocks: depth of them, every second one with shifted windows;
   each checkpointed (aur_checkpoint) when configured. */
static aur_tensor *aur__basic_layer3d(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                      const int64_t *res, int64_t d, const double *dpr)
{
    aur_tape *t = F->t;
    /* one scope for all blocks, ended after each: a block's temporaries go at
       its end, and so does its input once the next block has its output (a
       recorded backward still holds what it reads) */
    aur_scope s = aur_scope_begin(t);
    for (int j = 0; j < depth && x; j++) {
        aur__block_ctx *k = (aur__block_ctx *)aur_tape_alloc(t, sizeof *k);
        if (!k) return NULL;
        memset(k, 0, sizeof *k);
        k->F = F;
        snprintf(k->prefix, sizeof k->prefix, "%s.blocks.%d", layer, j);
        memcpy(k->res, res, sizeof k->res);
        k->d = d;
        k->heads = heads;
        k->shifted = j % 2;
        k->lora_set = F->lora_set;
        k->drop_path = dpr[j];
        aur_tensor *in[2] = {x, c};
        x = F->c->checkpoint & AUR_CHECKPOINT_BLOCKS ? aur_checkpoint(t, aur__swin3d_block, k, in, 2) : aur__swin3d_block(t, k, in, 2);
        aur_scope_end(t, s, &x, 1);
    }
    return x;
}

/* aurora/model/film.py: AdaptiveLayerNorm. LN(y) * scale + shift, with
   (shift, scale) = Linear(SiLU(c)): the lead time modulates each branch. */
static aur_tensor *aur__adaptive_layer_norm(const aur__fwd *F, aur_tensor *y, aur_tensor *c, const char *prefix, int64_t d)
{
    aur_tape *t = F->t;
    aur_tensor *m = aur__lin(F, aur_silu(t, c), prefix, 1);
    int64_t B = c ? c->shape[0] : 0;
    aur_tensor *shift = aur_reshape(t, aur_slice(t, m, -1, 0, d), aur_shape3(B, 1, d));
    aur_tensor *scale = aur_reshape(t, aur_slice(t, m, -1, d, d), aur_shape3(B, 1, d));
    return aur_add(t, aur_mul(t, aur_layernorm(t, y, NULL, NULL, 1e-5), scale), shift);
}

/* A linear layer with the step's LoRA (aurora/model/lora.py: LoRARollout):
   x W^T + b + (x A^T) B^T (scaling alpha / r = 1), or the plain layer when set < 0. */
static aur_tensor *aur__lora_linear(const aur__fwd *F, aur_tensor *x, const char *prefix, const char *lora, int set)
{
    aur_tensor *y = aur__lin(F, x, prefix, 1);
    if (set < 0) return y;
    aur_tensor *a = aur__paramf(F->A->m, "%s.loras.%d.lora_A", lora, set), *b = aur__paramf(F->A->m, "%s.loras.%d.lora_B", lora, set);
    if (!a || !b) return NULL;
    return aur_add(F->t, y, aur_linear(F->t, aur_linear(F->t, x, a, NULL), b, NULL));
}

/* Stochastic depth (DropPath): each sample's branch is dropped with probability p. */
static aur_tensor *aur__drop_path(aur_tape *t, aur_tensor *x, double p)
{
    if (!x || p == 0 || !t->training) return x;
    aur_tensor *ones = aur_tensor_new(t, AUR_CPU, aur_shape3(x->shape[0], 1, 1));
    if (!ones) return NULL;
    for (int64_t i = 0; i < ones->numel; i++) aur__wr(ones)[i] = 1;
    return aur_mul(t, x, aur_dropout(t, aur__on(t, ones, x->device), p));
}

/* aurora/model/swin3d.py: Swin3DTransformerBlock, in[0] = x (B, N, d) and
   in[1] = the time condition (B, D). Window attention (WindowAttention: roll
   by half a window when shifted, pad, partition; qkv, attention with the
   shift mask, proj; reverse) and the MLP, each branch through its adaptive
   layer norm and stochastic depth into the residual stream (res-post-norm). */
static aur_tensor *aur__swin3d_block(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__block_ctx *k = (const aur__block_ctx *)ctx;
    const aur__fwd *F = k->F;
    aur_tensor *x = in[0], *c = in[1];
    char p[160], lora[160];
    (void)n_in;
    aur__layout *lay = aur__windows(F->A, k->res, F->c->window_size, k->shifted);
    if (!x || !lay) return NULL;
    const int64_t B = x->shape[0], N = x->shape[1], d = k->d, nh = k->heads, hd = d / nh, nw = lay->nwin, n = lay->n;
    aur_scope attn = aur_scope_begin(t); /* the windows, q, k, v and the heads' outputs go once back on the grid */
    aur_tensor *xw = aur__model_gather(t, F->A->m, x, B, d, &lay->fwd, aur_shape3(B * nw, n, d)); /* roll, pad, partition */
    snprintf(p, sizeof p, "%s.attn.qkv", k->prefix);
    snprintf(lora, sizeof lora, "%s.attn.lora_qkv", k->prefix);
    aur_scope heads = aur_scope_begin(t); /* the layer's output goes once its heads are apart */
    aur_tensor *qkv = aur__lora_linear(F, xw, p, lora, k->lora_set);
    static const int split[6] = {3, 0, 1, 4, 2, 5}; /* (B, nW, n, 3, nh, hd) -> (3, B, nW, nh, n, hd) */
    int64_t s6[6] = {B, nw, n, 3, nh, hd};
    qkv = aur_permute(t, aur_reshape(t, qkv, aur_shapev(6, s6)), split);
    aur_scope_end(t, heads, &qkv, 1);
    aur_shape hs = aur_shape5(B, nw, nh, n, hd);
    aur_tensor *q = aur_reshape(t, aur_slice(t, qkv, 0, 0, 1), hs), *kk = aur_reshape(t, aur_slice(t, qkv, 0, 1, 1), hs);
    aur_tensor *v = aur_reshape(t, aur_slice(t, qkv, 0, 2, 1), hs);
    aur_tensor *mask = lay->mask ? aur__const_view(t, F->A->m, aur_shape4(nw, 1, n, n), lay->mask) : NULL; /* shared by the heads */
    aur_tensor *o = aur_sdpa(t, q, kk, v, mask, 0);
    static const int merge[5] = {0, 1, 3, 2, 4};
    o = aur_reshape(t, aur_permute(t, o, merge), aur_shape3(B * nw, n, d));
    snprintf(p, sizeof p, "%s.attn.proj", k->prefix);
    snprintf(lora, sizeof lora, "%s.attn.lora_proj", k->prefix);
    o = aur_dropout(t, aur__lora_linear(F, o, p, lora, k->lora_set), F->c->drop_rate);
    aur_tensor *a = aur__model_gather(t, F->A->m, o, B, d, &lay->back, aur_shape3(B, N, d)); /* reverse, crop, roll back */
    aur_scope_end(t, attn, &a, 1);
    snprintf(p, sizeof p, "%s.norm1.ln_modulation.1", k->prefix);
    x = aur_add(t, x, aur__drop_path(t, aur__adaptive_layer_norm(F, a, c, p, d), k->drop_path));
    char fc2[160];
    snprintf(p, sizeof p, "%s.mlp.fc1", k->prefix);
    snprintf(fc2, sizeof fc2, "%s.mlp.fc2", k->prefix);
    aur_tensor *h = aur__mlp(F, x, p, fc2, 1);
    snprintf(p, sizeof p, "%s.norm2.ln_modulation.1", k->prefix);
    return aur_add(t, x, aur__drop_path(t, aur__adaptive_layer_norm(F, h, c, p, d), k->drop_path));
}

/* ---- resampling between stages ---- */

/* aurora/model/swin3d.py: PatchMerging3D. Each 2 x 2 group of tokens (odd
   sides zero-padded) is concatenated (4 d), normalised and reduced to 2 d. */
static aur_tensor *aur__patch_merging3d(const aur__fwd *F, aur_tensor *x, const int64_t *res, const char *prefix)
{
    aur__layout *lay = aur__merge_layout(F->A, res);
    char p[160];
    if (!x || !lay) return NULL;
    int64_t B = x->shape[0], d = x->shape[2], n2 = lay->fwd.n_out / 4;
    aur_tensor *y = aur__model_gather(F->t, F->A->m, x, B, d, &lay->fwd, aur_shape3(B, n2, 4 * d));
    snprintf(p, sizeof p, "%s.norm", prefix);
    y = aur__ln(F, y, p, 1e-5);
    snprintf(p, sizeof p, "%s.reduction", prefix);
    return aur__lin(F, y, p, 0);
}

/* aurora/model/swin3d.py: PatchSplitting3D, the reverse: each token of width
   d becomes 2 x 2 tokens of width d / 2, cropping cH rows and cW columns
   (the padding the merge added), then a norm and a linear layer. */
static aur_tensor *aur__patch_splitting3d(const aur__fwd *F, aur_tensor *x, const int64_t *res, int64_t cH, int64_t cW, const char *prefix)
{
    aur__layout *lay = aur__split_layout(F->A, res, cH, cW);
    char p[160];
    if (!x || !lay) return NULL;
    int64_t B = x->shape[0], d = x->shape[2];
    snprintf(p, sizeof p, "%s.lin1", prefix);
    aur_tensor *y = aur_reshape(F->t, aur__lin(F, x, p, 0), aur_shape3(B, x->shape[1] * 4, d / 2));
    y = aur__model_gather(F->t, F->A->m, y, B, d / 2, &lay->fwd, aur_shape3(B, lay->fwd.n_out, d / 2));
    snprintf(p, sizeof p, "%s.norm", prefix);
    y = aur__ln(F, y, p, 1e-5);
    snprintf(p, sizeof p, "%s.lin2", prefix);
    return aur__lin(F, y, p, 0);
}

/* ==== Aurora: Perceiver3DDecoder (aurora/model/decoder.py) ====
   The backbone's tokens (B, Ld L, 2 D) back to fields: the surface level's
   tokens through one linear head per surface variable; for the atmosphere,
   queries made from the pressure levels' encodings attend to the Ld - 1
   latent levels of each patch (deaggregate_levels, a PerceiverResampler),
   and one head per atmospheric variable (per level with level_condition)
   maps each level's token to its P x P patch (LinearPatchReconstruction). */

static aur_tensor *aur__unpatchify(const aur__fwd *F, aur_tensor *y, int levels);
static aur_tensor *aur__atmos_head(const aur__fwd *F, aur_tensor *x, const char *v);
static aur_tensor *aur__surf_head(const aur__fwd *F, aur_tensor *x0, const char *v);
static int aur__decoder_run(aur__fwd *F, aur_tensor *x, aur__decoded *out);
static aur_tensor *aur__pack_decoded(aur_tape *t, const aur__decoded *d);
static int aur__unpack_decoded(aur__fwd *F, aur_tensor *packed, aur__decoded *out);

/* A checkpointed decoder is one segment: its outputs packed into one tensor, and views of it unpacked. */
static aur_tensor *aur__decoder_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    (void)n_in;
    aur__decoded *d = (aur__decoded *)aur_tape_alloc(t, sizeof *d);
    return d && !aur__decoder_run((aur__fwd *)ctx, in[0], d) ? aur__pack_decoded(t, d) : NULL;
}

/* The decoder on one band of patch rows, checkpointed or not. */
static int aur__decoder_band(aur__fwd *F, aur_tensor *x, aur__decoded *out)
{
    if (!(F->c->checkpoint & AUR_CHECKPOINT_DECODER)) return aur__decoder_run(F, x, out);
    return aur__unpack_decoded(F, aur_checkpoint(F->t, aur__decoder_segment, F, &x, 1), out);
}

/* The bands' fields joined along the latitude (axis -2). */
static aur_tensor *aur__join_rows(aur_tape *t, aur__decoded *parts, int n, int atmos, int mod, int i)
{
    aur_tensor *xs[1024];
    for (int k = 0; k < n; k++) {
        xs[k] = atmos ? (mod ? parts[k].atmos_mod[i] : parts[k].atmos[i]) : (mod ? parts[k].surf_mod[i] : parts[k].surf[i]);
        if (!xs[k]) return NULL;
    }
    return n == 1 ? xs[0] : aur_concat(t, xs, n, -2);
}

static int aur__perceiver3d_decoder(aur__fwd *F, aur_tensor *x, aur__decoded *out)
{
    const int64_t E = 2 * (int64_t)F->D;
    int rows, n = aur__bands(F, (int64_t)(F->C > 1 ? F->C : 1) * E, "decoder", &rows);
    if (n < 0) return AUR_EINVAL;
    if (n == 1) return aur__decoder_band(F, x, out);
    aur__decoded *parts = (aur__decoded *)aur_tape_alloc(F->t, sizeof *parts * (size_t)n);
    if (!parts || !x) return AUR_ENOMEM;
    aur_tensor *x4 = aur_reshape(F->t, x, aur_shape4(F->B, F->Ld, F->L, E));
    for (int k = 0; k < n; k++) {
        aur__fwd *G = aur__fwd_band(F, k, rows);
        aur_tensor *xb = G ? aur_reshape(F->t, aur_slice(F->t, x4, 2, (int64_t)k * rows * F->w, G->L), aur_shape3(F->B, F->Ld * G->L, E)) : NULL;
        if (!xb || aur__decoder_band(G, xb, &parts[k])) return AUR_EINVAL;
    }
    memset(out, 0, sizeof *out);
    out->surf_names = parts[0].surf_names;
    out->n_atmos = parts[0].n_atmos;
    for (int i = 0; i < out->surf_names.n; i++) {
        if (!(out->surf[i] = aur__join_rows(F->t, parts, n, 0, 0, i))) return AUR_EINVAL;
        if (parts[0].surf_mod[i] && !(out->surf_mod[i] = aur__join_rows(F->t, parts, n, 0, 1, i))) return AUR_EINVAL;
    }
    for (int i = 0; i < out->n_atmos; i++) {
        if (!(out->atmos[i] = aur__join_rows(F->t, parts, n, 1, 0, i))) return AUR_EINVAL;
        if (parts[0].atmos_mod[i] && !(out->atmos_mod[i] = aur__join_rows(F->t, parts, n, 1, 1, i))) return AUR_EINVAL;
    }
    return 0;
}

static int aur__decoder_run(aur__fwd *F, aur_tensor *x, aur__decoded *out)
{
    const aur_aurora_config *c = F->c;
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    char name[160];
    const int B = F->B, C = F->C, Ld = F->Ld;
    const int64_t L = F->L, E = 2 * (int64_t)F->D;
    memset(out, 0, sizeof *out);
    out->surf_names = b->surf_names;
    out->n_atmos = b->atmos_names.n;
    static const int blcd[4] = {0, 2, 1, 3};
    x = aur_permute(t, aur_reshape(t, x, aur_shape4(B, Ld, L, E)), blcd); /* (B, L, Ld, E) */

    /* the surface level: a head per variable, and its modulation head (_mod) where configured */
    aur_tensor *x0 = aur_reshape(t, aur_slice(t, x, 2, 0, 1), aur_shape3(B, L, E));
    for (int i = 0; i < b->surf_names.n; i++) {
        const char *v = b->surf_names.name[i];
        out->surf[i] = aur__surf_head(F, x0, v);
        snprintf(name, sizeof name, "decoder_norm/surf/%s", v);
        aur__probe(F, name, out->surf[i]);
        if (aur__vl_find(&c->modulation_heads, v) >= 0) {
            snprintf(name, sizeof name, "%s_mod", v);
            out->surf_mod[i] = aur__surf_head(F, x0, name);
        }
        if (!out->surf[i]) return AUR_EINVAL;
    }
    if (!b->atmos_names.n) return 0;

    /* the atmosphere: the levels' embeddings query the latent levels of each patch */
    aur_tensor *lev = aur__encoded_levels(F, (int)E, "decoder.atmos_levels_embed", "decoder/levels_encode");
    aur_tensor *q = aur_expand(t, aur_reshape(t, lev, aur_shape3(1, C, E)), aur_shape3((int64_t)B * L, C, E));
    aur_tensor *ctx = aur_reshape(t, aur_slice(t, x, 2, 1, Ld - 1), aur_shape3((int64_t)B * L, Ld - 1, E));
    aur_tensor *main_out = NULL, *alt_out = NULL;
    for (int i = 0; i < b->atmos_names.n; i++) {
        const char *v = b->atmos_names.name[i];
        int alt = aur__vl_find(&c->separate_perceiver, v) >= 0; /* AuroraAirPollution's second decoder Perceiver */
        aur_tensor **src = alt ? &alt_out : &main_out;
        if (!*src) /* each Perceiver runs once, when a variable first needs it */
            *src = aur_reshape(t, aur__perceiver_resampler(F, alt ? "decoder.level_decoder_alternate" : "decoder.level_decoder", q, ctx,
                                                           c->dec_depth, 0, c->perceiver_ln_eps), aur_shape4(B, L, C, E));
        out->atmos[i] = aur__atmos_head(F, *src, v);
        snprintf(name, sizeof name, "decoder_norm/atmos/%s", v);
        aur__probe(F, name, out->atmos[i]);
        if (aur__vl_find(&c->modulation_heads, v) >= 0) {
            snprintf(name, sizeof name, "%s_mod", v);
            out->atmos_mod[i] = aur__atmos_head(F, *src, name);
        }
        if (!out->atmos[i]) return AUR_EINVAL;
    }
    return 0;
}

/* (B, L, [C,] P*P) head outputs -> (B, [C,] H, W): feature p1*P + p2 fills
   pixel (p1, p2) of its patch (aurora/model/util.py: unpatchify). */
static aur_tensor *aur__unpatchify(const aur__fwd *F, aur_tensor *y, int levels)
{
    aur_tape *t = F->t;
    int64_t B = F->B, h = F->h, w = F->w, P = F->P, C = levels;
    if (!levels) {
        static const int perm[5] = {0, 1, 3, 2, 4};
        return aur_reshape(t, aur_permute(t, aur_reshape(t, y, aur_shape5(B, h, w, P, P)), perm), aur_shape3(B, h * P, w * P));
    }
    static const int perm[6] = {0, 3, 1, 4, 2, 5};
    int64_t s6[6] = {B, h, w, C, P, P};
    return aur_reshape(t, aur_permute(t, aur_reshape(t, y, aur_shapev(6, s6)), perm), aur_shape4(B, C, h * P, w * P));
}

/* An atmospheric variable's head on (B, L, C, E) levels -> (B, C, H, W); with
   level_condition each level has its own head (aurora/model/levelcond.py: LevelConditioned). */
static aur_tensor *aur__atmos_head_run(const aur__fwd *F, aur_tensor *x, const char *v);

/* A variable's head (LinearPatchReconstruction and the unpatchify), in a scope or as a checkpoint. */
typedef struct aur__head_ctx {
    const aur__fwd *F;
    char v[AUR_NAME_LEN + 8];
    int atmos;
} aur__head_ctx;

static aur_tensor *aur__surf_head_run(const aur__fwd *F, aur_tensor *x0, const char *v)
{
    char p[160];
    snprintf(p, sizeof p, "decoder.surf_heads.%s", v);
    return aur__unpatchify(F, aur__lin(F, x0, p, 1), 0);
}

static aur_tensor *aur__head_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__head_ctx *k = (const aur__head_ctx *)ctx;
    (void)t, (void)n_in;
    return k->atmos ? aur__atmos_head_run(k->F, in[0], k->v) : aur__surf_head_run(k->F, in[0], k->v);
}

static aur_tensor *aur__head(const aur__fwd *F, aur_tensor *x, const char *v, int atmos)
{
    if (F->c->checkpoint & AUR_CHECKPOINT_PATCH_RECONSTRUCTION) {
        aur__head_ctx *k = (aur__head_ctx *)aur_tape_alloc(F->t, sizeof *k);
        if (!k) return NULL;
        k->F = F, k->atmos = atmos;
        snprintf(k->v, sizeof k->v, "%s", v);
        return aur_checkpoint(F->t, aur__head_segment, k, &x, 1);
    }
    aur_scope s = aur_scope_begin(F->t); /* the head's slices and reshuffles go when it has made its field */
    aur_tensor *y = atmos ? aur__atmos_head_run(F, x, v) : aur__surf_head_run(F, x, v);
    aur_scope_end(F->t, s, &y, 1);
    return y;
}

static aur_tensor *aur__surf_head(const aur__fwd *F, aur_tensor *x0, const char *v) { return aur__head(F, x0, v, 0); }
static aur_tensor *aur__atmos_head(const aur__fwd *F, aur_tensor *x, const char *v) { return aur__head(F, x, v, 1); }

/* The decoder's outputs flattened and joined: surface (each with its modulation head), then atmospheric. */
static aur_tensor *aur__pack_decoded(aur_tape *t, const aur__decoded *d)
{
    aur_tensor *flat[4 * AUR_MAX_VARS];
    int n = 0;
    for (int i = 0; i < d->surf_names.n; i++) {
        flat[n++] = aur_reshape(t, d->surf[i], aur_shape1(d->surf[i]->numel));
        if (d->surf_mod[i]) flat[n++] = aur_reshape(t, d->surf_mod[i], aur_shape1(d->surf_mod[i]->numel));
    }
    for (int i = 0; i < d->n_atmos; i++) {
        flat[n++] = aur_reshape(t, d->atmos[i], aur_shape1(d->atmos[i]->numel));
        if (d->atmos_mod[i]) flat[n++] = aur_reshape(t, d->atmos_mod[i], aur_shape1(d->atmos_mod[i]->numel));
    }
    return aur_concat(t, flat, n, 0);
}

/* Views of a packed output, in aur__pack_decoded's order (the modulation heads where configured). */
static int aur__unpack_decoded(aur__fwd *F, aur_tensor *packed, aur__decoded *out)
{
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    if (!packed) return AUR_EINVAL;
    memset(out, 0, sizeof *out);
    out->surf_names = b->surf_names;
    out->n_atmos = b->atmos_names.n;
    int64_t at = 0, S = (int64_t)F->B * F->H * F->W, A = S * F->C;
    aur_tensor **dst[2][2] = {{out->surf, out->surf_mod}, {out->atmos, out->atmos_mod}};
    const aur_var_list *names[2] = {&b->surf_names, &b->atmos_names};
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < names[g]->n; i++)
            for (int mod = 0; mod < 2; mod++) {
                if (mod && aur__vl_find(&F->c->modulation_heads, names[g]->name[i]) < 0) continue;
                int64_t n = g ? A : S;
                aur_shape sh = g ? aur_shape4(F->B, F->C, F->H, F->W) : aur_shape3(F->B, F->H, F->W);
                if (!(dst[g][mod][i] = aur_reshape(t, aur_slice(t, packed, 0, at, n), sh))) return AUR_EINVAL;
                at += n;
            }
    return at == packed->numel ? 0 : aur__err(AUR_ESHAPE, "decoder: %lld packed outputs for %lld", (long long)packed->numel, (long long)at);
}

static aur_tensor *aur__atmos_head_run(const aur__fwd *F, aur_tensor *x, const char *v)
{
    aur_tape *t = F->t;
    char p[160], lv[32];
    if (!F->c->n_level_condition) {
        snprintf(p, sizeof p, "decoder.atmos_heads.%s", v);
        return aur__unpatchify(F, aur__lin(F, x, p, 1), F->C);
    }
    aur_tensor *per[AUR_MAX_LEVELS];
    int64_t B = F->B, L = F->L, E = x ? x->shape[3] : 0, P2 = (int64_t)F->P * F->P;
    for (int l = 0; l < F->C; l++) {
        aur_level_to_str(F->levels[l], lv, sizeof lv);
        snprintf(p, sizeof p, "decoder.atmos_heads.%s.layers.%s", v, lv);
        aur_tensor *xl = aur_reshape(t, aur_slice(t, x, 2, l, 1), aur_shape3(B, L, E));
        per[l] = aur_reshape(t, aur__lin(F, xl, p, 1), aur_shape4(B, L, 1, P2));
        if (!per[l]) return NULL;
    }
    return aur__unpatchify(F, aur_concat(t, per, F->C, 2), F->C);
}

/* ==== Aurora: the variants' hooks (aurora/model/aurora.py) ====
   Aurora.forward calls three hooks that the plain model leaves empty:
   batch_transform_hook on the raw batch, _pre_encoder_hook on the encoder's
   normalised inputs and _post_decoder_hook on the normalised predictions.
   AuroraAirPollution and AuroraWave fill them in. */

static int aur__air_pollution_pre_encoder(aur__fwd *F);
static int aur__air_pollution_post(const aur__fwd *F, aur__decoded *d);
static int aur__wave_transform(aur_tape *t, aur_batch *w);
static int aur__wave_pre_encoder(aur__fwd *F);
static int aur__wave_post(const aur__fwd *F, aur__decoded *d);

static int aur__batch_transform_hook(aur_tape *t, const aur_aurora_config *c, aur_batch *b)
{
    return c->wave ? aur__wave_transform(t, b) : 0;
}

static int aur__pre_encoder_hook(aur__fwd *F)
{
    if (F->c->air_pollution) return aur__air_pollution_pre_encoder(F);
    return F->c->wave ? aur__wave_pre_encoder(F) : 0;
}

static int aur__post_decoder_hook(aur__fwd *F, aur__decoded *d)
{
    if (F->c->air_pollution) return aur__air_pollution_post(F, d);
    return F->c->wave ? aur__wave_post(F, d) : 0;
}

/* ---- AuroraAirPollution ---- */

/* The transform of a positive variable z before the encoder, its spikes
   tamed by a log: Linear_v([clamp(z, 0, 2.5), (ln(max(z, 1e-4)) - ln(1e-4)) / -ln(1e-4)]). */
static aur_tensor *aur__feature_combine(const aur__fwd *F, aur_tensor *z, const char *group, const char *v)
{
    aur_tape *t = F->t;
    char p[160];
    if (!z) return NULL;
    aur_shape s = aur_tensor_shape(z), s1 = s;
    s1.d[s1.ndim++] = 1;
    aur_tensor *f1 = aur_clamp(t, z, 0, 2.5);
    aur_tensor *f2 = aur__norm1(t, aur_log(t, aur_clamp(t, z, 1e-4, INFINITY)), log(1e-4), -log(1e-4), 0);
    aur_tensor *both[2] = {aur_reshape(t, f1, s1), aur_reshape(t, f2, s1)};
    snprintf(p, sizeof p, "%s_feature_combiner.%s", group, v);
    return aur_reshape(t, aur__lin(F, aur_concat(t, both, 2, -1), p, 1), s);
}

/* _pre_encoder_hook: the feature combiner of every positive variable (they have one each). */
static int aur__air_pollution_pre_encoder(aur__fwd *F)
{
    const aur_batch *b = F->in;
    for (int i = 0; i < b->surf_names.n; i++)
        if (aur__vl_find(&F->c->positive_surf_vars, b->surf_names.name[i]) >= 0 &&
            !(F->enc_surf[i] = aur__feature_combine(F, F->enc_surf[i], "surf", b->surf_names.name[i])))
            return AUR_EINVAL;
    for (int i = 0; i < b->atmos_names.n; i++)
        if (aur__vl_find(&F->c->positive_atmos_vars, b->atmos_names.name[i]) >= 0 &&
            !(F->enc_atmos[i] = aur__feature_combine(F, F->enc_atmos[i], "atmos", b->atmos_names.name[i])))
            return AUR_EINVAL;
    return 0;
}

/* The history step each difference-predicting variable is relative to. */
static int aur__difference_index(const char *v)
{
    static const char *const zero[] = {"pm1", "pm2p5", "pm10", "no", "tc_no", "no2", "tcno2"};
    static const char *const one[] = {"co", "tcco", "so2", "tcso2", "go3", "gtco3"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (!strcmp(v, zero[i])) return 0;
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
        if (!strcmp(v, one[i])) return 1;
    return -1;
}

/* y + (1 + mod) * x_hist: the prediction as a modulated difference to a past step. The
   reference indexes the history without keeping its axis (batch[v][:, idx]), which
   broadcasts to (B, B, ...) when B > 1; this takes the evident intent, [:, idx:idx+1]. */
static aur_tensor *aur__difference(const aur__fwd *F, aur_tensor *y, aur_tensor *mod, aur_tensor *hist, int idx, const char *v)
{
    aur_tape *t = F->t;
    if (!mod) return aur__err(AUR_EINVAL, "AirPollution: '%s' predicts a difference but has no %s_mod head", v, v), (aur_tensor *)NULL;
    if (idx >= F->T) return aur__err(AUR_ESHAPE, "AirPollution: '%s' needs history step %d, the batch has %d", v, idx, F->T), (aur_tensor *)NULL;
    aur_tensor *h = aur_reshape(t, aur_slice(t, hist, 1, idx, 1), aur_tensor_shape(y));
    return aur_add(t, y, aur_mul(t, aur__norm1(t, mod, -1, 1, 0), h)); /* (mod - (-1)) / 1 = 1 + mod */
}

/* so2 at levels >= 850 hPa clamped to <= 1 (normalised), when LoRA is on. */
static aur_tensor *aur__clamp_so2(const aur__fwd *F, aur_tensor *y)
{
    aur_tensor *per[AUR_MAX_LEVELS];
    for (int c = 0; c < F->C; c++) {
        per[c] = aur_slice(F->t, y, 1, c, 1);
        if (F->levels[c] >= 850) per[c] = aur_clamp(F->t, per[c], -INFINITY, 1);
    }
    return aur_concat(F->t, per, F->C, 1);
}

/* _post_decoder_hook: the difference-predicting variables from their history
   step and modulation head; with LoRA, so2's lower levels clamped (they can blow up). */
static int aur__air_pollution_post(const aur__fwd *F, aur__decoded *d)
{
    const aur_batch *b = F->in;
    for (int i = 0; i < b->surf_names.n; i++) {
        int idx = aur__difference_index(b->surf_names.name[i]);
        if (idx >= 0 && !(d->surf[i] = aur__difference(F, d->surf[i], d->surf_mod[i], F->surf[i], idx, b->surf_names.name[i])))
            return AUR_EINVAL;
    }
    for (int i = 0; i < b->atmos_names.n; i++) {
        int idx = aur__difference_index(b->atmos_names.name[i]);
        if (idx >= 0 && !(d->atmos[i] = aur__difference(F, d->atmos[i], d->atmos_mod[i], F->atmos[i], idx, b->atmos_names.name[i])))
            return AUR_EINVAL;
        if (F->c->use_lora && !strcmp(b->atmos_names.name[i], "so2") && !(d->atmos[i] = aur__clamp_so2(F, d->atmos[i]))) return AUR_EINVAL;
    }
    return 0;
}

/* ---- AuroraWave ---- */

#define AUR__DEG2RAD 0.017453292519943295
#define AUR__RAD2DEG 57.295779513082323

/* Sets a surface variable of a working list (replacing it in place, or appending). */
static int aur__set_var(aur_var_list *names, aur_tensor **xs, const char *v, aur_tensor *x)
{
    int i = aur__vl_find(names, v);
    if (!x) return AUR_EINVAL;
    if (i >= 0) {
        xs[i] = x;
        return 0;
    }
    if (aur__vl_add(names, v)) return AUR_EINVAL;
    xs[names->n - 1] = x;
    return 0;
}

static void aur__drop_var(aur_var_list *names, aur_tensor **xs, const char *v)
{
    int i = aur__vl_find(names, v);
    if (i < 0) return;
    for (int k = i; k + 1 < names->n; k++) {
        memcpy(names->name[k], names->name[k + 1], AUR_NAME_LEN);
        xs[k] = xs[k + 1];
    }
    names->n--;
}

/* A constant 0/1 tensor: 1 where test(x) holds. */
static aur_tensor *aur__mask_of(aur_tape *t, const aur_tensor *x, int (*test)(aur_real v, double arg), double arg, int64_t *count)
{
    aur_tensor *m = x ? aur_tensor_new(t, AUR_CPU, aur_tensor_shape(x)) : NULL;
    const aur_real *xv = m ? aur__host_copy(t, x) : NULL;
    *count = 0;
    for (int64_t i = 0; xv && i < x->numel; i++)
        if (test(xv[i], arg)) aur__wr(m)[i] = 1, (*count)++;
    return xv ? aur__on(t, m, x->device) : NULL;
}
static int aur__is_below(aur_real v, double arg) { return v < arg; }
static int aur__is_above(aur_real v, double arg) { return v > arg; }
static int aur__is_number(aur_real v, double arg) { return (void)arg, !isnan(v); }

/* batch_transform_hook, in physical units: the wind's u and v from dwi, and
   NaN where a wave system is absent (at the first step only). */
static int aur__wave_transform(aur_tape *t, aur_batch *w)
{
    static const char *const systems[5][4] = {{"swh", "mwd", "mwp", "pp1d"}, {"shww", "mdww", "mpww", NULL},
                                              {"shts", "mdts", NULL, NULL},   {"swh1", "mwd1", "mwp1", NULL},
                                              {"swh2", "mwd2", "mwp2", NULL}};
    aur_tensor *dwi = aur_batch_surf(w, "dwi"), *wind = aur_batch_surf(w, "wind");
    if (dwi && wind) {
        aur_tensor *rad = aur_scale(t, dwi, AUR__DEG2RAD), *neg = aur_scale(t, wind, -1);
        if (aur__set_var(&w->surf_names, w->surf, "10u_wave", aur_mul(t, neg, aur_sin(t, rad))) ||
            aur__set_var(&w->surf_names, w->surf, "10v_wave", aur_mul(t, neg, aur_cos(t, rad))))
            return AUR_EINVAL;
        aur__drop_var(&w->surf_names, w->surf, "dwi");
    }
    if (w->rollout_step != 0) return 0;
    for (int s = 0; s < 5; s++) {
        int64_t n = 0;
        aur_tensor *mask = aur__mask_of(t, aur_batch_surf(w, systems[s][0]), aur__is_below, 1e-4, &n);
        if (!mask) return aur__err(AUR_EINVAL, "Wave: the batch needs '%s' (wave heights mark absent waves)", systems[s][0]);
        for (int k = 0; n && k < 4 && systems[s][k]; k++) {
            aur_tensor *x = aur_batch_surf(w, systems[s][k]);
            if (!x) return aur__err(AUR_EINVAL, "Wave: the batch needs '%s' with '%s'", systems[s][k], systems[s][0]);
            if (aur__set_var(&w->surf_names, w->surf, systems[s][k], aur_masked_fill(t, x, mask, NAN))) return AUR_EINVAL;
            int64_t small = 0;
            if (!aur__listed(aur__wave_angles, AUR__COUNT(aur__wave_angles), systems[s][k]))
                aur__mask_of(t, aur_batch_surf(w, systems[s][k]), aur__is_below, 1e-4, &small);
            if (small) return aur__err(AUR_EINVAL, "Wave: '%s' has %lld values below 1e-4 where '%s' is present", systems[s][k], (long long)small, systems[s][0]);
        }
    }
    return 0;
}

/* _pre_encoder_hook, on normalised inputs: density channels and NaN -> 0;
   angles as sin and cos. The reference's hook changes the batch itself (with
   no positive variables, transformed_batch is the batch), so the decoder
   predicts the new channels too: this changes F->in and F->surf, and the
   encoder's inputs follow. */
static int aur__wave_pre_encoder(aur__fwd *F)
{
    aur_tape *t = F->t;
    aur_batch *w = F->in;
    char name[AUR_NAME_LEN + 16];
    aur_var_list snapshot = w->surf_names;
    for (int k = 0; k < snapshot.n; k++) {
        const char *v = snapshot.name[k];
        aur_tensor *x = F->surf[aur__vl_find(&w->surf_names, v)]; /* as it was before this variable's changes */
        int64_t n;
        snprintf(name, sizeof name, "%s_density", v);
        if (aur__listed(aur__wave_density, AUR__COUNT(aur__wave_density), v) && aur__vl_find(&w->surf_names, name) < 0) {
            aur_tensor *dens = aur__mask_of(t, x, aur__is_number, 0, &n);
            if (aur__set_var(&w->surf_names, F->surf, v, aur_nan_to_num(t, x, 0)) || aur__set_var(&w->surf_names, F->surf, name, dens))
                return AUR_EINVAL;
        }
        char sn[AUR_NAME_LEN + 8], cn[AUR_NAME_LEN + 8];
        snprintf(sn, sizeof sn, "%s_sin", v);
        snprintf(cn, sizeof cn, "%s_cos", v);
        if (aur__listed(aur__wave_angles, AUR__COUNT(aur__wave_angles), v) &&
            !(aur__vl_find(&w->surf_names, sn) >= 0 && aur__vl_find(&w->surf_names, cn) >= 0)) {
            aur_tensor *rad = aur_scale(t, x, AUR__DEG2RAD);
            if (aur__set_var(&w->surf_names, F->surf, sn, aur_nan_to_num(t, aur_sin(t, rad), 0)) ||
                aur__set_var(&w->surf_names, F->surf, cn, aur_nan_to_num(t, aur_cos(t, rad), 0)))
                return AUR_EINVAL;
            aur__drop_var(&w->surf_names, F->surf, v);
        }
    }
    for (int i = 0; i < w->surf_names.n; i++) F->enc_surf[i] = F->surf[i]; /* no positive variables (the config check) */
    return aur__check_names(&w->surf_names, &F->c->surf_vars, "surf");
}

/* _post_decoder_hook, on normalised predictions: angles from sin and cos; NaN
   where the density says there are no waves (and over land, wmb <= 0). */
static int aur__wave_post(const aur__fwd *F, aur__decoded *dec)
{
    aur_tape *t = F->t;
    aur_var_list *names = &dec->surf_names;
    aur_tensor **surf = dec->surf;
    char sn[AUR_NAME_LEN + 8], cn[AUR_NAME_LEN + 8];
    aur_tensor *wmb = aur_batch_static(F->in, "wmb");
    int64_t n;
    wmb = wmb ? F->statics[aur__vl_find(&F->in->static_names, "wmb")] : NULL;
    aur_tensor *water = aur__mask_of(t, wmb, aur__is_above, 0, &n);
    if (!water) return aur__err(AUR_EINVAL, "Wave: the batch needs the static variable 'wmb'");
    for (int a = 0; a < AUR__COUNT(aur__wave_angles); a++) {
        const char *v = aur__wave_angles[a];
        snprintf(sn, sizeof sn, "%s_sin", v);
        snprintf(cn, sizeof cn, "%s_cos", v);
        int is = aur__vl_find(names, sn), ic = aur__vl_find(names, cn);
        if (is < 0 || ic < 0) continue;
        aur_tensor *deg = aur_remainder(t, aur_scale(t, aur_atan2(t, surf[is], surf[ic]), AUR__RAD2DEG), 360);
        aur__drop_var(names, surf, sn);
        aur__drop_var(names, surf, cn);
        if (aur__set_var(names, surf, v, deg)) return AUR_EINVAL;
    }
    for (int d = 0; d < AUR__COUNT(aur__wave_density); d++) {
        const char *v = aur__wave_density[d];
        int i = aur__vl_find(names, v), id;
        snprintf(sn, sizeof sn, "%s_density", v);
        if (i < 0) continue;
        if ((id = aur__vl_find(names, sn)) < 0) return aur__err(AUR_EINVAL, "Wave: no '%s' prediction for '%s'", sn, v);
        aur_tensor *dens = aur_mul(t, aur_sigmoid(t, surf[id]), water);
        aur_tensor *data = aur_mul(t, surf[i], water);
        aur_tensor *absent = aur__mask_of(t, dens, aur__is_below, 0.5, &n);
        surf[i] = aur_masked_fill(t, data, absent, NAN);
        aur__drop_var(names, surf, sn);
        if (!surf[aur__vl_find(names, v)]) return AUR_EINVAL;
    }
    return 0;
}

/* ==== Aurora: the loss and the rollout (aurora/rollout.py) ==== */

/* A target on the prediction's device and grid: a 721-row target of a
   720-row prediction loses its last latitude, as aurora/batch.py: Batch.crop
   does to the model's input (any other mismatch is the loss's error). */
static aur_tensor *aur__target_like(aur_tape *t, aur_tensor *y, const aur_tensor *pred)
{
    y = aur__on(t, y, pred->device);
    int rows = y ? y->ndim - 2 : 0;
    if (y && y->ndim == pred->ndim && y->shape[rows] == pred->shape[rows] + 1) y = aur_slice(t, y, rows, 0, pred->shape[rows]);
    return y;
}

/* The fine-tuning loss: the mean over variables of the normalised MSE over finite cells. */
AURDEF aur_tensor *aur_aurora_loss(aur_model *m, aur_tape *t, const aur_batch *pred, const aur_batch *target)
{
    aur__aurora *A = aur__A(m);
    if (!A || !pred || !target) return NULL;
    aur__fwd F;
    memset(&F, 0, sizeof F);
    F.A = A, F.t = t, F.c = &A->cfg, F.C = pred->C;
    memcpy(F.levels, pred->levels, sizeof F.levels);
    aur_tensor *terms[2 * AUR_MAX_VARS];
    int n = 0;
    for (int i = 0; i < pred->surf_names.n; i++, n++) {
        const char *v = pred->surf_names.name[i];
        aur_tensor *y = aur_batch_surf(target, v);
        if (!y) return aur__err(AUR_EINVAL, "loss: the target has no surface variable '%s'", v), (aur_tensor *)NULL;
        y = aur__target_like(t, y, pred->surf[i]);
        terms[n] = aur_mse_loss_finite(t, aur__norm_surf(&F, pred->surf[i], v, 0), aur__norm_surf(&F, y, v, 0));
    }
    for (int i = 0; i < pred->atmos_names.n; i++, n++) {
        const char *v = pred->atmos_names.name[i];
        aur_tensor *y = aur_batch_atmos(target, v);
        if (!y) return aur__err(AUR_EINVAL, "loss: the target has no atmospheric variable '%s'", v), (aur_tensor *)NULL;
        y = aur__target_like(t, y, pred->atmos[i]);
        terms[n] = aur_mse_loss_finite(t, aur__norm_atmos(&F, pred->atmos[i], v, 0), aur__norm_atmos(&F, y, v, 0));
    }
    if (!n) return aur__err(AUR_EINVAL, "loss: the prediction has no variables"), (aur_tensor *)NULL;
    return aur_mean_all(t, aur_concat(t, terms, n, 0));
}

/* A variable's next history (B, T, ...): its last T - 1 steps, then the prediction (B, 1, ...). */
static aur_tensor *aur__shift_history(aur_tape *t, aur_tensor *cur, aur_tensor *pred, int T)
{
    if (T == 1) return pred;
    aur_tensor *parts[2] = {aur_slice(t, aur__on(t, cur, pred->device), 1, 1, T - 1), pred};
    return aur_concat(t, parts, 2, 1);
}

/* The next step's input, as aurora/rollout.py: rollout builds it: the history
   shifted by one, with the prediction appended. */
static aur_batch *aur__next_input(aur_tape *t, const aur_batch *cur, const aur_batch *pred)
{
    aur_batch *nx = aur__batch_like(t, pred, cur->T, pred->H);
    if (!nx) return NULL;
    int ok = 1;
    for (int i = 0; i < pred->surf_names.n && ok; i++) {
        ok = (nx->surf[i] = aur__shift_history(t, aur_batch_surf(cur, pred->surf_names.name[i]), pred->surf[i], cur->T)) != NULL;
    }
    for (int i = 0; i < pred->atmos_names.n && ok; i++) {
        ok = (nx->atmos[i] = aur__shift_history(t, aur_batch_atmos(cur, pred->atmos_names.name[i]), pred->atmos[i], cur->T)) != NULL;
    }
    for (int i = 0; i < pred->static_names.n; i++) nx->statics[i] = pred->statics[i];
    return ok ? nx : NULL;
}

/* The input batch cropped to whole patches, as rollout() does before stepping. */
static aur_batch *aur__cropped_input(aur__aurora *A, aur_tape *t, const aur_batch *b)
{
    int P = A->cfg.patch_size, H = b->H - (b->H % P == 1);
    if (b->H % P > 1) return aur__err(AUR_ESHAPE, "batch: height %d is more than one row off a multiple of %d", b->H, P), (aur_batch *)NULL;
    aur_batch *c = aur__batch_like(t, b, b->T, H);
    if (!c) return NULL;
    int ok = 1;
    for (int i = 0; i < b->surf_names.n && ok; i++) ok = (c->surf[i] = aur__crop_rows(t, b->surf[i], H)) != NULL;
    for (int i = 0; i < b->static_names.n && ok; i++) ok = (c->statics[i] = aur__crop_rows(t, b->statics[i], H)) != NULL;
    for (int i = 0; i < b->atmos_names.n && ok; i++) ok = (c->atmos[i] = aur__crop_rows(t, b->atmos[i], H)) != NULL;
    return ok ? c : NULL;
}

AURDEF int aur_aurora_rollout(aur_model *m, aur_tape *t, const aur_batch *b, int steps, aur_batch **preds)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    if (steps < 1) return aur__err(AUR_EINVAL, "rollout: %d steps", steps);
    for (int s = 0; s < steps; s++) preds[s] = NULL;
    aur_batch *cur = aur__cropped_input(A, t, b); /* every batch here lives on the tape */
    int rc = cur ? 0 : AUR_EINVAL;
    if (!rc && A->cfg.wave) rc = aur__wave_transform(t, cur); /* as the reference's rollout, before the first step */
    for (int s = 0; s < steps && !rc; s++) {
        preds[s] = aur_aurora_forward(m, t, cur);
        cur = preds[s] && s + 1 < steps ? aur__next_input(t, cur, preds[s]) : NULL;
        if (!preds[s] || (s + 1 < steps && !cur)) rc = AUR_EINVAL;
    }
    for (int s = 0; rc && s < steps; s++) preds[s] = NULL;
    return rc;
}

/* ==== Aurora: forecasts (a rollout without gradients) ====
   aurora/rollout.py: rollout under torch.inference_mode, as the reference's
   examples make forecasts. aur_aurora_rollout keeps every step on one tape
   so that gradients can flow through all of them; a forecast of many steps
   needs none of that: each prediction is handed to the caller as it is
   made, the next input (the history shifted by one, the prediction
   appended) is copied out, and the tape is reset. So only the input
   history and one step's activations are ever held, whatever the number
   of steps, and the numbers are those of aur_aurora_rollout. */

/* A batch on the tape as an owned host batch (the next step's input, which must outlive a tape reset). */
static aur_batch *aur__batch_owned_copy(aur_tape *t, const aur_batch *src)
{
    if (src->lat_2d || src->lon_2d) return aur__err(AUR_EUNSUPPORTED, "forecast: 2-D latitude or longitude grids are not supported"), (aur_batch *)NULL;
    aur_batch *b = aur_batch_create(src->B, src->T, src->C, src->H, src->W, &src->surf_names, &src->static_names, &src->atmos_names);
    if (!b) return NULL;
    memcpy(b->lat, src->lat, sizeof(float) * (size_t)src->H);
    memcpy(b->lon, src->lon, sizeof(float) * (size_t)src->W);
    memcpy(b->time, src->time, sizeof(double) * (size_t)src->B);
    memcpy(b->levels, src->levels, sizeof b->levels);
    b->rollout_step = src->rollout_step, b->step_seconds = src->step_seconds;
    aur_tensor *const *from[3] = {src->surf, src->statics, src->atmos}, *const *to[3] = {b->surf, b->statics, b->atmos};
    const int n[3] = {src->surf_names.n, src->static_names.n, src->atmos_names.n};
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < n[g]; i++) {
            aur_real *x = aur_tensor_f32(aur_to_device(t, from[g][i], AUR_CPU));
            if (!x) return aur_batch_free(b), (aur_batch *)NULL;
            memcpy(aur_tensor_f32(to[g][i]), x, sizeof(aur_real) * (size_t)to[g][i]->numel);
        }
    return b;
}

AURDEF int aur_aurora_forecast(aur_model *m, const aur_batch *b, int steps, aur_forecast_fn fn, void *ctx)
{
    aur__aurora *A = aur__A(m);
    if (!A || !b || !fn) return aur__err(AUR_EINVAL, "aur_aurora_forecast: a model, a batch and a callback are needed");
    if (steps < 1) return aur__err(AUR_EINVAL, "forecast: %d steps", steps);
    if (b->lat_2d || b->lon_2d) return aur__err(AUR_EUNSUPPORTED, "forecast: 2-D latitude or longitude grids are not supported");
    aur_tape *t = aur_tape_create();
    if (!t) return AUR_ENOMEM;
    aur_tape_set_grad(t, 0);
    aur_tape_set_training(t, 0);
    aur_batch *cur = NULL; /* the owned input of steps after the first */
    int rc = 0;
    for (int s = 0; s < steps && !rc; s++) {
        aur_tape_reset(t);
        const aur_batch *in = cur;
        if (!s) { /* as the rollout: crop to whole patches, and AuroraWave's transform, before the first step */
            aur_batch *c = aur__cropped_input(A, t, b);
            rc = !c ? AUR_EINVAL : A->cfg.wave ? aur__wave_transform(t, c) : 0;
            in = c;
        }
        aur_batch *pred = rc ? NULL : aur_aurora_forward(m, t, in);
        if (!rc && !pred) rc = AUR_EINVAL;
        if (!rc) rc = fn(ctx, s, pred);
        if (!rc && s + 1 < steps) {
            aur_batch *next = aur__next_input(t, in, pred);
            aur_batch *owned = next ? aur__batch_owned_copy(t, next) : NULL;
            if (!owned) rc = AUR_EINVAL; /* the message says what */
            aur_batch_free(cur);
            cur = owned;
        }
    }
    aur_batch_free(cur);
    aur_tape_free(t);
    return rc;
}

/* ==== Aurora: forecasts as CF NetCDF ====
   The reference's examples turn predictions into xarray datasets with
   Aurora's variable names; here they are written step by step as a
   CF-1.8 NetCDF-4 file that xarray opens as such: dimensions time
   (unlimited: one entry per step, valid times), level (hPa), latitude
   (decreasing) and longitude ([0, 360)); the CF coordinates
   forecast_reference_time and forecast_period; units, standard and long
   names for the variables Aurora knows; static fields without time. The
   library's weather reader reads the file back as a series. */

#ifdef AUR_NETCDF

/* CF's names and units of Aurora's variables (as ERA5 files give them). */
static const struct { const char *group, *name, *standard, *long_name, *units; } aur__fc_attrs[] = {
    {"surf", "2t", "air_temperature", "2 metre temperature", "K"},
    {"surf", "10u", "eastward_wind", "10 metre U wind component", "m s**-1"},
    {"surf", "10v", "northward_wind", "10 metre V wind component", "m s**-1"},
    {"surf", "msl", "air_pressure_at_mean_sea_level", "Mean sea level pressure", "Pa"},
    {"atmos", "t", "air_temperature", "Temperature", "K"},
    {"atmos", "u", "eastward_wind", "U component of wind", "m s**-1"},
    {"atmos", "v", "northward_wind", "V component of wind", "m s**-1"},
    {"atmos", "q", "specific_humidity", "Specific humidity", "kg kg**-1"},
    {"atmos", "z", "geopotential", "Geopotential", "m**2 s**-2"},
    {"static", "z", "surface_geopotential", "Geopotential at the surface", "m**2 s**-2"},
    {"static", "lsm", "land_binary_mask", "Land-sea mask", "(0 - 1)"},
    {"static", "slt", NULL, "Soil type", "~"},
};

struct aur_forecast_nc {
    char path[1024];
    int nc, dim[4], time_var, period_var; /* dims: time, level, latitude, longitude */
    int surf[AUR_MAX_VARS], atmos[AUR_MAX_VARS];
    aur_var_list surf_names, atmos_names;
    int H, W, C;
    size_t steps;
    int defined;
    double init_time, levels[AUR_MAX_LEVELS];
};

static int aur__fc_put_text(aur_forecast_nc *f, int var, const char *name, const char *value)
{
    int st = nc_put_att_text(f->nc, var, name, strlen(value), value);
    return st == NC_NOERR ? 0 : aur__nc_err(st, f->path, name);
}

static int aur__fc_var_attrs(aur_forecast_nc *f, int var, const char *group, const char *name)
{
    for (size_t i = 0; i < sizeof aur__fc_attrs / sizeof aur__fc_attrs[0]; i++) {
        if (strcmp(aur__fc_attrs[i].group, group) || strcmp(aur__fc_attrs[i].name, name)) continue;
        int rc = aur__fc_put_text(f, var, "units", aur__fc_attrs[i].units);
        if (!rc) rc = aur__fc_put_text(f, var, "long_name", aur__fc_attrs[i].long_name);
        if (!rc && aur__fc_attrs[i].standard) rc = aur__fc_put_text(f, var, "standard_name", aur__fc_attrs[i].standard);
        return rc;
    }
    return 0;
}

/* A data variable over the given dimensions, compressed (zlib level 1, shuffle), one chunk per step;
   one over time names its auxiliary coordinates as CF does. */
static int aur__fc_def_var(aur_forecast_nc *f, const char *name, nc_type type, int ndims, const int *dims, int *id)
{
    int st = nc_def_var(f->nc, name, type, ndims, dims, id);
    if (st == NC_NOERR && ndims >= 3) {
        static const char aux[] = "forecast_period forecast_reference_time";
        st = nc_put_att_text(f->nc, *id, "coordinates", sizeof aux - 1, aux);
    }
    if (st == NC_NOERR && ndims >= 2) {
        size_t chunk[4];
        for (int d = 0; d < ndims; d++) {
            size_t len = 1;
            nc_inq_dimlen(f->nc, dims[d], &len);
            chunk[d] = dims[d] == f->dim[0] ? 1 : len;
        }
        st = nc_def_var_chunking(f->nc, *id, NC_CHUNKED, chunk);
        if (st == NC_NOERR) st = nc_def_var_deflate(f->nc, *id, 1, 1, 1);
    }
    return st == NC_NOERR ? 0 : aur__nc_err(st, f->path, name);
}

/* The coordinates: dimensions, their variables and the reference time. */
static int aur__fc_define_coords(aur_forecast_nc *f, const aur_batch *p, int *lat, int *lon, int *lev, int *ref)
{
    static const char *const names[4] = {"time", "level", "latitude", "longitude"};
    const size_t len[4] = {NC_UNLIMITED, (size_t)f->C, (size_t)f->H, (size_t)f->W};
    for (int d = 0; d < 4; d++) {
        if (d == 1 && !f->C) { f->dim[d] = -1; continue; }
        int st = nc_def_dim(f->nc, names[d], len[d], &f->dim[d]);
        if (st != NC_NOERR) return aur__nc_err(st, f->path, names[d]);
    }
    char units[64], when[32];
    aur__format_time((int64_t)llround(f->init_time) * 1000000000LL, when, sizeof when);
    snprintf(units, sizeof units, "hours since %s", when);
    int rc = aur__fc_def_var(f, "time", NC_DOUBLE, 1, &f->dim[0], &f->time_var);
    if (!rc) rc = aur__fc_put_text(f, f->time_var, "units", units);
    if (!rc) rc = aur__fc_put_text(f, f->time_var, "calendar", "proleptic_gregorian");
    if (!rc) rc = aur__fc_put_text(f, f->time_var, "standard_name", "time");
    if (!rc) rc = aur__fc_put_text(f, f->time_var, "long_name", "valid time");
    if (!rc) rc = aur__fc_def_var(f, "forecast_period", NC_DOUBLE, 1, &f->dim[0], &f->period_var);
    if (!rc) rc = aur__fc_put_text(f, f->period_var, "units", "hours");
    if (!rc) rc = aur__fc_put_text(f, f->period_var, "standard_name", "forecast_period");
    if (!rc) rc = aur__fc_def_var(f, "forecast_reference_time", NC_DOUBLE, 0, NULL, ref);
    if (!rc) rc = aur__fc_put_text(f, *ref, "units", units);
    if (!rc) rc = aur__fc_put_text(f, *ref, "calendar", "proleptic_gregorian");
    if (!rc) rc = aur__fc_put_text(f, *ref, "standard_name", "forecast_reference_time");
    if (!rc && f->C) rc = aur__fc_def_var(f, "level", NC_DOUBLE, 1, &f->dim[1], lev);
    if (!rc && f->C) rc = aur__fc_put_text(f, *lev, "units", "hPa");
    if (!rc && f->C) rc = aur__fc_put_text(f, *lev, "standard_name", "air_pressure");
    if (!rc && f->C) rc = aur__fc_put_text(f, *lev, "long_name", "pressure");
    if (!rc && f->C) rc = aur__fc_put_text(f, *lev, "positive", "down");
    if (!rc) rc = aur__fc_def_var(f, "latitude", NC_FLOAT, 1, &f->dim[2], lat);
    if (!rc) rc = aur__fc_put_text(f, *lat, "units", "degrees_north");
    if (!rc) rc = aur__fc_put_text(f, *lat, "standard_name", "latitude");
    if (!rc) rc = aur__fc_def_var(f, "longitude", NC_FLOAT, 1, &f->dim[3], lon);
    if (!rc) rc = aur__fc_put_text(f, *lon, "units", "degrees_east");
    if (!rc) rc = aur__fc_put_text(f, *lon, "standard_name", "longitude");
    (void)p;
    return rc;
}

/* Defines the whole file from the first prediction and writes its coordinates and static fields. */
static int aur__fc_define(aur_forecast_nc *f, const aur_batch *p)
{
    f->H = p->H, f->W = p->W, f->C = p->atmos_names.n ? p->C : 0;
    f->surf_names = p->surf_names, f->atmos_names = p->atmos_names;
    int lat, lon, lev = -1, ref, statics[AUR_MAX_VARS];
    int rc = aur__fc_define_coords(f, p, &lat, &lon, &lev, &ref);
    const int surf_dims[3] = {f->dim[0], f->dim[2], f->dim[3]}, atmos_dims[4] = {f->dim[0], f->dim[1], f->dim[2], f->dim[3]};
    for (int i = 0; !rc && i < p->surf_names.n; i++) {
        rc = aur__fc_def_var(f, p->surf_names.name[i], NC_FLOAT, 3, surf_dims, &f->surf[i]);
        if (!rc) rc = aur__fc_var_attrs(f, f->surf[i], "surf", p->surf_names.name[i]);
    }
    for (int i = 0; !rc && i < p->atmos_names.n; i++) {
        if (aur__vl_find(&p->surf_names, p->atmos_names.name[i]) >= 0)
            rc = aur__err(AUR_EINVAL, "%s: '%s' is both a surface and an atmospheric variable; one NetCDF name cannot hold both", f->path,
                          p->atmos_names.name[i]);
        if (!rc) rc = aur__fc_def_var(f, p->atmos_names.name[i], NC_FLOAT, 4, atmos_dims, &f->atmos[i]);
        if (!rc) rc = aur__fc_var_attrs(f, f->atmos[i], "atmos", p->atmos_names.name[i]);
    }
    /* a static field's name may be taken (static z and atmospheric z): then static z is WeatherBench2's
       geopotential_at_surface (which the weather reader maps back to static z), any other "<name>_static" */
    char sname[AUR_NAME_LEN + 32];
    for (int i = 0; !rc && i < p->static_names.n; i++) {
        const char *v = p->static_names.name[i];
        int taken = aur__vl_find(&p->surf_names, v) >= 0 || aur__vl_find(&p->atmos_names, v) >= 0;
        snprintf(sname, sizeof sname, !taken ? "%s" : !strcmp(v, "z") ? "geopotential_at_surface" : "%s_static", v);
        rc = aur__fc_def_var(f, sname, NC_FLOAT, 2, surf_dims + 1, &statics[i]);
        if (!rc) rc = aur__fc_var_attrs(f, statics[i], "static", v);
    }
    if (!rc) rc = aur__fc_put_text(f, NC_GLOBAL, "Conventions", "CF-1.8");
    if (!rc) rc = aur__fc_put_text(f, NC_GLOBAL, "title", "Aurora forecast");
    if (!rc) rc = aur__fc_put_text(f, NC_GLOBAL, "source", "aurora.h (aur_aurora_forecast)");
    int st = rc ? NC_NOERR : nc_enddef(f->nc);
    if (st != NC_NOERR) return aur__nc_err(st, f->path, "defining the file");
    double zero = 0, lev_hpa[AUR_MAX_LEVELS];
    for (int c = 0; c < f->C; c++) lev_hpa[c] = p->levels[c];
    if (!rc && (st = nc_put_var_float(f->nc, lat, p->lat)) == NC_NOERR && (st = nc_put_var_float(f->nc, lon, p->lon)) == NC_NOERR &&
        (st = nc_put_var_double(f->nc, ref, &zero)) == NC_NOERR && f->C)
        st = nc_put_var_double(f->nc, lev, lev_hpa);
    for (int i = 0; !rc && st == NC_NOERR && i < p->static_names.n; i++) {
        const aur_real *x = aur_tensor_f32(p->statics[i]);
        st = x ? nc_put_var_float(f->nc, statics[i], x) : NC_EINVAL;
    }
    return rc ? rc : st == NC_NOERR ? 0 : aur__nc_err(st, f->path, "writing the coordinates and static fields");
}

AURDEF aur_forecast_nc *aur_forecast_nc_create(const char *path, double init_time)
{
    aur_forecast_nc *f = (aur_forecast_nc *)aur__calloc(sizeof *f, "a forecast file");
    if (!f) return NULL;
    if (snprintf(f->path, sizeof f->path, "%s", path) >= (int)sizeof f->path) {
        AUR_FREE(f);
        return aur__err(AUR_EINVAL, "%s: path too long", path), (aur_forecast_nc *)NULL;
    }
    int st = nc_create(path, NC_NETCDF4 | NC_CLOBBER, &f->nc);
    if (st != NC_NOERR) {
        AUR_FREE(f);
        return aur__nc_err(st, path, "cannot create"), (aur_forecast_nc *)NULL;
    }
    f->init_time = init_time;
    return f;
}

AURDEF int aur_forecast_nc_add(aur_forecast_nc *f, const aur_batch *pred)
{
    if (!f || !pred) return aur__err(AUR_EINVAL, "aur_forecast_nc_add: no file or prediction");
    if (pred->B != 1 || pred->T != 1) return aur__err(AUR_EINVAL, "%s: a prediction of B = 1 and one step is written (B %d, T %d)", f->path, pred->B, pred->T);
    if (!f->defined) {
        int rc = aur__fc_define(f, pred);
        if (rc) return rc;
        f->defined = 1;
        memcpy(f->levels, pred->levels, sizeof f->levels);
    }
    int same = pred->H == f->H && pred->W == f->W && (pred->atmos_names.n ? pred->C : 0) == f->C && pred->surf_names.n == f->surf_names.n &&
               pred->atmos_names.n == f->atmos_names.n;
    for (int c = 0; same && c < f->C; c++) same = pred->levels[c] == f->levels[c];
    for (int i = 0; same && i < f->surf_names.n; i++) same = aur__vl_find(&pred->surf_names, f->surf_names.name[i]) >= 0;
    for (int i = 0; same && i < f->atmos_names.n; i++) same = aur__vl_find(&pred->atmos_names, f->atmos_names.name[i]) >= 0;
    if (!same) return aur__err(AUR_EINVAL, "%s: step %zu has another grid, levels or variables than the first", f->path, f->steps + 1);
    size_t at = f->steps;
    double hours = (pred->time[0] - f->init_time) / 3600;
    int st = nc_put_var1_double(f->nc, f->time_var, &at, &hours);
    if (st == NC_NOERR) st = nc_put_var1_double(f->nc, f->period_var, &at, &hours);
    size_t start[4] = {at, 0, 0, 0}, count[4] = {1, (size_t)f->C, (size_t)f->H, (size_t)f->W}, scount[3] = {1, (size_t)f->H, (size_t)f->W};
    for (int i = 0; st == NC_NOERR && i < f->surf_names.n; i++) {
        const aur_real *x = aur_tensor_f32(aur_batch_surf(pred, f->surf_names.name[i]));
        st = x ? nc_put_vara_float(f->nc, f->surf[i], start, scount, x) : NC_EINVAL;
    }
    for (int i = 0; st == NC_NOERR && i < f->atmos_names.n; i++) {
        const aur_real *x = aur_tensor_f32(aur_batch_atmos(pred, f->atmos_names.name[i]));
        st = x ? nc_put_vara_float(f->nc, f->atmos[i], start, count, x) : NC_EINVAL;
    }
    if (st == NC_EINVAL) return aur__err(AUR_EINVAL, "%s: step %zu: a variable is missing or not F32 in host memory", f->path, at + 1);
    if (st != NC_NOERR) return aur__nc_err(st, f->path, "writing a step");
    f->steps++;
    return nc_sync(f->nc) == NC_NOERR ? 0 : aur__err(AUR_EIO, "%s: cannot flush step %zu", f->path, at + 1);
}

AURDEF int aur_forecast_nc_close(aur_forecast_nc *f)
{
    if (!f) return 0;
    int st = nc_close(f->nc);
    int rc = st == NC_NOERR ? 0 : aur__nc_err(st, f->path, "closing");
    AUR_FREE(f);
    return rc;
}

#else /* built without libnetcdf */

struct aur_forecast_nc {
    int unused;
};
AURDEF aur_forecast_nc *aur_forecast_nc_create(const char *path, double init_time)
{
    (void)init_time;
    aur__err(AUR_EUNSUPPORTED, "%s: writing NetCDF needs the implementation compiled with -DAUR_NETCDF and linked with -lnetcdf", path);
    return NULL;
}
AURDEF int aur_forecast_nc_add(aur_forecast_nc *f, const aur_batch *pred)
{
    (void)f, (void)pred;
    return aur__err(AUR_EUNSUPPORTED, "writing NetCDF needs -DAUR_NETCDF");
}
AURDEF int aur_forecast_nc_close(aur_forecast_nc *f)
{
    (void)f;
    return 0;
}
#endif

/* ==== Aurora: forecast scores as WeatherBench2 defines them ====
   weatherbench2/metrics.py: every spatial mean is weighted by latitude,
   with get_lat_weights' weights: the area of each row's cell on the sphere
   (sin of its upper bound less sin of its lower; bounds halfway between
   rows, and at the poles), divided by their mean. Then, per variable,
   level and lead time:
     RMSE = sqrt(mean over forecasts of the weighted spatial mean of (f - o)^2)
     ACC  = mean over forecasts of  mean_w(f' o') / sqrt(mean_w(f'^2) mean_w(o'^2)),
            f' = f - climatology, o' = o - climatology (not centred again).
   Cells where a value is not finite are left out of that forecast's means
   (the weights of the rest renormalised). */

AURDEF int aur_lat_weights(const float *lat, int H, double *w)
{
    if (!lat || !w || H < 1) return aur__err(AUR_EINVAL, "aur_lat_weights: %d latitudes", H);
    if (H == 1) return w[0] = 1, 0;
    int down = lat[0] > lat[H - 1];
    const double rad = 3.14159265358979323846 / 180;
    double sum = 0;
    for (int i = 0; i < H; i++) { /* row i's neighbours in increasing latitude */
        double x = lat[i], below = down ? (i + 1 < H ? lat[i + 1] : -90) : (i ? lat[i - 1] : -90);
        double above = down ? (i ? lat[i - 1] : 90) : (i + 1 < H ? lat[i + 1] : 90);
        if (!(x >= -90 && x <= 90) || (i && !(down ? lat[i] < lat[i - 1] : lat[i] > lat[i - 1])))
            return aur__err(AUR_EINVAL, "latitude weights: latitudes must be monotonic within [-90, 90] (row %d: %g)", i, x);
        double lo = (i == (down ? H - 1 : 0)) ? -90 : (x + below) / 2, hi = (i == (down ? 0 : H - 1)) ? 90 : (x + above) / 2;
        w[i] = sin(hi * rad) - sin(lo * rad);
        sum += w[i];
    }
    for (int i = 0; i < H; i++) w[i] /= sum / H;
    return 0;
}

/* The time of step k of a series (its last step is b->time[0]); NaN where its spacing is not known. */
static double aur__series_time(const aur_batch *b, int k)
{
    if (k == b->T - 1) return b->time[0];
    return b->step_seconds > 0 ? b->time[0] - (double)(b->T - 1 - k) * b->step_seconds : NAN;
}

AURDEF int aur_series_step_at(const aur_batch *b, double t)
{
    for (int k = 0; b && k < b->T; k++)
        if (fabs(aur__series_time(b, k) - t) < 1) return k;
    return -1;
}

/* A climatology's step for valid time t: the one with t's day of the year and hour (any year), or its only step. */
AURDEF int aur_climatology_step(const aur_batch *clim, double t)
{
    if (!clim) return -1;
    if (clim->T == 1) return 0;
    char want[32], have[32];
    aur__format_time((int64_t)llround(t) * 1000000000LL, want, sizeof want);
    for (int k = 0; k < clim->T; k++) {
        if (!isfinite(aur__series_time(clim, k))) continue;
        aur__format_time((int64_t)llround(aur__series_time(clim, k)) * 1000000000LL, have, sizeof have);
        if (!strcmp(want + 4, have + 4)) return k; /* "-MM-DD hh:mm:ss" */
    }
    return -1;
}

static aur_score *aur__score_row(aur_scores *s, const char *var, int atmos, double level, double lead)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->rows[i].var, var) && s->rows[i].atmos == atmos && s->rows[i].level == level && s->rows[i].lead_hours == lead)
            return &s->rows[i];
    aur_score *grown = (aur_score *)AUR_REALLOC(s->rows, sizeof *grown * (size_t)(s->n + 1));
    if (!grown) return aur__err(AUR_ENOMEM, "out of memory for scores"), (aur_score *)NULL;
    s->rows = grown;
    aur_score *r = &s->rows[s->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->var, sizeof r->var, "%s", var);
    r->atmos = atmos, r->level = level, r->lead_hours = lead;
    return r;
}

/* One field's weighted means: of the squared error, and the three ACC sums (clim NULL: none). */
static void aur__score_field(aur_score *r, const float *f, const float *o, const float *c, const double *w, int H, int W)
{
    double sw = 0, se = 0, fo = 0, ff = 0, oo = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t i = (size_t)y * W + x;
            double cl = c ? c[i] : 0;
            if (!isfinite(f[i]) || !isfinite(o[i]) || !isfinite(cl)) continue;
            double d = (double)f[i] - o[i], fa = f[i] - cl, oa = o[i] - cl;
            sw += w[y], se += w[y] * d * d, fo += w[y] * fa * oa, ff += w[y] * fa * fa, oo += w[y] * oa * oa;
        }
    if (!(sw > 0)) return; /* nothing finite: this forecast adds nothing */
    r->sum_mse += se / sw, r->n++;
    if (c && ff > 0 && oo > 0) r->sum_acc += fo / sqrt(ff * oo), r->n_acc++;
}

/* The (H, W) field of variable i of a group at step k and level c (rows beyond H cut, as the model's crop). */
static const float *aur__score_plane(const aur_tensor *t, int k, int C, int c, int rows, int W)
{
    const float *x = (const float *)t->data;
    return x + (((size_t)k * (size_t)(C ? C : 1) + (size_t)c) * (size_t)rows) * (size_t)W;
}

AURDEF int aur_scores_add(aur_scores *s, double lead_hours, const aur_batch *pred, const aur_batch *truth, int t_truth, const aur_batch *clim, int t_clim)
{
    if (!s || !pred || !truth) return aur__err(AUR_EINVAL, "aur_scores_add: scores, a prediction and a truth are needed");
    int H = pred->H, W = pred->W;
    if (pred->B != 1 || pred->T != 1 || truth->B != 1 || t_truth < 0 || t_truth >= truth->T || (clim && (clim->B != 1 || t_clim < 0 || t_clim >= clim->T)))
        return aur__err(AUR_EINVAL, "scores: one prediction (B 1, T 1) against one step of a truth (and climatology) series of B 1");
    if (truth->W != W || truth->H < H || truth->H > H + 1 || (clim && (clim->W != W || clim->H < H || clim->H > H + 1)))
        return aur__err(AUR_ESHAPE, "scores: the truth's grid %d x %d (climatology %d x %d) is not the forecast's %d x %d", truth->H, truth->W,
                        clim ? clim->H : 0, clim ? clim->W : 0, H, W);
    if (pred->lat_2d || pred->lon_2d) return aur__err(AUR_EUNSUPPORTED, "scores: 2-D latitude or longitude grids are not scored");
    for (int y = 0; y < H; y++)
        if (fabs(truth->lat[y] - pred->lat[y]) > 1e-3 || (clim && fabs(clim->lat[y] - pred->lat[y]) > 1e-3))
            return aur__err(AUR_ESHAPE, "scores: the truth's (or climatology's) latitude %g is not the forecast's %g", truth->lat[y], pred->lat[y]);
    for (int x = 0; x < W; x++)
        if (fabs(truth->lon[x] - pred->lon[x]) > 1e-3 || (clim && fabs(clim->lon[x] - pred->lon[x]) > 1e-3))
            return aur__err(AUR_ESHAPE, "scores: the truth's (or climatology's) longitude %g is not the forecast's %g", truth->lon[x], pred->lon[x]);
    double *w = (double *)aur__malloc(sizeof(double) * (size_t)H, "latitude weights");
    int rc = w ? aur_lat_weights(pred->lat, H, w) : AUR_ENOMEM;
    for (int g = 0; g < 2 && !rc; g++) {
        const aur_var_list *names = g ? &pred->atmos_names : &pred->surf_names;
        for (int i = 0; i < names->n && !rc; i++) {
            const char *v = names->name[i];
            const aur_tensor *p = g ? aur_batch_atmos(pred, v) : aur_batch_surf(pred, v), *o = g ? aur_batch_atmos(truth, v) : aur_batch_surf(truth, v);
            const aur_tensor *c = !clim ? NULL : g ? aur_batch_atmos(clim, v) : aur_batch_surf(clim, v);
            if (!o) { rc = aur__err(AUR_EINVAL, "scores: the truth has no %s variable '%s'", g ? "atmospheric" : "surface", v); break; }
            if (clim && !c) { rc = aur__err(AUR_EINVAL, "scores: the climatology has no %s variable '%s'", g ? "atmospheric" : "surface", v); break; }
            if (p->dtype != AUR_F32 || p->device != AUR_CPU || o->dtype != AUR_F32 || o->device != AUR_CPU || (c && (c->dtype != AUR_F32 || c->device != AUR_CPU))) {
                rc = aur__err(AUR_EINVAL, "scores: '%s' must be F32 in host memory", v);
                break;
            }
            int C = g ? pred->C : 0;
            int same = !g || (truth->C == C && (!clim || clim->C == C));
            for (int lev = 0; same && g && lev < C; lev++)
                same = fabs(truth->levels[lev] - pred->levels[lev]) < 1e-6 && (!clim || fabs(clim->levels[lev] - pred->levels[lev]) < 1e-6);
            if (!same) { rc = aur__err(AUR_ESHAPE, "scores: the truth (or climatology) has other pressure levels, or another order, than the forecast"); break; }
            for (int lev = 0; lev < (g ? C : 1) && !rc; lev++) {
                aur_score *r = aur__score_row(s, v, g, g ? pred->levels[lev] : 0, lead_hours);
                if (!r) { rc = AUR_ENOMEM; break; }
                aur__score_field(r, aur__score_plane(p, 0, C, lev, H, W), aur__score_plane(o, t_truth, C, lev, truth->H, W),
                                 c ? aur__score_plane(c, t_clim, C, lev, clim->H, W) : NULL, w, H, W);
            }
        }
    }
    AUR_FREE(w);
    return rc;
}

AURDEF void aur_scores_finish(aur_scores *s)
{
    for (int i = 0; s && i < s->n; i++) {
        aur_score *r = &s->rows[i];
        r->rmse = r->n ? sqrt(r->sum_mse / r->n) : NAN;
        r->acc = r->n_acc ? r->sum_acc / r->n_acc : NAN;
    }
}

AURDEF int aur_scores_write_jsonl(const aur_scores *s, const char *path)
{
    FILE *fp = fopen(path, "w");
    if (!fp) return aur__err(AUR_EIO, "%s: cannot write: %s", path, strerror(errno));
    for (int i = 0; i < s->n; i++) {
        const aur_score *r = &s->rows[i];
        fprintf(fp, "{\"variable\": \"%s\", ", r->var);
        if (r->atmos) fprintf(fp, "\"level\": %g, ", r->level);
        fprintf(fp, "\"lead_hours\": %g, \"n\": %d", r->lead_hours, r->n);
        if (isfinite(r->rmse)) fprintf(fp, ", \"rmse\": %.9g", r->rmse);
        if (isfinite(r->acc)) fprintf(fp, ", \"acc\": %.9g", r->acc);
        fprintf(fp, "}\n");
    }
    int bad = ferror(fp);
    if (fclose(fp) || bad) return aur__err(AUR_EIO, "%s: cannot write", path);
    return 0;
}

AURDEF void aur_scores_free(aur_scores *s)
{
    if (!s) return;
    AUR_FREE(s->rows);
    s->rows = NULL, s->n = 0;
}

/* ==== Aurora: the paper's training loss ====
   Bodnar et al., "A foundation model for the Earth system" (Nature 2025;
   arXiv:2405.13063), training objective: a weighted mean absolute error of
   the normalised prediction,
     L = gamma / (V_S + V_A) * ( alpha * sum_k w_k MAE(S_k) + beta * sum_k w_k MAE(A_k) ),
   over the V_S surface and V_A atmospheric variables (an atmospheric MAE is
   over all its levels), with per-variable weights w_k, alpha = 1/4 for the
   surface, beta = 1 for the atmosphere and gamma the dataset's weight. Each
   MAE is here also weighted by latitude, with WeatherBench2's cell-area
   weights (mean 1), so that the poles' many small cells do not dominate;
   latitude = 0 turns that off. The reference repository publishes no
   training code; the MSE the golden cases were made with stays the
   default (aur_aurora_loss). */

AURDEF void aur_aurora_mae_defaults(aur_aurora_mae_weights *w)
{
    static const char *const surf[] = {"2t", "10u", "10v", "msl"}, *const atmos[] = {"z", "q", "t", "u", "v"};
    static const double surf_w[] = {3.0, 0.77, 0.66, 1.5}, atmos_w[] = {2.8, 0.78, 1.7, 0.87, 0.6};
    memset(w, 0, sizeof *w);
    w->surf = 0.25, w->atmos = 1, w->dataset = 1, w->latitude = 1;
    for (int i = 0; i < 4; i++) aur__vl_add(&w->surf_names, surf[i]), w->surf_weight[i] = surf_w[i];
    for (int i = 0; i < 5; i++) aur__vl_add(&w->atmos_names, atmos[i]), w->atmos_weight[i] = atmos_w[i];
}

/* A variable's weight: listed, or 1. */
static double aur__mae_weight(const aur_var_list *names, const double *weights, const char *v)
{
    int i = aur__vl_find(names, v);
    return i >= 0 ? weights[i] : 1;
}

/* The (H, 1) latitude weights on the prediction's device, or NULL (no weighting). */
static aur_tensor *aur__mae_lat_weights(aur_tape *t, const aur_batch *pred, aur_device dev)
{
    aur_tensor *w = aur_tensor_new(t, AUR_CPU, aur_shape2(pred->H, 1));
    double *lw = (double *)aur__malloc(sizeof(double) * (size_t)pred->H, "latitude weights");
    int rc = w && lw ? aur_lat_weights(pred->lat, pred->H, lw) : AUR_ENOMEM;
    for (int y = 0; !rc && y < pred->H; y++) aur_tensor_f32(w)[y] = (aur_real)lw[y];
    AUR_FREE(lw);
    return rc ? NULL : aur_to_device(t, w, dev);
}

/* MAE of normalised x and y, weighted by the (H, 1) latitude weights lw when given: |x lw - y lw| = lw |x - y|. */
static aur_tensor *aur__mae_term(aur_tape *t, aur_tensor *x, aur_tensor *y, aur_tensor *lw)
{
    if (lw) x = aur_mul(t, x, lw), y = aur_mul(t, y, lw);
    return aur_mae_loss(t, x, y);
}

AURDEF aur_tensor *aur_aurora_loss_mae(aur_model *m, aur_tape *t, const aur_batch *pred, const aur_batch *target, const aur_aurora_mae_weights *w)
{
    aur__aurora *A = aur__A(m);
    if (!A || !pred || !target || !w) return NULL;
    aur__fwd F;
    memset(&F, 0, sizeof F);
    F.A = A, F.t = t, F.c = &A->cfg, F.C = pred->C;
    memcpy(F.levels, pred->levels, sizeof F.levels);
    int n = pred->surf_names.n + pred->atmos_names.n;
    if (!n) return aur__err(AUR_EINVAL, "loss: the prediction has no variables"), (aur_tensor *)NULL;
    if (w->latitude && (pred->lat_2d || pred->lon_2d))
        return aur__err(AUR_EUNSUPPORTED, "loss aurora_mae: latitude weights need a 1-D latitude grid (set latitude_weights false)"), (aur_tensor *)NULL;
    aur_device dev = pred->surf_names.n ? pred->surf[0]->device : pred->atmos[0]->device;
    aur_tensor *lw = w->latitude ? aur__mae_lat_weights(t, pred, dev) : NULL, *sum = NULL;
    if (w->latitude && !lw) return NULL;
    for (int g = 0; g < 2; g++) {
        const aur_var_list *names = g ? &pred->atmos_names : &pred->surf_names;
        for (int i = 0; i < names->n; i++) {
            const char *v = names->name[i];
            aur_tensor *y = g ? aur_batch_atmos(target, v) : aur_batch_surf(target, v);
            if (!y) return aur__err(AUR_EINVAL, "loss: the target has no %s variable '%s'", g ? "atmospheric" : "surface", v), (aur_tensor *)NULL;
            y = aur__target_like(t, y, g ? pred->atmos[i] : pred->surf[i]);
            aur_tensor *px = g ? aur__norm_atmos(&F, pred->atmos[i], v, 0) : aur__norm_surf(&F, pred->surf[i], v, 0);
            aur_tensor *py = g ? aur__norm_atmos(&F, y, v, 0) : aur__norm_surf(&F, y, v, 0);
            double k = (g ? w->atmos * aur__mae_weight(&w->atmos_names, w->atmos_weight, v)
                          : w->surf * aur__mae_weight(&w->surf_names, w->surf_weight, v)) * w->dataset / n;
            aur_tensor *term = aur_scale(t, aur__mae_term(t, px, py, lw), k);
            if (!term) return NULL;
            sum = sum ? aur_add(t, sum, term) : term;
        }
    }
    return sum;
}

/* ==== Aurora: checkpoint adaptation ====
   What aurora/model/aurora.py: Aurora.load_checkpoint_local does to a released
   checkpoint before loading it: _adapt_checkpoint (aurora/model/compat.py) and
   adapt_checkpoint_max_history_size. */

/* Replaces the fused tensor `fused` (channel axis `axis`, n = names) by one entry per name. */
static int aur__split_fused(aur__ckpt *ck, const char *fused, const char *prefix, const char *suffix, const char *const *names, int n,
                            int head_layout)
{
    aur__ckpt_entry *e = aur__ckpt_find(ck, fused);
    if (!e) return 0;
    float *all = aur__ckpt_read_f32(ck, e);
    if (!all) return AUR_EINVAL;
    int64_t shape[AUR_ST_MAX_DIMS], total = aur__ckpt_numel(e);
    int ndim = e->ndim, rc = 0;
    memcpy(shape, e->shape, sizeof shape);
    char name[256];
    for (int i = 0; i < n && !rc; i++) {
        int64_t s2[AUR_ST_MAX_DIMS];
        memcpy(s2, shape, sizeof s2);
        float *out;
        if (!head_layout) { /* encoder kernels (D, n, T, P, P): channel i, keeping the singleton axis */
            int64_t inner = total / (shape[0] * shape[1]);
            s2[1] = 1;
            out = (float *)aur__malloc(sizeof(float) * (size_t)(shape[0] * inner), "a split kernel");
            for (int64_t d = 0; out && d < shape[0]; d++)
                memcpy(out + d * inner, all + (d * shape[1] + i) * inner, sizeof(float) * (size_t)inner);
        } else { /* fused heads: row k*n + i of (n*P^2, E) or of the bias (n*P^2) */
            int64_t rows = shape[0] / n, cols = ndim > 1 ? shape[1] : 1;
            s2[0] = rows;
            out = (float *)aur__malloc(sizeof(float) * (size_t)(rows * cols), "a split head");
            for (int64_t k = 0; out && k < rows; k++) memcpy(out + k * cols, all + (k * n + i) * cols, sizeof(float) * (size_t)cols);
        }
        snprintf(name, sizeof name, "%s%s%s", prefix, names[i], suffix);
        rc = out ? aur__ckpt_add(ck, name, ndim, s2, NULL, out) : AUR_ENOMEM;
    }
    AUR_FREE(all);
    if (!rc) {
        e = aur__ckpt_find(ck, fused);
        AUR_FREE(e->name);
        AUR_FREE(e->data);
        *e = ck->e[--ck->n];
        aur__ckpt_sort(ck);
    }
    return rc;
}

/* Renames every key: strip a leading "net.", and the Wave renames. */
static int aur__rename_keys(aur__ckpt *ck)
{
    char buf[512];
    for (int i = 0; i < ck->n; i++) {
        const char *s = ck->e[i].name;
        snprintf(buf, sizeof buf, "%s", !strncmp(s, "net.", 4) ? s + 4 : s);
        for (char *q; (q = strstr(buf, ".k_ln.")) || (q = strstr(buf, ".q_ln."));) memcpy(q, q[1] == 'k' ? ".ln_k." : ".ln_q.", 6);
        if (strcmp(buf, s)) {
            char *n = aur__strdup(buf);
            if (!n) return AUR_ENOMEM;
            AUR_FREE(ck->e[i].name);
            ck->e[i].name = n;
        }
    }
    aur__ckpt_sort(ck);
    return 0;
}

/* Pads every patch-embedding kernel's history axis to max_history_size with zeros. */
static int aur__pad_history(aur__aurora *A, aur__ckpt *ck)
{
    aur__ckpt_entry *ref = aur__ckpt_find(ck, "encoder.surf_token_embeds.weights.2t");
    int64_t Tmax = A->cfg.max_history_size;
    if (!ref || ref->ndim != 5 || ref->shape[2] == Tmax) return 0;
    int64_t n = ref->shape[2];
    if (n > Tmax)
        return aur__err(AUR_ESHAPE, "%s: the checkpoint's history %lld is longer than max_history_size %lld", ck->f->path,
                        (long long)n, (long long)Tmax);
    for (int i = 0; i < ck->n; i++) {
        aur__ckpt_entry *e = &ck->e[i];
        if ((strncmp(e->name, "encoder.surf_token_embeds.weights.", 34) && strncmp(e->name, "encoder.atmos_token_embeds.weights.", 35)) ||
            e->ndim != 5 || e->shape[2] != n)
            continue;
        float *old = aur__ckpt_read_f32(ck, e);
        int64_t D = e->shape[0], PP = e->shape[3] * e->shape[4];
        float *nw = (float *)aur__calloc(sizeof(float) * (size_t)(D * Tmax * PP), "a padded kernel");
        if (!old || !nw) {
            AUR_FREE(old);
            AUR_FREE(nw);
            return AUR_ENOMEM;
        }
        for (int64_t d = 0; d < D; d++) memcpy(nw + d * Tmax * PP, old + d * n * PP, sizeof(float) * (size_t)(n * PP));
        AUR_FREE(old);
        AUR_FREE(e->data);
        e->data = nw;
        e->src = NULL;
        e->shape[2] = Tmax;
    }
    return 0;
}

static int aur__aurora_adapt(aur_model *m, aur__ckpt *ck)
{
    aur__aurora *A = aur__A(m);
    static const char *const surf7[7] = {"2t", "10u", "10v", "msl", "lsm", "z", "slt"}, *const atmos5[5] = {"z", "u", "v", "t", "q"};
    int rc = aur__rename_keys(ck);
    /* the pretrained files' fused embeddings and heads (compat.py: _adapt_checkpoint_pretrained) */
    if (!rc) rc = aur__split_fused(ck, "encoder.surf_token_embeds.weight", "encoder.surf_token_embeds.weights.", "", surf7, 7, 0);
    if (!rc) rc = aur__split_fused(ck, "encoder.atmos_token_embeds.weight", "encoder.atmos_token_embeds.weights.", "", atmos5, 5, 0);
    if (!rc) rc = aur__split_fused(ck, "decoder.surf_head.weight", "decoder.surf_heads.", ".weight", surf7, 4, 1);
    if (!rc) rc = aur__split_fused(ck, "decoder.surf_head.bias", "decoder.surf_heads.", ".bias", surf7, 4, 1);
    if (!rc) rc = aur__split_fused(ck, "decoder.atmos_head.weight", "decoder.atmos_heads.", ".weight", atmos5, 5, 1);
    if (!rc) rc = aur__split_fused(ck, "decoder.atmos_head.bias", "decoder.atmos_heads.", ".bias", atmos5, 5, 1);
    if (!rc) rc = aur__pad_history(A, ck);
    return rc;
}

AURDEF int aur_aurora_load(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep)
{
    if (!aur__A(m)) return AUR_EINVAL;
    return aur__load_file(m, path, mode, rep, aur__aurora_adapt);
}

/* ======================================================================== */
/*                              Fine-tuning                                 */
/* ======================================================================== */

/* ==== fine-tuning: data checks ==== */

AURDEF aur_check_opts aur_check_defaults(void)
{
    aur_check_opts o = {10.0, 1e-3, 3.0, 0.1, 10.0, NULL, 0};
    return o;
}

/* Running sums over one variable in normalised units. */
typedef struct aur__moments {
    int64_t count, nonfinite, outliers;
    double sum, sumsq, max_abs_z;
} aur__moments;

static void aur__moments_add(aur__moments *s, const aur_real *x, int64_t n, double loc, double scale, double outlier_z)
{
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            s->nonfinite++;
            continue;
        }
        double z = ((double)x[i] - loc) / scale;
        s->count++;
        s->sum += z;
        s->sumsq += z * z;
        if (fabs(z) > s->max_abs_z) s->max_abs_z = fabs(z);
        if (fabs(z) > outlier_z) s->outliers++;
    }
}

static int aur__field_is_zero(const aur_real *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != 0) return 0;
    return 1;
}

static double aur__moments_mean(const aur__moments *s) { return s->count ? s->sum / (double)s->count : 0; }
static double aur__moments_std(const aur__moments *s)
{
    double m = aur__moments_mean(s);
    return s->count ? sqrt(fmax(0, s->sumsq / (double)s->count - m * m)) : 0;
}

/* Adds a finding to a variable's message ("; "-separated) and raises its severity. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void aur__finding(aur_var_check *v, aur_severity sev, const char *fmt, ...)
{
    size_t k = strlen(v->message);
    if (sev > v->severity) v->severity = sev;
    if (k && k + 2 < sizeof v->message) k += (size_t)snprintf(v->message + k, sizeof v->message - k, "; ");
    va_list ap;
    va_start(ap, fmt);
    if (k < sizeof v->message) vsnprintf(v->message + k, sizeof v->message - k, fmt, ap);
    va_end(ap);
}

/* Grades one variable's findings into its severity and message. */
static void aur__grade(aur_var_check *v, const aur_check_opts *o, int nan_ok)
{
    v->severity = AUR_CHECK_OK;
    v->message[0] = 0;
    if (!v->present) {
        if (v->used) aur__finding(v, AUR_CHECK_ERROR, "missing: the model needs it");
        return;
    }
    if (!v->used) aur__finding(v, AUR_CHECK_WARNING, "not used by the model");
    if (v->nonfinite && !nan_ok) aur__finding(v, AUR_CHECK_ERROR, "%lld NaN/Inf values", (long long)v->nonfinite);
    if (v->zero_fields) /* a static field of zeros is legitimate (a land-sea mask over open sea) */
        aur__finding(v, !strcmp(v->kind, "static") ? AUR_CHECK_WARNING : AUR_CHECK_ERROR, "%d of %d fields are all zero", v->zero_fields,
                     v->fields);
    if (!v->used) return;
    if (v->outliers)
        aur__finding(v, (double)v->outliers > o->max_outlier_frac * (double)v->count ? AUR_CHECK_ERROR : AUR_CHECK_WARNING,
                     "%lld values beyond %g sd (max %.3g)", (long long)v->outliers, o->outlier_z, v->max_abs_z);
    if (v->count && (fabs(v->mean) > o->max_abs_mean || v->std < o->min_std || v->std > o->max_std))
        aur__finding(v, AUR_CHECK_WARNING, "statistics do not fit: normalised mean %.3g, std %.3g", v->mean, v->std);
}

/* Counts the all-zero 2-D fields of a (..., H, W) tensor. */
static int aur__zero_fields(const aur_tensor *t, int64_t hw, int *fields)
{
    int zeros = 0;
    for (int64_t f = 0; f < t->numel / hw; f++) {
        zeros += aur__field_is_zero(aur_tensor_f32((aur_tensor *)t) + f * hw, hw);
        (*fields)++;
    }
    return zeros;
}

/* A check under way: the report's entries, and each entry's running sums
   (one per level for atmospheric variables), so that a series checked in
   chunks of steps gets the report of the whole. */
typedef struct aur__data_check {
    const aur__aurora *A;
    aur_check_opts o;
    aur_check_report r;
    aur__moments (*m)[AUR_MAX_LEVELS];
} aur__data_check;

static aur_var_check *aur__check_entry(aur_check_report *r, const char *name, const char *kind)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->vars[i].name, name) && !strcmp(r->vars[i].kind, kind)) return &r->vars[i];
    aur_var_check *v = &r->vars[r->n++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->kind = kind;
    return v;
}

static const char *const aur__check_kinds[3] = {"surf", "static", "atmos"};

/* The entries of the model's variables (used) and of a batch's (present). */
static int aur__check_begin(aur__data_check *k, const aur__aurora *A, const aur_batch *b, const aur_check_opts *opts)
{
    memset(k, 0, sizeof *k);
    k->A = A;
    k->o = opts ? *opts : aur_check_defaults();
    const aur_aurora_config *c = &A->cfg;
    int cap = c->surf_vars.n + c->static_vars.n + c->atmos_vars.n + b->surf_names.n + b->static_names.n + b->atmos_names.n;
    k->r.vars = (aur_var_check *)aur__calloc(sizeof(aur_var_check) * (size_t)(cap ? cap : 1), "a data-check report");
    k->m = (aur__moments(*)[AUR_MAX_LEVELS])aur__calloc(sizeof *k->m * (size_t)(cap ? cap : 1), "a data check's sums");
    if (!k->r.vars || !k->m) return AUR_FREE(k->r.vars), AUR_FREE(k->m), AUR_ENOMEM;
    const aur_var_list *model_lists[3] = {&c->surf_vars, &c->static_vars, &c->atmos_vars};
    const aur_var_list *batch_lists[3] = {&b->surf_names, &b->static_names, &b->atmos_names};
    for (int g = 0; g < 3; g++) {
        for (int i = 0; i < model_lists[g]->n; i++) aur__check_entry(&k->r, model_lists[g]->name[i], aur__check_kinds[g])->used = 1;
        for (int i = 0; i < batch_lists[g]->n; i++) aur__check_entry(&k->r, batch_lists[g]->name[i], aur__check_kinds[g])->present = 1;
    }
    return 0;
}

/* One variable's values into its sums: one set of statistics (surface, static) or one per level. */
static void aur__check_add_var(aur__data_check *k, const aur_batch *b, const aur_tensor *x, int group, aur_var_check *v)
{
    aur__moments *m = k->m[v - k->r.vars];
    int64_t hw = (int64_t)b->H * b->W, levels = group == 2 ? b->C : 1;
    double loc[AUR_MAX_LEVELS], scale[AUR_MAX_LEVELS];
    for (int c = 0; c < AUR_MAX_LEVELS; c++) loc[c] = 0, scale[c] = 1;
    int missing = !v->used ? 0 : group == 2 ? aur__atmos_stats(k->A, v->name, b->levels, b->C, loc, scale) : aur__surf_stats(k->A, v->name, loc, scale);
    if (missing) {
        if (group == 2) snprintf(v->message, sizeof v->message, "%.190s", aur_last_error());
        else snprintf(v->message, sizeof v->message, "no normalisation statistics: register them (aur_aurora_set_stats)");
        v->severity = AUR_CHECK_ERROR;
        if (group == 2) return;
    }
    v->zero_fields += aur__zero_fields(x, hw, &v->fields);
    const aur_real *data = aur_tensor_f32((aur_tensor *)x);
    for (int c = 0; c < levels; c++)
        for (int64_t f = 0; f < x->numel / hw / levels; f++) aur__moments_add(&m[c], data + (f * levels + c) * hw, hw, loc[c], scale[c], k->o.outlier_z);
}

/* A batch's (or a chunk of a series') values; the static fields only when asked (a series' chunks share them). */
static void aur__check_add(aur__data_check *k, const aur_batch *b, int statics)
{
    const aur_var_list *lists[3] = {&b->surf_names, &b->static_names, &b->atmos_names};
    aur_tensor *const *tensors[3] = {b->surf, b->statics, b->atmos};
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < lists[g]->n && (g != 1 || statics); i++)
            aur__check_add_var(k, b, tensors[g][i], g, aur__check_entry(&k->r, lists[g]->name[i], aur__check_kinds[g]));
}

/* The sums into each entry's figures (an atmospheric variable's mean and std
   are those of the level that fits its statistics worst), graded. */
static int aur__check_end(aur__data_check *k, int C, aur_check_report *rep)
{
    aur_check_report *r = &k->r;
    int first_error = -1;
    for (int i = 0; i < r->n; i++) {
        aur_var_check *v = &r->vars[i];
        double worst = -1;
        for (int c = 0; c < (strcmp(v->kind, "atmos") ? 1 : C); c++) {
            const aur__moments *s = &k->m[i][c];
            double mean = aur__moments_mean(s), sd = aur__moments_std(s), misfit = fabs(mean) + fabs(log(fmax(sd, 1e-12)));
            if (misfit > worst) worst = misfit, v->mean = mean, v->std = sd;
            v->count += s->count, v->nonfinite += s->nonfinite, v->outliers += s->outliers;
            v->max_abs_z = fmax(v->max_abs_z, s->max_abs_z);
        }
        if (v->severity != AUR_CHECK_ERROR) /* a statistics lookup failure is already graded */
            aur__grade(v, &k->o, k->o.nan_ok && aur_name_matches(k->o.nan_ok, v->name));
        r->errors += v->severity == AUR_CHECK_ERROR;
        r->warnings += v->severity == AUR_CHECK_WARNING;
        if (v->severity == AUR_CHECK_ERROR && first_error < 0) first_error = i;
    }
    AUR_FREE(k->m);
    int rc = 0;
    if (first_error >= 0)
        rc = aur__err(AUR_EFORMAT, "data check: %s variable '%s': %s%s", r->vars[first_error].kind, r->vars[first_error].name,
                      r->vars[first_error].message, r->errors > 1 ? " (and more: see the report)" : "");
    if (rep) *rep = *r;
    else AUR_FREE(r->vars);
    return rc;
}

AURDEF int aur_aurora_check_batch(const aur_model *m, const aur_batch *b, const aur_check_opts *opts, aur_check_report *rep)
{
    aur__aurora *A = aur__A(m);
    if (!A || !b) return AUR_EINVAL;
    aur__data_check k;
    int rc = aur__check_begin(&k, A, b, opts);
    if (rc) return rc;
    aur__check_add(&k, b, 1);
    return aur__check_end(&k, b->C, rep);
}

#define AUR__CHECK_CHUNK_BYTES ((int64_t)256 << 20) /* a series is checked this much at a time */

AURDEF int aur_aurora_check_series(const aur_model *m, aur_series *s, const aur_check_opts *opts, aur_check_report *rep)
{
    aur__aurora *A = aur__A(m);
    if (!A || !s) return AUR_EINVAL;
    int T = aur_series_length(s), rc;
    aur_batch *chunk = aur_series_read(s, 0, 1, 0);
    if (!chunk) return AUR_EFORMAT;
    int64_t step_bytes = (int64_t)sizeof(aur_real) * chunk->B * chunk->H * chunk->W * (chunk->surf_names.n + (int64_t)chunk->C * chunk->atmos_names.n);
    aur__data_check k;
    rc = aur__check_begin(&k, A, chunk, opts);
    int steps = k.o.chunk_steps > 0 ? k.o.chunk_steps : (int)(step_bytes > 0 ? AUR__CHECK_CHUNK_BYTES / step_bytes : T);
    steps = steps < 1 ? 1 : steps > T ? T : steps;
    for (int start = 0; start < T && !rc; start += steps) {
        int n = T - start < steps ? T - start : steps;
        if (chunk->T != n) {
            aur_batch_free(chunk);
            chunk = aur_series_window_alloc(s, n, 0);
        }
        rc = chunk ? aur_series_read_into(s, start, 0, chunk) : AUR_ENOMEM;
        if (!rc) aur__check_add(&k, chunk, start == 0);
    }
    int C = chunk ? chunk->C : 0;
    aur_batch_free(chunk);
    if (rc) {
        AUR_FREE(k.m);
        AUR_FREE(k.r.vars);
        return rc;
    }
    return aur__check_end(&k, C, rep);
}

AURDEF void aur_check_report_print(const aur_check_report *r, FILE *out)
{
    static const char *sev[3] = {"ok", "WARNING", "ERROR"};
    fprintf(out, "%-7s %-16s %7s %9s %9s %9s  %s\n", "kind", "variable", "status", "mean", "std", "max|z|", "findings");
    for (int i = 0; i < r->n; i++) {
        const aur_var_check *v = &r->vars[i];
        if (v->present && v->used && v->count)
            fprintf(out, "%-7s %-16s %7s %9.3g %9.3g %9.3g  %s\n", v->kind, v->name, sev[v->severity], v->mean, v->std, v->max_abs_z,
                    v->message);
        else
            fprintf(out, "%-7s %-16s %7s %9s %9s %9s  %s\n", v->kind, v->name, sev[v->severity], "-", "-", "-", v->message);
    }
    fprintf(out, "data check: %d variables, %d errors, %d warnings (mean and std in normalised units)\n", r->n, r->errors,
            r->warnings);
}

AURDEF void aur_check_report_free(aur_check_report *r)
{
    if (!r) return;
    AUR_FREE(r->vars);
    memset(r, 0, sizeof *r);
}

/* ==== fine-tuning: new variables, groups, summary ==== */

AURDEF int aur_model_fill(aur_model *m, const char *patterns, double value)
{
    int hits = 0;
    for (int i = 0; i < m->n; i++) {
        aur_tensor *p = m->params[i];
        if (!aur_name_matches(patterns, p->name)) continue;
        aur_real *v = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(p->numel ? p->numel : 1), "a fill");
        if (!v) return AUR_ENOMEM;
        for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)value;
        int rc = aur_tensor_set(p, v, p->numel);
        AUR_FREE(v);
        if (rc) return rc;
        hits++;
    }
    return hits;
}

/* The parameters that exist once per variable: where a new variable lives. */
#define AUR__PER_VAR_PARAMS "encoder.*_token_embeds.weights.*,decoder.*_heads.*"

AURDEF char *aur_aurora_new_var_params(const aur_model *m, const aur_load_report *rep)
{
    size_t size = 1, k = 0;
    for (int i = 0; rep && i < rep->n_missing; i++) size += strlen(rep->missing[i]) + 1;
    char *out = (char *)aur__malloc(size, "a name list");
    if (!out) return NULL;
    out[0] = 0;
    for (int i = 0; rep && i < rep->n_missing; i++) {
        const char *n = rep->missing[i];
        if (!aur_name_matches(AUR__PER_VAR_PARAMS, n) || !aur_model_param(m, n)) continue;
        k += (size_t)snprintf(out + k, size - k, k ? ",%s" : "%s", n);
    }
    return out;
}


/* ==== fine-tuning: exploding gradients ==== */

AURDEF void aur_grad_alarm_init(aur_grad_alarm *a, int window, double z, int skip)
{
    memset(a, 0, sizeof *a);
    a->window = window < 2 ? 2 : window > AUR_ALARM_WINDOW ? AUR_ALARM_WINDOW : window;
    a->z = z > 0 ? z : 6;
    a->min_history = a->window < 10 ? a->window : 10;
    a->skip = skip;
}

/* z-score of log(norm) against a series' window, or 0 while it is short. */
static double aur__alarm_z(const aur_grad_alarm *a, int s, double norm)
{
    int n = a->count[s] < a->window ? a->count[s] : a->window;
    if (n < a->min_history || !(norm > 0)) return 0;
    double sum = 0, sumsq = 0;
    for (int i = 0; i < n; i++) sum += a->hist[s][i], sumsq += a->hist[s][i] * a->hist[s][i];
    double mean = sum / n, sd = sqrt(fmax(0, sumsq / n - mean * mean));
    return (log(norm) - mean) / fmax(sd, 0.05); /* a floor: a constant history must not make every wiggle an alarm */
}

static void aur__alarm_push(aur_grad_alarm *a, int s, double norm)
{
    if (!(norm > 0) || !isfinite(norm)) return;
    a->hist[s][a->count[s] % a->window] = log(norm);
    a->count[s]++;
}

AURDEF int aur_grad_alarm_check(aur_grad_alarm *a, double total, const double *group_norms, const char *const *group_names,
                                int n_groups, char *msg, size_t size)
{
    if (n_groups > AUR_ALARM_GROUPS) n_groups = AUR_ALARM_GROUPS;
    int worst = -1;
    double worst_z = 0;
    for (int g = 0; g < n_groups; g++) {
        double z = isfinite(group_norms[g]) ? aur__alarm_z(a, g + 1, group_norms[g]) : INFINITY;
        if (z > worst_z) worst_z = z, worst = g;
    }
    double zt = isfinite(total) ? aur__alarm_z(a, 0, total) : INFINITY;
    int alarm = zt > a->z || worst_z > a->z;
    if (alarm) {
        a->alarms++;
        if (msg)
            snprintf(msg, size, "gradient norm %.4g (z %.1f)%s%s%s%s", total, zt, worst >= 0 ? "; it started in group '" : "",
                     worst >= 0 ? group_names[worst] : "", worst >= 0 ? "'" : "", a->skip ? "; update skipped" : "");
        return 1;
    }
    aur__alarm_push(a, 0, total);
    for (int g = 0; g < n_groups; g++) aur__alarm_push(a, g + 1, group_norms[g]);
    if (msg && size) msg[0] = 0;
    return 0;
}

/* ==== fine-tuning: windows of a series ==== */

static void aur__copy_steps(const aur_tensor *src, aur_tensor *dst, int B, int T_src, int start, int T_dst, int64_t per_step)
{
    for (int b = 0; b < B; b++)
        memcpy((aur_real *)dst->data + (int64_t)b * T_dst * per_step, (const aur_real *)src->data + ((int64_t)b * T_src + start) * per_step,
               sizeof(aur_real) * (size_t)(T_dst * per_step));
}

AURDEF aur_batch *aur_batch_window(const aur_batch *s, int start, int history, double step_seconds)
{
    if (!s || history < 1 || start < 0 || start + history > s->T) {
        aur__err(AUR_EINVAL, "window of %d steps at step %d: the series has %d steps", history, start, s ? s->T : 0);
        return NULL;
    }
    aur_batch *w = aur_batch_create(s->B, history, s->C, s->H, s->W, &s->surf_names, &s->static_names, &s->atmos_names);
    if (!w) return NULL;
    int64_t hw = (int64_t)s->H * s->W;
    if (s->lat_2d || s->lon_2d) { /* curvilinear grids: coordinates per cell */
        AUR_FREE(w->lat);
        AUR_FREE(w->lon);
        w->lat = (float *)aur__malloc(sizeof(float) * (size_t)hw, "latitudes");
        w->lon = (float *)aur__malloc(sizeof(float) * (size_t)hw, "longitudes");
        w->lat_2d = s->lat_2d, w->lon_2d = s->lon_2d;
        if (!w->lat || !w->lon) {
            aur_batch_free(w);
            return NULL;
        }
    }
    for (int i = 0; i < s->surf_names.n; i++) aur__copy_steps(s->surf[i], w->surf[i], s->B, s->T, start, history, hw);
    for (int i = 0; i < s->atmos_names.n; i++) aur__copy_steps(s->atmos[i], w->atmos[i], s->B, s->T, start, history, hw * s->C);
    for (int i = 0; i < s->static_names.n; i++) memcpy(w->statics[i]->data, s->statics[i]->data, sizeof(aur_real) * (size_t)hw);
    memcpy(w->lat, s->lat, sizeof(float) * (size_t)(s->lat_2d ? hw : s->H));
    memcpy(w->lon, s->lon, sizeof(float) * (size_t)(s->lon_2d ? hw : s->W));
    memcpy(w->levels, s->levels, sizeof w->levels);
    w->step_seconds = s->step_seconds;
    for (int b = 0; b < s->B; b++) w->time[b] = s->time[b] - (double)(s->T - start - history) * step_seconds;
    return w;
}

/* ==== fine-tuning: a loader that reads the next windows while the step runs ====
   The order of the windows is a function the caller gives (the trainer's:
   its shuffle of seed and epoch), so the loader knows which window step i
   needs before it is asked and a background thread reads it, as PyTorch's
   DataLoader workers with prefetch_factor do. A window is read into one of
   depth + 1 buffers, reused (pinned host memory for a model on the GPU),
   each its input (history steps) and targets (one step each) as the
   rollout uses them: no copy between reading and the forward. */

/* ---- one window ---- */

AURDEF void aur_window_free(aur_window *w)
{
    if (!w) return;
    aur_batch_free(w->input);
    for (int k = 0; k < w->rollout; k++) aur_batch_free(w->target[k]);
    memset(w, 0, sizeof *w);
}

/* A batch buffer of `steps` steps for series s: b itself when it fits, else a new one. */
static int aur__window_buffer(aur_series *s, aur_batch **b, int steps, int pinned)
{
    if (*b && (*b)->T == steps) return 0; /* aur_series_read_into checks the rest; a misfit comes back as AUR_ESHAPE */
    aur_batch_free(*b);
    *b = aur_series_window_alloc(s, steps, pinned);
    return *b ? 0 : AUR_ENOMEM;
}

/* Steps [start, start + steps) into *b, reallocated once if it was made for another layout. */
static int aur__window_part(aur_series *s, aur_batch **b, int start, int steps, double step_seconds, int pinned)
{
    int rc = aur__window_buffer(s, b, steps, pinned);
    if (!rc) rc = aur_series_read_into(s, start, step_seconds, *b);
    if (rc == AUR_ESHAPE) {
        aur_batch_free(*b);
        *b = NULL;
        rc = aur__window_buffer(s, b, steps, pinned);
        if (!rc) rc = aur_series_read_into(s, start, step_seconds, *b);
    }
    return rc;
}

AURDEF int aur_window_read(aur_series *s, aur_window_ref ref, int history, int rollout, double step_seconds, int pinned, aur_window *w)
{
    if (rollout < 1 || rollout > AUR_MAX_ROLLOUT || history < 1)
        return aur__err(AUR_EINVAL, "aur_window_read: history %d, rollout %d (1..%d)", history, rollout, AUR_MAX_ROLLOUT);
    if (ref.start < 0 || ref.start + history + rollout > aur_series_length(s))
        return aur__err(AUR_EINVAL, "%s: a window of %d + %d steps at step %d: the series has %d steps", aur_series_path(s), history, rollout,
                        ref.start, aur_series_length(s));
    for (int k = rollout; k < w->rollout; k++) aur_batch_free(w->target[k]), w->target[k] = NULL;
    w->ref = ref, w->rollout = rollout;
    int rc = aur__window_part(s, &w->input, ref.start, history, step_seconds, pinned);
    for (int k = 0; k < rollout && !rc; k++) rc = aur__window_part(s, &w->target[k], ref.start + history + k, 1, step_seconds, pinned);
    return rc;
}

/* ---- the loader ---- */

#define AUR__LOADER_OPEN 4 /* series kept open: the windows of a shuffled epoch jump between files */

typedef struct aur__slot {
    int64_t item;   /* its window's position in the order */
    int state;      /* AUR__FREE, AUR__READING, AUR__READY, AUR__IN_USE */
    unsigned gen;   /* the loader's generation it was read for (a jump discards older reads) */
    int rc;
    char err[1024];
    aur_window w;
} aur__slot;

enum { AUR__FREE, AUR__READING, AUR__READY, AUR__IN_USE };

struct aur_loader {
    char **const *paths;
    const int *n_paths;
    int n_series;
    aur_window_order order;
    void *ctx;
    aur_loader_opts o;
    aur_series *open[AUR__LOADER_OPEN]; /* the series read last, least recent first (only the reading thread touches them) */
    int open_id[AUR__LOADER_OPEN], n_open;
    aur__slot *slots;
    int n_slots;
    int64_t next_read, next_take; /* the window the thread reads next, and the one aur_loader_get expects */
    unsigned gen;
    int failed, stop, threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    aur_loader_stats st;
};

/* Series i, open: from the few kept open, or opened now (closing the least recent). */
static aur_series *aur__loader_series(aur_loader *ld, int i)
{
    for (int k = 0; k < ld->n_open; k++)
        if (ld->open_id[k] == i) {
            aur_series *s = ld->open[k];
            memmove(ld->open + k, ld->open + k + 1, sizeof ld->open[0] * (size_t)(ld->n_open - 1 - k));
            memmove(ld->open_id + k, ld->open_id + k + 1, sizeof ld->open_id[0] * (size_t)(ld->n_open - 1 - k));
            ld->open[ld->n_open - 1] = s, ld->open_id[ld->n_open - 1] = i;
            return s;
        }
    aur_series *s = aur_series_open((const char *const *)ld->paths[i], ld->n_paths[i], ld->o.renames, NULL);
    if (!s) return NULL;
    if (ld->n_open == AUR__LOADER_OPEN) {
        aur_series_close(ld->open[0]);
        memmove(ld->open, ld->open + 1, sizeof ld->open[0] * (size_t)(ld->n_open - 1));
        memmove(ld->open_id, ld->open_id + 1, sizeof ld->open_id[0] * (size_t)(ld->n_open - 1));
        ld->n_open--;
    }
    ld->open[ld->n_open] = s, ld->open_id[ld->n_open++] = i;
    return s;
}

/* Reads window `item` of the order into a slot (no lock held: the slot is the reader's); the seconds it took. */
static double aur__loader_fill(aur_loader *ld, aur__slot *sl, int64_t item)
{
    double t0 = aur__wall();
    aur_window_ref ref = ld->order(ld->ctx, item);
    aur_series *s = ref.series >= 0 && ref.series < ld->n_series ? aur__loader_series(ld, ref.series) : NULL;
    if (!s && (ref.series < 0 || ref.series >= ld->n_series)) aur__err(AUR_EINVAL, "window %lld: series %d of %d", (long long)item, ref.series, ld->n_series);
    sl->rc = s ? aur_window_read(s, ref, ld->o.history, ld->o.rollout, ld->o.step_seconds, ld->o.pinned, &sl->w) : AUR_EFORMAT;
    if (sl->rc) snprintf(sl->err, sizeof sl->err, "%.1000s", aur_last_error());
    return aur__wall() - t0;
}

static void aur__loader_count(aur_loader *ld, double seconds)
{
    ld->st.read_seconds += seconds;
    ld->st.windows_read++;
}

/* A free slot, or NULL. */
static aur__slot *aur__loader_free_slot(aur_loader *ld)
{
    for (int i = 0; i < ld->n_slots; i++)
        if (ld->slots[i].state == AUR__FREE) return &ld->slots[i];
    return NULL;
}

static void *aur__loader_main(void *arg)
{
    aur_loader *ld = (aur_loader *)arg;
    pthread_mutex_lock(&ld->mu);
    while (!ld->stop) {
        aur__slot *sl = ld->failed ? NULL : aur__loader_free_slot(ld);
        if (!sl) {
            pthread_cond_wait(&ld->cv, &ld->mu);
            continue;
        }
        int64_t item = ld->next_read++;
        unsigned gen = ld->gen;
        sl->state = AUR__READING, sl->item = item, sl->gen = gen;
        pthread_mutex_unlock(&ld->mu);
        double seconds = aur__loader_fill(ld, sl, item);
        pthread_mutex_lock(&ld->mu);
        aur__loader_count(ld, seconds);
        if (sl->gen != ld->gen) sl->state = AUR__FREE; /* the caller jumped elsewhere meanwhile */
        else {
            sl->state = AUR__READY;
            if (sl->rc) ld->failed = 1; /* read no further: the caller stops at this window */
        }
        pthread_cond_broadcast(&ld->cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

AURDEF aur_loader *aur_loader_create(char **const *paths, const int *n_paths, int n_series, aur_window_order order, void *ctx,
                                     const aur_loader_opts *o)
{
    if (!paths || !n_paths || n_series < 1 || !order || !o || o->depth < 0 || o->depth > 64)
        return aur__err(AUR_EINVAL, "aur_loader_create: no series or order, or a depth outside 0..64"), (aur_loader *)NULL;
    aur_loader *ld = (aur_loader *)aur__calloc(sizeof *ld, "a loader");
    if (!ld) return NULL;
    ld->paths = paths, ld->n_paths = n_paths, ld->n_series = n_series, ld->order = order, ld->ctx = ctx, ld->o = *o;
    ld->n_slots = o->depth + 1;
    ld->slots = (aur__slot *)aur__calloc(sizeof *ld->slots * (size_t)ld->n_slots, "the loader's windows");
    ld->next_take = -1;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv, NULL);
    ld->failed = 1; /* nothing to read until the first aur_loader_get says where to start */
    ld->threaded = ld->slots && o->depth > 0 && !pthread_create(&ld->thread, NULL, aur__loader_main, ld);
    if (!ld->slots || (o->depth > 0 && !ld->threaded)) {
        aur__err(AUR_ENOMEM, "aur_loader_create: %s", ld->slots ? "cannot start the reading thread" : "out of memory");
        aur_loader_free(ld);
        return NULL;
    }
    return ld;
}

/* Starts reading at item: the windows read ahead for another position are dropped. */
static void aur__loader_jump(aur_loader *ld, int64_t item)
{
    ld->gen++;
    for (int i = 0; i < ld->n_slots; i++)
        if (ld->slots[i].state == AUR__READY) ld->slots[i].state = AUR__FREE;
    ld->next_read = item;
    ld->failed = 0;
}

static aur__slot *aur__loader_ready(aur_loader *ld, int64_t item)
{
    for (int i = 0; i < ld->n_slots; i++)
        if (ld->slots[i].state == AUR__READY && ld->slots[i].item == item && ld->slots[i].gen == ld->gen) return &ld->slots[i];
    return NULL;
}

AURDEF const aur_window *aur_loader_get(aur_loader *ld, int64_t item)
{
    if (!ld || item < 0) return aur__err(AUR_EINVAL, "aur_loader_get: no loader, or window %lld", (long long)item), (const aur_window *)NULL;
    double t0 = aur__wall();
    pthread_mutex_lock(&ld->mu);
    for (int i = 0; i < ld->n_slots; i++)
        if (ld->slots[i].state == AUR__IN_USE) ld->slots[i].state = AUR__FREE; /* the previous window is done with */
    if (item != ld->next_take) aur__loader_jump(ld, item);
    ld->next_take = item + 1;
    aur__slot *sl = NULL;
    if (!ld->threaded) { /* depth 0: read it here, now */
        sl = &ld->slots[0];
        sl->item = item, sl->gen = ld->gen;
        aur__loader_count(ld, aur__loader_fill(ld, sl, item));
    } else {
        pthread_cond_broadcast(&ld->cv);
        while (!(sl = aur__loader_ready(ld, item))) pthread_cond_wait(&ld->cv, &ld->mu);
    }
    sl->state = AUR__IN_USE;
    int rc = sl->rc;
    if (rc) {
        ld->next_take = -1; /* asking again reads it again */
        aur__err(rc, "%s", sl->err);
    }
    ld->st.wait_seconds += aur__wall() - t0;
    ld->st.windows_taken++;
    pthread_mutex_unlock(&ld->mu);
    return rc ? NULL : &sl->w;
}

AURDEF void aur_loader_stats_get(aur_loader *ld, aur_loader_stats *st)
{
    pthread_mutex_lock(&ld->mu);
    *st = ld->st;
    pthread_mutex_unlock(&ld->mu);
}

AURDEF void aur_loader_free(aur_loader *ld)
{
    if (!ld) return;
    if (ld->threaded) {
        pthread_mutex_lock(&ld->mu);
        ld->stop = 1;
        pthread_cond_broadcast(&ld->cv);
        pthread_mutex_unlock(&ld->mu);
        pthread_join(ld->thread, NULL);
    }
    for (int i = 0; ld->slots && i < ld->n_slots; i++) aur_window_free(&ld->slots[i].w);
    for (int k = 0; k < ld->n_open; k++) aur_series_close(ld->open[k]);
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv);
    AUR_FREE(ld->slots);
    AUR_FREE(ld);
}

/* ==== fine-tuning: memory planning ====
   The activations are not estimated: the plan runs the training step itself
   on the meta device (shapes only, nothing computed), where the tape keeps
   the same account it keeps on a GPU, so the figure is the step's own peak,
   to the byte, for any architecture, grid and checkpointing choice. */

/* Adafactor's state: a row and a column factor for matrices (over the last
   two dims), a full variance for vectors. */
static double aur__adafactor_floats(const aur_tensor *p)
{
    if (p->ndim < 2) return (double)p->numel;
    double r = (double)p->shape[p->ndim - 2], c = (double)p->shape[p->ndim - 1];
    return (double)p->numel / (r * c) * (r + c);
}

/* A batch of the given sizes on the meta device, on a regular global grid
   (the coordinates shape the encodings' values, never their sizes). */
static aur_batch *aur__plan_batch(const aur_aurora_config *c, int B, int T, int C, int H, int W)
{
    aur_batch *b = aur__batch_create_on(AUR_META, B, T, C, H, W, &c->surf_vars, &c->static_vars, &c->atmos_vars);
    if (!b) return NULL;
    for (int i = 0; i < H; i++) b->lat[i] = (float)(90.0 - 180.0 * i / (H > 1 ? H - 1 : 1));
    for (int j = 0; j < W; j++) b->lon[j] = (float)(360.0 * j / W);
    for (int k = 0; k < C; k++) b->levels[k] = 1000.0 - 950.0 * k / (C > 1 ? C - 1 : 1);
    for (int i = 0; i < B; i++) b->time[i] = 1577836800.0; /* 2020-01-01 00 UTC */
    return b;
}

/* Statistics of loc 0 and scale 1 where the model has none (a new variable,
   an unusual level): the meta device computes nothing, so only their
   presence matters, and the plan never fails for want of them. */
static int aur__plan_stats(aur_model *m, const aur_aurora_config *c, const aur_batch *b)
{
    const aur_var_list *sets[3] = {&c->surf_vars, &c->static_vars, &c->atmos_vars};
    char key[AUR_NAME_LEN + 32], lv[32];
    double loc, scale;
    int rc = 0;
    for (int s = 0; s < 3 && !rc; s++)
        for (int v = 0; v < sets[s]->n && !rc; v++)
            for (int k = 0; k < (s == 2 ? b->C : 1) && !rc; k++) {
                snprintf(key, sizeof key, "%s", sets[s]->name[v]);
                if (s == 2) aur_level_to_str(b->levels[k], lv, sizeof lv), snprintf(key, sizeof key, "%s_%s", sets[s]->name[v], lv);
                if (aur_aurora_get_stats(m, key, &loc, &scale)) rc = aur_aurora_set_stats(m, key, 0, 1);
            }
    return rc;
}

/* The device bytes of one training step (forward, loss, backward) of m at these sizes. */
static int aur__plan_step(aur_model *m, const aur_aurora_config *c, int B, int T, int C, int H, int W, double *bytes)
{
    aur_batch *in = aur__plan_batch(c, B, T, C, H, W), *target = aur__plan_batch(c, B, 1, C, H, W);
    aur_tape *t = aur_tape_create();
    int rc = in && target && t ? 0 : AUR_ENOMEM;
    if (!rc) rc = aur__plan_stats(m, c, in);
    if (!rc) {
        aur_batch *pred = aur_aurora_forward(m, t, in);
        rc = pred ? aur_backward(t, aur_aurora_loss(m, t, pred, target)) : AUR_EINVAL;
        *bytes = (double)t->device_peak[AUR_META];
    }
    if (rc) aur__err(rc, "memory plan: the step at B %d T %d C %d %d x %d failed: %s", B, T, C, H, W, aur__errmsg);
    aur_tape_free(t);
    aur_batch_free(in);
    aur_batch_free(target);
    return rc;
}

AURDEF int aur_aurora_memory_plan(const aur_aurora_config *cfg, int B, int T, int C, int H, int W, const aur_memory_choice *ch,
                                  aur_memory_plan *out)
{
    if (B < 1 || T < 1 || C < 0 || C > AUR_MAX_LEVELS || H < 1 || W < 1 || !ch || ch->trainable_fraction < 0 || ch->trainable_fraction > 1)
        return aur__err(AUR_EINVAL, "memory plan: sizes B %d T %d C %d (at most %d) H %d W %d and a trainable fraction in [0, 1] are needed", B,
                        T, C, AUR_MAX_LEVELS, H, W);
    aur_aurora_config c = *cfg;
    c.checkpoint = ch->checkpoint;
    c.autocast = ch->autocast || ch->pure_bf16; /* the backbone's products, as the trainer runs them */
    aur_model *m = aur_aurora_create(&c, AUR_META, 1);
    if (!m) return AUR_EINVAL; /* the reason is in aur_last_error() */
    double n = 0, ada = 0, act = 0;
    for (int i = 0; i < m->n; i++)
        if (!m->params[i]->is_buffer) n += (double)m->params[i]->numel, ada += aur__adafactor_floats(m->params[i]);
    /* every parameter trains here: LoRA's adapters on every linear layer keep the same activations */
    int rc = aur__plan_step(m, &c, B, T, C, H, W, &act);
    aur_model_free(m);
    if (rc) return rc;
    double f = ch->trainable_fraction, wbytes = sizeof(aur_real); /* pure BF16 rounds F32 weights: still 4 bytes each */
    memset(out, 0, sizeof *out);
    out->params = n * wbytes;
    out->grads = n * f * wbytes;
    out->optimiser = (ch->optimiser == AUR_ADAFACTOR ? ada : 2 * n) * f * wbytes;
    out->activations = act;
    if (ch->offload_optimiser) out->host = out->optimiser, out->optimiser = 0;
    out->total = out->params + out->grads + out->optimiser + out->activations;
    return 0;
}

/* ==== plot: PNG line charts and maps for training logs ==== */
/* stb_image_write (Debian: libstb-dev) when it is there; without it the plot
   calls return AUR_EUNSUPPORTED. Define AUR_NO_PNG to leave it out. */
#if !defined(AUR_NO_PNG) && defined(__has_include)
#if !__has_include(<stb/stb_image_write.h>) || !__has_include(<stb/stb_easy_font.h>)
#define AUR_NO_PNG
#endif
#endif
#ifndef AUR_NO_PNG
#if defined(__GNUC__)
/* The stb headers warn under -Wall -Wextra when they are not in a system include path (unused static
   functions, C-style aggregate initialisers); silence just those, just for them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#include <stb/stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

#ifndef AUR_NO_PNG

#define AUR__PLOT_MAXDIM 16384 /* per image side; keeps w*h*3 far from int overflow */
#define AUR__PLOT_PAD 10       /* outer margin in pixels */
#define AUR__PLOT_MAXTICK 32

/* tab10 minus its last two: distinct, colour-blind tolerable, and familiar from matplotlib. */
static const unsigned char aur__plot_pal[8][3] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                                  {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}};
/* viridis and RdBu_r sampled at 9 evenly spaced points; linear interpolation between them is visually exact. */
static const unsigned char aur__plot_viridis[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                                                      {44, 113, 142}, {33, 144, 141}, {39, 173, 129},
                                                      {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
static const unsigned char aur__plot_rdbu[9][3] = {{5, 48, 97},     {33, 102, 172},  {67, 147, 195},
                                                   {146, 197, 222}, {247, 247, 247}, {244, 165, 130},
                                                   {214, 96, 77},   {178, 24, 43},   {103, 0, 31}};
static const unsigned char aur__plot_ink[3] = {40, 40, 40}, aur__plot_edge[3] = {110, 110, 110};
static const unsigned char aur__plot_grid[3] = {226, 226, 226}, aur__plot_minor[3] = {243, 243, 243};
static const unsigned char aur__plot_white[3] = {255, 255, 255}, aur__plot_nan[3] = {128, 128, 128};

/* An RGB image, a coverage mask for anti-aliased lines, and a clip rectangle [cx0,cx1) x [cy0,cy1) that
   every primitive respects (that is how data lines stay inside the plot area). */
typedef struct aur__plot_img {
    unsigned char *px, *cov;
    int w, h, cx0, cy0, cx1, cy1;
} aur__plot_img;

static void aur__plot_clip(aur__plot_img *im, int x0, int y0, int x1, int y1)
{
    im->cx0 = x0 < 0 ? 0 : x0, im->cx1 = x1 > im->w ? im->w : x1;
    im->cy0 = y0 < 0 ? 0 : y0, im->cy1 = y1 > im->h ? im->h : y1;
}

static void aur__plot_rect(aur__plot_img *im, int x0, int y0, int x1, int y1, const unsigned char *rgb)
{
    int x, y;
    x0 = x0 < im->cx0 ? im->cx0 : x0, x1 = x1 > im->cx1 ? im->cx1 : x1;
    y0 = y0 < im->cy0 ? im->cy0 : y0, y1 = y1 > im->cy1 ? im->cy1 : y1;
    for (y = y0; y < y1; y++)
        for (x = x0; x < x1; x++) memcpy(im->px + 3 * ((size_t)y * im->w + x), rgb, 3);
}

/* Clamps before converting: casting an out-of-range double to int is undefined. */
static int aur__plot_clampi(double v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : (int)v; }

/* Anti-aliased segment of width lw into the coverage mask: each pixel near the segment gets coverage from
   its distance to it. Slower than Wu's algorithm but gives round joins and caps for free, and taking the
   max (not the sum) over a series means overlapping segments of a dense series do not darken. */
static void aur__plot_line(aur__plot_img *im, double ax, double ay, double bx, double by, double lw)
{
    double r = 0.5 * lw, dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    int x, y, x0, y0, x1, y1;
    if (!isfinite(ax + ay + bx + by)) return;
    x0 = aur__plot_clampi(fmin(ax, bx) - r - 1, im->cx0, im->cx1);
    x1 = aur__plot_clampi(fmax(ax, bx) + r + 2, im->cx0, im->cx1);
    y0 = aur__plot_clampi(fmin(ay, by) - r - 1, im->cy0, im->cy1);
    y1 = aur__plot_clampi(fmax(ay, by) + r + 2, im->cy0, im->cy1);
    for (y = y0; y < y1; y++) {
        for (x = x0; x < x1; x++) {
            double px = x + 0.5 - ax, py = y + 0.5 - ay, t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            double ex, ey, a;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            ex = px - t * dx, ey = py - t * dy;
            a = r + 0.5 - sqrt(ex * ex + ey * ey);
            if (a > 0) {
                unsigned char c = (unsigned char)(a >= 1 ? 255 : 255 * a), *m = im->cov + (size_t)y * im->w + x;
                if (c > *m) *m = c;
            }
        }
    }
}

/* Blends the accumulated coverage mask (inside the clip) in one colour and clears it for the next series. */
static void aur__plot_flush(aur__plot_img *im, const unsigned char *rgb)
{
    int x, y, k;
    for (y = im->cy0; y < im->cy1; y++) {
        for (x = im->cx0; x < im->cx1; x++) {
            size_t i = (size_t)y * im->w + x;
            int a = im->cov[i];
            if (!a) continue;
            for (k = 0; k < 3; k++)
                im->px[3 * i + k] = (unsigned char)((im->px[3 * i + k] * (255 - a) + rgb[k] * a) / 255);
            im->cov[i] = 0;
        }
    }
}

/* stb_easy_font takes a mutable char* and indexes a table by (c - 32), so feed it one sanitised char at a
   time: bytes outside printable ASCII would read out of bounds. */
static char aur__plot_ch(char c) { return c >= 32 && c < 127 ? c : '?'; }

static int aur__plot_textw(const char *s, int sc)
{
    char b[2] = {0, 0};
    int w = 0;
    for (; s && *s; s++) b[0] = aur__plot_ch(*s), w += stb_easy_font_width(b);
    return (w > 0 ? w - 1 : 0) * sc; /* the last advance includes a blank column */
}

/* Text with its top-left corner at (x, y), each font pixel an sc x sc block; cap height is 7*sc. The font
   emits axis-aligned quads of 4 vertices x 16 bytes (x, y, z floats, 4 colour bytes), so vertices 0 and 2
   are opposite corners: rasterise each quad as a filled rectangle. */
static void aur__plot_text(aur__plot_img *im, int x, int y, const char *s, int sc, const unsigned char *rgb)
{
    char b[2] = {0, 0};
    float vb[64 * 16]; /* one glyph is at most 11 quads */
    int q, n;
    for (; s && *s; s++) {
        b[0] = aur__plot_ch(*s);
        n = stb_easy_font_print(0, 0, b, NULL, vb, (int)sizeof vb);
        for (q = 0; q < n; q++) {
            const float *v = vb + 16 * q;
            aur__plot_rect(im, x + (int)v[0] * sc, y + (int)v[1] * sc, x + (int)v[8] * sc, y + (int)v[9] * sc, rgb);
        }
        x += stb_easy_font_width(b) * sc;
    }
}

/* Text centred on x; NULL draws nothing. */
static void aur__plot_ctext(aur__plot_img *im, int x, int y, const char *s, int sc, const unsigned char *rgb)
{
    aur__plot_text(im, x - aur__plot_textw(s, sc) / 2, y, s, sc, rgb);
}

/* %g, then "1e-05" -> "1e-5" and "1e+06" -> "1e6": tick labels must be short. */
static void aur__plot_fmt(char *out, size_t n, double v)
{
    char t[32], *e, *p;
    snprintf(t, sizeof t, "%g", v);
    if (!(e = strchr(t, 'e'))) {
        snprintf(out, n, "%s", t);
        return;
    }
    for (p = e + 2; *p == '0' && p[1]; p++) {}
    snprintf(out, n, "%.*se%s%s", (int)(e - t), t, e[1] == '-' ? "-" : "", p);
}

/* An axis in drawing units (log10 of the value on a log axis), with major ticks, their labels, and minor
   ticks (log axes only: the faint grid at 2..9 x 10^k that makes a log scale readable). */
typedef struct aur__plot_axis {
    double lo, hi, t[AUR__PLOT_MAXTICK], mt[64];
    char lab[AUR__PLOT_MAXTICK][32];
    int nt, nmt, log;
} aur__plot_axis;

/* Smallest 1, 2 or 5 x 10^k that is >= x. */
static double aur__plot_nice(double x)
{
    double p = pow(10, floor(log10(x))), m = x / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* Adds a tick at t labelled with the value shown, or with "1e<e>" when pow10 is set. */
static void aur__plot_tick(aur__plot_axis *a, double t, double shown, int pow10)
{
    if (a->nt >= AUR__PLOT_MAXTICK) return;
    if (pow10) snprintf(a->lab[a->nt], sizeof a->lab[0], "1e%d", (int)t);
    else aur__plot_fmt(a->lab[a->nt], sizeof a->lab[0], shown);
    a->t[a->nt++] = t;
}

/* ~want ticks at multiples of a nice step inside [lo, hi] (values, not log units); map them with log10 when
   the axis is logarithmic, which is the fallback for log axes spanning less than a decade. */
static void aur__plot_lin_ticks(aur__plot_axis *a, double lo, double hi, int want)
{
    double st = aur__plot_nice((hi - lo) / want), k, k1 = floor(hi / st + 1e-9);
    for (k = ceil(lo / st - 1e-9); k <= k1; k++) {
        double v = fabs(k) < 1e-9 ? 0 : k * st; /* print 0, not 1e-17 */
        if (!a->log) aur__plot_tick(a, v, v, 0);
        else if (v > 0) aur__plot_tick(a, log10(v), v, 0);
    }
}

/* Pads [lo, hi] by frac of its span (a constant range is widened instead) and picks the ticks. */
static void aur__plot_axis_init(aur__plot_axis *a, double lo, double hi, int is_log, double frac, int want)
{
    double d;
    int e, e0, e1, step, m;
    memset(a, 0, sizeof *a);
    a->log = is_log;
    lo = fmax(lo, -1e300), hi = fmin(hi, 1e300); /* keeps hi - lo finite */
    if (hi - lo <= 1e-12 * fmax(fabs(lo), fabs(hi))) {
        d = is_log ? 0.5 : lo != 0 ? 0.1 * fabs(lo) : 1;
        lo -= d, hi += d;
    }
    d = frac * (hi - lo);
    a->lo = lo - d, a->hi = hi + d;
    if (!is_log) {
        aur__plot_lin_ticks(a, a->lo, a->hi, want);
        return;
    }
    e0 = (int)ceil(a->lo - 1e-9), e1 = (int)floor(a->hi + 1e-9);
    for (e = (int)floor(a->lo); a->hi - a->lo <= 6 && e <= e1; e++) /* faint minor grid at 2..9 x 10^e */
        for (m = 2; m <= 9; m++)
            if ((d = e + log10((double)m)) > a->lo && d < a->hi) a->mt[a->nmt++] = d;
    if (e1 - e0 <= 1) { /* at most two powers of ten in view: label 2 and 5 x 10^e too, if they fit */
        for (e = e0 - 1; e <= e1; e++)
            for (m = 1; m <= 5; m += m == 2 ? 3 : 1)
                if ((d = e + log10((double)m)) >= a->lo && d <= a->hi) aur__plot_tick(a, d, m * pow(10, e), 0);
        if (a->nt >= 3 && a->nt <= 2 * want) return;
        a->nt = 0;
    }
    if (e1 > e0) { /* powers of ten, thinned out on very wide ranges; 0.01 .. 1000 read better than 1e-2 .. 1e3 */
        for (e = e0, step = (e1 - e0) / 6 + 1; e <= e1; e += step) aur__plot_tick(a, e, pow(10, e), e0 < -2 || e1 > 3);
        return;
    }
    aur__plot_lin_ticks(a, pow(10, a->lo), pow(10, a->hi), want); /* within one decade: plain nice ticks */
}

static int aur__plot_axis_labw(const aur__plot_axis *a, int sc)
{
    int i, w = 0;
    for (i = 0; i < a->nt; i++) w = (int)fmax(w, aur__plot_textw(a->lab[i], sc));
    return w;
}

static double aur__plot_map(const aur__plot_axis *a, double v, int p0, int p1)
{
    return p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
}

static int aur__plot_ok(double x, double y, int log_y) { return isfinite(x) && isfinite(y) && (!log_y || y > 0); }

/* Grows [*lo, *hi] to take in v; *n counts the values seen so far (the first one sets both ends). */
static void aur__plot_grow(double v, int *n, double *lo, double *hi)
{
    *lo = (*n)++ ? fmin(*lo, v) : v;
    *hi = *n > 1 ? fmax(*hi, v) : v;
}

/* Range of the drawable x (which=0) or y (which=1, log10 units on a log axis); returns the number of points. */
static int aur__plot_range(const aur_plot_series *s, int ns, int log_y, int which, double *lo, double *hi)
{
    int i, j, n = 0;
    for (i = 0; i < ns; i++)
        for (j = 0; j < s[i].n; j++)
            if (aur__plot_ok(s[i].x[j], s[i].y[j], log_y))
                aur__plot_grow(which == 0 ? s[i].x[j] : log_y ? log10(s[i].y[j]) : s[i].y[j], &n, lo, hi);
    return n;
}

/* Top t and bottom b of a panel's plot area; sizing and drawing must agree, so both call this. */
static void aur__plot_rows(int y0, int h, const char *title, const char *xlabel, int sc, int tsc, int *t, int *b)
{
    *t = y0 + AUR__PLOT_PAD + (title ? 7 * tsc + 8 : 0);
    *b = y0 + h - AUR__PLOT_PAD - 7 * sc - 6 - (xlabel ? 7 * sc + 8 : 0);
}

/* A panel's y axis; returns the number of drawable points (0: the panel says "no data"). */
static int aur__plot_yaxis(aur__plot_axis *a, const aur_plot_panel *p, int plot_h)
{
    double lo = 0, hi = 1;
    int want = plot_h / 45, n = aur__plot_range(p->series, p->n_series, p->log_y, 1, &lo, &hi);
    if (!n) lo = p->log_y ? -1 : 0, hi = 1;
    aur__plot_axis_init(a, lo, hi, p->log_y, 0.05, want < 2 ? 2 : want > 6 ? 6 : want);
    return n;
}

/* Plot area [l,r) x [t,b): pixel position of a data point, or 0 when it is not drawable. */
typedef struct aur__plot_frame {
    const aur__plot_axis *xa, *ya;
    int l, t, r, b;
} aur__plot_frame;

static int aur__plot_xy(const aur__plot_frame *f, double x, double y, double *px, double *py)
{
    if (!aur__plot_ok(x, y, f->ya->log)) return 0;
    *px = aur__plot_map(f->xa, x, f->l, f->r), *py = aur__plot_map(f->ya, f->ya->log ? log10(y) : y, f->b, f->t);
    return 1;
}

/* Legend box in whichever plot corner covers the fewest data points, so it rarely hides a curve. */
static void aur__plot_legend(aur__plot_img *im, const aur__plot_frame *f, const aur_plot_series *s, int ns, int sc)
{
    int i, j, k, n = 0, tw = 0, lh = 11 * sc, bw, bh, bx = 0, by = 0, best = -1;
    double px, py;
    for (i = 0; i < ns; i++)
        if (s[i].label && s[i].label[0]) n++, tw = (int)fmax(tw, aur__plot_textw(s[i].label, sc));
    if (!n) return;
    bw = 27 * sc + 6 + tw, bh = n * lh + 8; /* 6*sc pad, 16*sc swatch, 5*sc gap, text, 6 pad */
    for (k = 0; k < 4; k++) {
        int x0 = k & 1 ? f->l + 8 : f->r - 8 - bw, y0 = k & 2 ? f->b - 8 - bh : f->t + 8, cnt = 0;
        for (i = 0; i < ns; i++)
            for (j = 0; j < s[i].n; j++)
                cnt += aur__plot_xy(f, s[i].x[j], s[i].y[j], &px, &py) && px >= x0 - 9 && px <= x0 + bw + 9 &&
                       py >= y0 - 9 && py <= y0 + bh + 9; /* +9 reaches the frame: edge points count */
        if (best < 0 || cnt < best) best = cnt, bx = x0, by = y0;
    }
    aur__plot_rect(im, bx, by, bx + bw, by + bh, aur__plot_grid);
    aur__plot_rect(im, bx + 1, by + 1, bx + bw - 1, by + bh - 1, aur__plot_white);
    for (i = 0, j = 0; i < ns; i++) {
        int y = by + 5 + j * lh + (lh - 7 * sc) / 2;
        if (!s[i].label || !s[i].label[0]) continue;
        aur__plot_line(im, bx + 6 * sc, y + 4 * sc, bx + 22 * sc, y + 4 * sc, 2.0 * sc); /* on pixel edges: crisp */
        aur__plot_flush(im, aur__plot_pal[i]);
        aur__plot_text(im, bx + 27 * sc, y, s[i].label, sc, aur__plot_ink), j++;
    }
}

/* Grid, frame, tick marks and tick labels. Everything outside the plot interior is drawn here, before the
   series, which are clipped to the interior and so cannot cover the frame or the labels. */
static void aur__plot_axes(aur__plot_img *im, const aur__plot_frame *f, int sc)
{
    const aur__plot_axis *xa = f->xa, *ya = f->ya;
    int i, v;
    for (i = 0; i < ya->nmt; i++) {
        v = (int)aur__plot_map(ya, ya->mt[i], f->b, f->t);
        aur__plot_rect(im, f->l, v, f->r, v + 1, aur__plot_minor);
    }
    for (i = 0; i < ya->nt; i++) {
        v = (int)aur__plot_map(ya, ya->t[i], f->b, f->t);
        aur__plot_rect(im, f->l - 4, v, f->r, v + 1, aur__plot_grid);
        aur__plot_rect(im, f->l - 4, v, f->l, v + 1, aur__plot_edge);
        aur__plot_text(im, f->l - 7 - aur__plot_textw(ya->lab[i], sc), v - 7 * sc / 2, ya->lab[i], sc, aur__plot_ink);
    }
    for (i = 0; i < xa->nt; i++) {
        v = (int)aur__plot_map(xa, xa->t[i], f->l, f->r);
        aur__plot_rect(im, v, f->t, v + 1, f->b + 4, aur__plot_grid);
        aur__plot_rect(im, v, f->b, v + 1, f->b + 4, aur__plot_edge);
        aur__plot_ctext(im, v, f->b + 7, xa->lab[i], sc, aur__plot_ink);
    }
    aur__plot_rect(im, f->l, f->t, f->r, f->t + 1, aur__plot_edge);
    aur__plot_rect(im, f->l, f->b - 1, f->r, f->b, aur__plot_edge);
    aur__plot_rect(im, f->l, f->t, f->l + 1, f->b, aur__plot_edge);
    aur__plot_rect(im, f->r - 1, f->t, f->r, f->b, aur__plot_edge);
}

/* Lines through the drawable points of each series; a non-drawable point breaks the line (a gap). */
static void aur__plot_series(aur__plot_img *im, const aur__plot_frame *f, const aur_plot_series *s, int ns, int sc)
{
    double ax = 0, ay = 0, bx, by;
    int i, j, v, pv;
    aur__plot_clip(im, f->l + 1, f->t + 1, f->r - 1, f->b - 1);
    for (i = 0; i < ns; i++) {
        for (j = 0, pv = 0; j < s[i].n; j++, pv = v) {
            v = aur__plot_xy(f, s[i].x[j], s[i].y[j], &bx, &by);
            if (v && pv) aur__plot_line(im, ax, ay, bx, by, 1.0 + 0.6 * sc);
            else if (v && (j + 1 == s[i].n || !aur__plot_ok(s[i].x[j + 1], s[i].y[j + 1], f->ya->log)))
                aur__plot_line(im, bx, by, bx, by, 2.0 + sc); /* an isolated point would vanish without a dot */
            if (v) ax = bx, ay = by;
        }
        aur__plot_flush(im, aur__plot_pal[i]);
    }
}

/* One chart in rows [y0, y0+h) of the image. The plot's left edge l and the x axis are shared by all
   panels, so stacked charts line up. */
static void aur__plot_chart(aur__plot_img *im, int y0, int h, int l, const aur__plot_axis *xa,
                            const aur_plot_panel *p, const char *xlabel, int sc, int tsc)
{
    aur__plot_axis ya;
    aur__plot_frame f;
    int t, b, any;
    aur__plot_rows(y0, h, p->title, xlabel, sc, tsc, &t, &b);
    any = aur__plot_yaxis(&ya, p, b - t);
    f.xa = xa, f.ya = &ya, f.l = l, f.t = t, f.r = im->w - AUR__PLOT_PAD - 12 * sc, f.b = b;
    aur__plot_axes(im, &f, sc);
    aur__plot_ctext(im, (l + f.r) / 2, y0 + AUR__PLOT_PAD, p->title, tsc, aur__plot_ink);
    aur__plot_ctext(im, (l + f.r) / 2, b + 7 * sc + 15, xlabel, sc, aur__plot_ink);
    if (!any) aur__plot_ctext(im, (l + f.r) / 2, (t + b - 7 * tsc) / 2, "no data", tsc, aur__plot_edge);
    aur__plot_series(im, &f, p->series, p->n_series, sc); /* clips to the plot interior, as the legend needs too */
    aur__plot_legend(im, &f, p->series, p->n_series, sc);
    aur__plot_clip(im, 0, 0, im->w, im->h);
}

/* A white w x h image with an empty coverage mask; callers have checked w, h <= AUR__PLOT_MAXDIM. */
static int aur__plot_img_new(aur__plot_img *im, int w, int h)
{
    im->w = w, im->h = h;
    im->px = (unsigned char *)AUR_MALLOC((size_t)w * h * 3);
    im->cov = (unsigned char *)AUR_MALLOC((size_t)w * h);
    if (!im->px || !im->cov) {
        AUR_FREE(im->px), AUR_FREE(im->cov);
        return aur__err(AUR_ENOMEM, "aur_plot: out of memory for a %dx%d image", w, h);
    }
    memset(im->px, 255, (size_t)w * h * 3), memset(im->cov, 0, (size_t)w * h);
    aur__plot_clip(im, 0, 0, w, h);
    return 0;
}

static int aur__plot_img_save(aur__plot_img *im, const char *path)
{
    int ok = stbi_write_png(path, im->w, im->h, 3, im->px, im->w * 3);
    AUR_FREE(im->px), AUR_FREE(im->cov);
    return ok ? 0 : aur__err(AUR_EIO, "aur_plot: cannot write PNG '%s'", path);
}

AURDEF int aur_plot_panels(const char *path, int width, int panel_height, const char *xlabel,
                           const aur_plot_panel *p, int n_panels)
{
    aur__plot_axis xa, ya;
    aur__plot_img im;
    double lo = 0, hi = 1, xlo, xhi;
    int i, j, t, b, l = 0, sc = width >= 1000 ? 2 : 1, tsc = sc + (width >= 320), n = 0, want, rc;
    if (!path || !p || n_panels < 1) return aur__err(AUR_EINVAL, "aur_plot: path, panels and n_panels >= 1 needed");
    if (width < 160 || panel_height < 1 || width > AUR__PLOT_MAXDIM || panel_height > AUR__PLOT_MAXDIM / n_panels)
        return aur__err(AUR_EINVAL, "aur_plot '%s': %d panels of %d x %d px: need width 160..%d and total height <= %d",
                        path, n_panels, width, panel_height, AUR__PLOT_MAXDIM, AUR__PLOT_MAXDIM);
    for (i = 0; i < n_panels; i++) {
        if (p[i].n_series < 0 || p[i].n_series > 8 || (p[i].n_series && !p[i].series))
            return aur__err(AUR_EINVAL, "aur_plot '%s': panel %d: n_series %d (need 0..8, series non-NULL)", path, i,
                            p[i].n_series);
        for (j = 0; j < p[i].n_series; j++)
            if (p[i].series[j].n < 0 || (p[i].series[j].n && (!p[i].series[j].x || !p[i].series[j].y)))
                return aur__err(AUR_EINVAL, "aur_plot '%s': panel %d series %d: n %d (need n >= 0, x and y non-NULL)",
                                path, i, j, p[i].series[j].n);
        aur__plot_rows(0, panel_height, p[i].title, i == n_panels - 1 ? xlabel : NULL, sc, tsc, &t, &b);
        if (b - t < 30)
            return aur__err(AUR_EINVAL, "aur_plot '%s': panel %d: height %d leaves %d px to plot in; need %d or more",
                            path, i, panel_height, b - t, panel_height + 30 - (b - t));
        aur__plot_yaxis(&ya, &p[i], b - t);
        l = (int)fmax(l, aur__plot_axis_labw(&ya, sc));
        if (aur__plot_range(p[i].series, p[i].n_series, p[i].log_y, 0, &xlo, &xhi)) /* x is shared by all panels */
            aur__plot_grow(xlo, &n, &lo, &hi), aur__plot_grow(xhi, &n, &lo, &hi);
    }
    l += AUR__PLOT_PAD + 8;
    if (width - AUR__PLOT_PAD - 12 * sc - l < 40)
        return aur__err(AUR_EINVAL, "aur_plot '%s': width %d leaves no room beside the tick labels", path, width);
    want = (width - l - AUR__PLOT_PAD) / 80;
    want = want < 2 ? 2 : want > 8 ? 8 : want;
    if (hi > lo) { /* end a nearly-round x range on a tick (0..999 -> 0..1000) so the last tick gets a label */
        double st = aur__plot_nice((hi - lo) / want), slo = floor(lo / st) * st, shi = ceil(hi / st) * st;
        if (lo - slo < 0.03 * (hi - lo)) lo = slo;
        if (shi - hi < 0.03 * (hi - lo)) hi = shi;
    }
    aur__plot_axis_init(&xa, lo, hi, 0, 0, want);
    if ((rc = aur__plot_img_new(&im, width, panel_height * n_panels)) != 0) return rc;
    for (i = 0; i < n_panels; i++)
        aur__plot_chart(&im, i * panel_height, panel_height, l, &xa, &p[i], i == n_panels - 1 ? xlabel : NULL, sc, tsc);
    return aur__plot_img_save(&im, path);
}

static void aur__plot_cmap(double t, int diverging, unsigned char *out)
{
    const unsigned char(*tab)[3] = diverging ? aur__plot_rdbu : aur__plot_viridis;
    double f = (t < 0 ? 0 : t > 1 ? 1 : t) * 8;
    int i = f >= 8 ? 7 : (int)f, k;
    for (k = 0; k < 3; k++) out[k] = (unsigned char)(tab[i][k] + (f - i) * (tab[i + 1][k] - tab[i][k]) + 0.5);
}

/* Vertical colour bar, 16 px wide, top value at the top, ticks and labels on its right. */
static void aur__plot_colorbar(aur__plot_img *im, int x, int top, int bh, const aur__plot_axis *a, int diverging,
                               int sc)
{
    unsigned char rgb[3];
    int i, r;
    aur__plot_rect(im, x - 1, top - 1, x + 17, top + bh + 1, aur__plot_edge);
    for (r = 0; r < bh; r++)
        aur__plot_cmap(1 - (r + 0.5) / bh, diverging, rgb), aur__plot_rect(im, x, top + r, x + 16, top + r + 1, rgb);
    for (i = 0; i < a->nt; i++) {
        int y = top + (int)((1 - (a->t[i] - a->lo) / (a->hi - a->lo)) * (bh - 1) + 0.5);
        aur__plot_rect(im, x + 16, y, x + 20, y + 1, aur__plot_edge);
        aur__plot_text(im, x + 24, y - 7 * sc / 2, a->lab[i], sc, aur__plot_ink);
    }
}

/* Column width of map i: the map, or its title when that is wider. */
static int aur__plot_mapcol(const char *const *titles, int i, int mw, int sc)
{
    return (int)fmax(mw, titles && titles[i] ? aur__plot_textw(titles[i], sc) : 0);
}

AURDEF int aur_plot_maps(const char *path, const float *const *maps, const char *const *titles, int n_maps,
                         int H, int W, int scale, double vmin, double vmax, int diverging, const char *title)
{
    aur__plot_axis ca;
    aur__plot_img im;
    unsigned char rgb[3];
    double lo = 0, hi = 0;
    int i, r, c, n = 0, mw, mh, bh, sc, tsc = 2, top, x, w, hgt, rc, gap = 16, mapsw = -gap;
    if (!path || !maps || n_maps < 1 || n_maps > 64 || H < 1 || W < 1 || scale < 1)
        return aur__err(AUR_EINVAL, "aur_plot_maps '%s': need path, maps, n_maps 1..64, H, W, scale >= 1 (got %d, %d, "
                        "%d, %d)", path ? path : "(null)", n_maps, H, W, scale);
    if ((double)W * scale * n_maps > AUR__PLOT_MAXDIM || (double)H * scale > AUR__PLOT_MAXDIM - 200)
        return aur__err(AUR_EINVAL, "aur_plot_maps '%s': %d maps of %dx%d at scale %d exceed %d px", path, n_maps, H,
                        W, scale, AUR__PLOT_MAXDIM);
    for (i = 0; i < n_maps; i++) {
        if (!maps[i]) return aur__err(AUR_EINVAL, "aur_plot_maps '%s': maps[%d] is NULL", path, i);
        for (r = 0; r < H * W; r++)
            if (isfinite(maps[i][r])) aur__plot_grow(maps[i][r], &n, &lo, &hi);
    }
    if (isfinite(vmin) && isfinite(vmax) && vmin < vmax) lo = vmin, hi = vmax;
    if (diverging) hi = fmax(fabs(lo), fabs(hi)), hi = hi > 0 ? hi : 1, lo = -hi; /* white must mean zero */
    mw = W * scale, mh = H * scale, bh = mh < 160 ? 160 : mh, sc = bh >= 400 ? 2 : 1;
    aur__plot_axis_init(&ca, lo, hi, 0, 0, bh / 30 < 3 ? 3 : bh / 30 > 8 ? 8 : bh / 30);
    lo = ca.lo, hi = ca.hi; /* a constant field got widened there */
    for (i = 0; i < n_maps; i++) /* 2x titles unless one is wider than its map */
        tsc = aur__plot_mapcol(titles, i, mw, 2) > mw ? 1 : tsc;
    top = AUR__PLOT_PAD + (title ? 14 + 14 : 0) + (titles ? 7 * tsc + 8 : 0);
    for (i = 0; i < n_maps; i++) mapsw += aur__plot_mapcol(titles, i, mw, tsc) + gap;
    w = AUR__PLOT_PAD + mapsw + gap + 16 + 10 + aur__plot_axis_labw(&ca, sc) + AUR__PLOT_PAD; /* maps, bar, labels */
    hgt = top + bh + AUR__PLOT_PAD + 4;
    w = (int)fmax(w, title ? aur__plot_textw(title, 2) + 2 * AUR__PLOT_PAD : 0);
    if (w > AUR__PLOT_MAXDIM) return aur__err(AUR_EINVAL, "aur_plot_maps '%s': image would be %d px wide", path, w);
    if ((rc = aur__plot_img_new(&im, w, hgt)) != 0) return rc;
    if (title) /* centred over the maps, not the colour bar, unless it needs the room */
        aur__plot_text(&im, (int)fmax(AUR__PLOT_PAD, AUR__PLOT_PAD + (mapsw - aur__plot_textw(title, 2)) / 2),
                       AUR__PLOT_PAD, title, 2, aur__plot_ink);
    for (i = 0, x = AUR__PLOT_PAD; i < n_maps; i++) {
        int cw = aur__plot_mapcol(titles, i, mw, tsc), mx = x + (cw - mw) / 2;
        if (titles) aur__plot_ctext(&im, x + cw / 2, top - 7 * tsc - 8, titles[i], tsc, aur__plot_edge);
        aur__plot_rect(&im, mx - 1, top - 1, mx + mw + 1, top + mh + 1, aur__plot_edge);
        for (r = 0; r < H; r++)
            for (c = 0; c < W; c++) {
                float v = maps[i][(size_t)r * W + c];
                if (isfinite(v)) aur__plot_cmap((v - lo) / (hi - lo), diverging, rgb);
                aur__plot_rect(&im, mx + c * scale, top + r * scale, mx + (c + 1) * scale, top + (r + 1) * scale,
                          isfinite(v) ? rgb : aur__plot_nan);
            }
        x += cw + gap;
    }
    aur__plot_colorbar(&im, x, top, bh, &ca, diverging, sc);
    return aur__plot_img_save(&im, path);
}

#else /* AUR_NO_PNG: keep the API so callers still link, and say why nothing is drawn */

AURDEF int aur_plot_panels(const char *path, int width, int panel_height, const char *xlabel,
                           const aur_plot_panel *p, int n_panels)
{
    (void)width, (void)panel_height, (void)xlabel, (void)p, (void)n_panels;
    return aur__err(AUR_EUNSUPPORTED, "aur_plot '%s': built with AUR_NO_PNG, so there is no PNG output",
                    path ? path : "(null)");
}

AURDEF int aur_plot_maps(const char *path, const float *const *maps, const char *const *titles, int n_maps,
                         int H, int W, int scale, double vmin, double vmax, int diverging, const char *title)
{
    (void)maps, (void)titles, (void)n_maps, (void)H, (void)W, (void)scale, (void)vmin, (void)vmax;
    (void)diverging, (void)title;
    return aur__err(AUR_EUNSUPPORTED, "aur_plot_maps '%s': built with AUR_NO_PNG, so there is no PNG output",
                    path ? path : "(null)");
}

#endif /* AUR_NO_PNG */

/* One panel of aur_plot_panels. */
AURDEF int aur_plot_lines(const char *path, int width, int height, const char *title, const char *xlabel,
                          const aur_plot_series *s, int n_series, int log_y)
{
    aur_plot_panel p;
    p.title = title, p.series = s, p.n_series = n_series, p.log_y = log_y;
    return aur_plot_panels(path, width, height, xlabel, &p, 1);
}

/* ==== plot: forecasts ====
   A predicted field beside its truth, and their difference (the trainer's
   maps and aurora-forecast's); and, as WeatherBench2's score cards draw
   them, per variable RMSE against lead time, one line per pressure level
   (up to 8, spread over the levels). */

AURDEF int aur_plot_versus(const char *stem, const float *pred, const float *truth, int H, int W, const char *pred_name, const char *truth_name,
                           const char *title)
{
    char path[1200], etitle[128];
    const float *maps[2] = {pred, truth};
    const char *titles[2] = {pred_name, truth_name};
    int scale = W >= 256 ? 1 : 512 / W < 1 ? 1 : 512 / W;
    snprintf(path, sizeof path, "%s.png", stem);
    int rc = aur_plot_maps(path, maps, titles, truth ? 2 : 1, H, W, scale, 0, 0, 0, title);
    if (rc || !truth) return rc;
    size_t n = (size_t)H * (size_t)W;
    float *err = (float *)aur__malloc(sizeof(float) * n, "an error map");
    if (!err) return AUR_ENOMEM;
    for (size_t i = 0; i < n; i++) err[i] = pred[i] - truth[i];
    const float *e[1] = {err};
    snprintf(etitle, sizeof etitle, "%s - %s", pred_name, truth_name);
    const char *et[1] = {etitle};
    snprintf(path, sizeof path, "%s_error.png", stem);
    rc = aur_plot_maps(path, e, et, 1, H, W, scale, 0, 0, 1, title);
    AUR_FREE(err);
    return rc;
}

/* The distinct levels of a variable's rows, in the order they first come. */
static int aur__score_levels(const aur_scores *s, const aur_score *v, double *levels)
{
    int n = 0;
    for (int e = 0; e < s->n; e++) {
        const aur_score *r = &s->rows[e];
        if (strcmp(r->var, v->var) || r->atmos != v->atmos) continue;
        int seen = 0;
        for (int l = 0; l < n; l++) seen |= levels[l] == r->level;
        if (!seen && n < AUR_MAX_LEVELS) levels[n++] = r->level;
    }
    return n;
}

/* One variable's chart: prefix + "rmse_VAR.png" (surface) or "rmse_VAR_levels.png". */
static int aur__score_plot_var(const aur_scores *s, const aur_score *v, const char *prefix)
{
    double levels[AUR_MAX_LEVELS];
    int nl = aur__score_levels(s, v, levels), ns = nl < 8 ? nl : 8;
    aur_plot_series series[8];
    char labels[8][AUR_NAME_LEN + 16];
    double *xy = (double *)aur__calloc(sizeof(double) * 2 * 8 * (size_t)s->n, "a score plot");
    if (!xy) return AUR_ENOMEM;
    for (int l = 0; l < ns; l++) {
        double level = levels[nl <= 8 ? l : l * (nl - 1) / 7], *x = xy + (size_t)2 * l * s->n, *y = x + s->n;
        int n = 0;
        for (int e = 0; e < s->n; e++) {
            const aur_score *r = &s->rows[e];
            if (!strcmp(r->var, v->var) && r->atmos == v->atmos && r->level == level) x[n] = r->lead_hours, y[n] = r->rmse, n++;
        }
        if (v->atmos) snprintf(labels[l], sizeof labels[l], "%g hPa", level);
        else snprintf(labels[l], sizeof labels[l], "%s", v->var);
        series[l].label = labels[l], series[l].x = x, series[l].y = y, series[l].n = n;
    }
    char path[1200], title[AUR_NAME_LEN + 48];
    snprintf(path, sizeof path, "%srmse_%s%s.png", prefix, v->var, v->atmos ? "_levels" : "");
    snprintf(title, sizeof title, "%s: latitude-weighted RMSE", v->var);
    int rc = aur_plot_lines(path, 640, 400, title, "lead time (hours)", series, ns, 0);
    AUR_FREE(xy);
    return rc;
}

AURDEF int aur_scores_plot(const aur_scores *s, const char *prefix)
{
    for (int i = 0; s && i < s->n; i++) {
        int first = 1;
        for (int e = 0; e < i; e++) first &= strcmp(s->rows[e].var, s->rows[i].var) || s->rows[e].atmos != s->rows[i].atmos;
        int rc = first ? aur__score_plot_var(s, &s->rows[i], prefix) : 0;
        if (rc) return rc;
    }
    return 0;
}

/* ==== Fine-tuning: several runs' curves on one figure ==== */
/* The way the Surya lecture chooses a learning rate (and compares LoRA, full
   fine-tuning and a baseline): every run's curves on one chart. This reads
   each run directory's metrics.jsonl (what the trainer writes) and draws one
   panel per metric, one line per run, labelled by the directory's name. */

#define AUR__COMPARE_MAX_METRICS 16

typedef struct aur__run_curves {
    double *step, *value; /* [metric * cap + i] */
    int *n;               /* points per metric */
    int cap;              /* lines read */
} aur__run_curves;

/* The directory's last path component: "runs/lr-1e-3/" -> "lr-1e-3". */
static void aur__run_label(const char *dir, char *out, size_t size)
{
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(out, size, "%.*s", (int)(end - start), dir + start);
}

/* Every key of a line that names a number (or null: a metric without a value
   at that step), in the order a reader expects: loss first, then validation. */
static int aur__metric_wanted(const char *key)
{
    return !strcmp(key, "loss") || !strcmp(key, "val_loss") || !strncmp(key, "val/", 4);
}

static int aur__metric_index(char names[][64], int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], key)) return i;
    return -1;
}

/* Finds the metrics to draw when none are named: loss, val_loss and each
   val/<metric>, in the order they first appear in the runs. */
static int aur__discover_metrics(FILE *const *fps, int n_runs, char names[][64], int *n_names)
{
    char *line = NULL;
    size_t cap = 0;
    for (int r = 0; r < n_runs; r++) {
        rewind(fps[r]);
        while (getline(&line, &cap, fps[r]) > 0) {
            cJSON *j = aur__cjson_parse(line, strlen(line), NULL);
            for (const cJSON *it = j ? j->child : NULL; it; it = it->next)
                if (aur__metric_wanted(it->string) && (cJSON_IsNumber(it) || cJSON_IsNull(it)) &&
                    aur__metric_index(names, *n_names, it->string) < 0 && *n_names < AUR__COMPARE_MAX_METRICS)
                    snprintf(names[(*n_names)++], 64, "%s", it->string);
            cJSON_Delete(j);
        }
    }
    free(line);
    return 0;
}

/* One run's (step, value) points for each metric; lines that do not parse are
   named with their line number. */
static int aur__read_curves(FILE *fp, const char *path, char names[][64], int n_names, aur__run_curves *c)
{
    char *line = NULL;
    size_t cap = 0;
    int lines = 0, rc = 0;
    rewind(fp);
    while (getline(&line, &cap, fp) > 0) lines++;
    c->cap = lines > 0 ? lines : 1;
    c->step = (double *)AUR_MALLOC(sizeof(double) * (size_t)c->cap * (size_t)n_names);
    c->value = (double *)AUR_MALLOC(sizeof(double) * (size_t)c->cap * (size_t)n_names);
    c->n = (int *)calloc((size_t)n_names, sizeof(int));
    if (!c->step || !c->value || !c->n) rc = aur__err(AUR_ENOMEM, "out of memory reading %s", path);
    rewind(fp);
    for (int ln = 1; !rc && getline(&line, &cap, fp) > 0; ln++) {
        if (line[0] == '\n' || !line[0]) continue;
        cJSON *j = aur__cjson_parse(line, strlen(line), NULL);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (!cJSON_IsNumber(st)) rc = aur__err(AUR_EFORMAT, "%s:%d: not a metrics line (a JSON object with a \"step\" number expected)", path, ln);
        for (int m = 0; !rc && m < n_names; m++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, names[m]);
            if (!v || !(cJSON_IsNumber(v) || cJSON_IsNull(v))) continue;
            int i = c->n[m]++;
            c->step[(size_t)m * c->cap + i] = st->valuedouble;
            c->value[(size_t)m * c->cap + i] = cJSON_IsNumber(v) ? v->valuedouble : NAN; /* null: a gap */
        }
        cJSON_Delete(j);
    }
    free(line);
    return rc;
}

static void aur__curves_free(aur__run_curves *c)
{
    AUR_FREE(c->step);
    AUR_FREE(c->value);
    free(c->n);
}

/* The panels: metric m of every run that logged it. */
static int aur__draw_runs(const char *png, char names[][64], int n_names, const aur__run_curves *c, char labels[][128], int n_runs)
{
    aur_plot_series series[8 * AUR__COMPARE_MAX_METRICS];
    aur_plot_panel panels[AUR__COMPARE_MAX_METRICS];
    for (int m = 0; m < n_names; m++) {
        int k = 0;
        for (int r = 0; r < n_runs; r++)
            if (c[r].n[m] > 0)
                series[m * 8 + k++] = (aur_plot_series){labels[r], c[r].step + (size_t)m * c[r].cap, c[r].value + (size_t)m * c[r].cap, c[r].n[m]};
        panels[m] = (aur_plot_panel){names[m], series + m * 8, k, 0};
    }
    return aur_plot_panels(png, 900, 240, "step", panels, n_names);
}

AURDEF int aur_plot_runs(const char *png, const char *const *run_dirs, int n_runs, const char *const *metrics, int n_metrics)
{
    if (!png || !run_dirs || n_runs < 1 || n_runs > 8)
        return aur__err(AUR_EINVAL, "aur_plot_runs: %d runs given; 1 to 8 run directories fit one figure", n_runs);
    if (n_metrics < 0 || n_metrics > AUR__COMPARE_MAX_METRICS || (n_metrics && !metrics))
        return aur__err(AUR_EINVAL, "aur_plot_runs: %d metrics given; 0 (all found) to %d", n_metrics, AUR__COMPARE_MAX_METRICS);
    FILE *fps[8] = {0};
    char paths[8][1100], labels[8][128], names[AUR__COMPARE_MAX_METRICS][64];
    aur__run_curves curves[8];
    memset(curves, 0, sizeof curves);
    int rc = 0, n_names = 0;
    for (int r = 0; !rc && r < n_runs; r++) {
        snprintf(paths[r], sizeof paths[r], "%s/metrics.jsonl", run_dirs[r]);
        aur__run_label(run_dirs[r], labels[r], sizeof labels[r]);
        fps[r] = fopen(paths[r], "rb");
        if (!fps[r]) rc = aur__err(AUR_EIO, "%s: %s (a run directory of aurora-train expected)", paths[r], strerror(errno));
    }
    for (int m = 0; !rc && m < n_metrics; m++) {
        if (!metrics[m] || !metrics[m][0] || strlen(metrics[m]) >= 64) rc = aur__err(AUR_EINVAL, "aur_plot_runs: metric %d: a name of 1 to 63 characters expected", m);
        else snprintf(names[n_names++], 64, "%s", metrics[m]);
    }
    if (!rc && n_metrics == 0) rc = aur__discover_metrics(fps, n_runs, names, &n_names);
    if (!rc && n_names == 0) rc = aur__err(AUR_EFORMAT, "%s: no loss or val_ metrics to draw (an empty run?)", paths[0]);
    for (int r = 0; !rc && r < n_runs; r++) rc = aur__read_curves(fps[r], paths[r], names, n_names, &curves[r]);
    for (int m = 0; !rc && m < n_names; m++) {
        int found = 0;
        for (int r = 0; r < n_runs; r++) found += curves[r].n[m] > 0;
        if (!found) rc = aur__err(AUR_EINVAL, "metric '%s': in none of the runs' metrics.jsonl (e.g. loss, val_loss, val/tss)", names[m]);
    }
    if (!rc) rc = aur__draw_runs(png, names, n_names, curves, labels, n_runs);
    for (int r = 0; r < n_runs; r++) {
        if (fps[r]) fclose(fps[r]);
        aur__curves_free(&curves[r]);
    }
    return rc;
}

/* ==== TensorBoard event files ==== */
/* The format tf.summary and torch.utils.tensorboard write: TFRecord framing
   (tensorflow/core/lib/io/record_writer.cc: a little-endian uint64 length,
   its masked CRC-32C, the bytes, their masked CRC-32C) around Event protocol
   buffers (tensorflow/core/util/event.proto; scalars as Summary.Value's
   simple_value). The first record carries file_version "brain.Event:2".
   Only these few fields are needed, so they are encoded here directly;
   Debian packages no CRC-32C library, so that is here too (8 lines). */

/* Seconds since the Unix epoch: an Event's wall_time. */
static double aur__unix_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: the
   records are short and written once per logged step. */
static uint32_t aur__crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

/* TFRecord's masked CRC: rotated right by 15 bits, plus a constant. */
static uint32_t aur__masked_crc(const uint8_t *p, size_t n)
{
    uint32_t c = aur__crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

typedef struct aur__pb {
    uint8_t b[1024];
    size_t n;
    int overflow;
} aur__pb;

static void aur__pb_bytes(aur__pb *pb, const void *p, size_t n)
{
    if (pb->n + n > sizeof pb->b) {
        pb->overflow = 1;
        return;
    }
    memcpy(pb->b + pb->n, p, n);
    pb->n += n;
}

static void aur__pb_varint(aur__pb *pb, uint64_t v)
{
    do {
        uint8_t byte = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        aur__pb_bytes(pb, &byte, 1);
        v >>= 7;
    } while (v);
}

/* A field's key: (number << 3) | wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit). */
static void aur__pb_key(aur__pb *pb, int field, int wire) { aur__pb_varint(pb, (uint64_t)(field << 3 | wire)); }

static void aur__pb_le(aur__pb *pb, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t byte = (uint8_t)(v >> (8 * i));
        aur__pb_bytes(pb, &byte, 1);
    }
}

static void aur__pb_string(aur__pb *pb, int field, const void *s, size_t n)
{
    aur__pb_key(pb, field, 2);
    aur__pb_varint(pb, n);
    aur__pb_bytes(pb, s, n);
}

/* Event { double wall_time = 1; int64 step = 2; string file_version = 3 | Summary summary = 5; } */
static void aur__event_head(aur__pb *pb, double wall_time, int64_t step)
{
    uint64_t bits;
    memcpy(&bits, &wall_time, 8);
    aur__pb_key(pb, 1, 1);
    aur__pb_le(pb, bits, 8);
    if (step) aur__pb_key(pb, 2, 0), aur__pb_varint(pb, (uint64_t)step);
}

/* One record into an open file: 1 if written whole. */
static int aur__record_write(FILE *fp, const aur__pb *ev)
{
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)ev->n >> (8 * i));
    uint32_t crcs[2] = {aur__masked_crc(len, 8), aur__masked_crc(ev->b, ev->n)};
    uint8_t c[2][4];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) c[k][i] = (uint8_t)(crcs[k] >> (8 * i));
    return !ev->overflow && fwrite(len, 1, 8, fp) == 8 && fwrite(c[0], 1, 4, fp) == 4 && fwrite(ev->b, 1, ev->n, fp) == ev->n &&
           fwrite(c[1], 1, 4, fp) == 4;
}

/* Event { wall_time, step, summary { value { tag, simple_value } } }, one scalar. */
static void aur__scalar_event(aur__pb *ev, double wall_time, int64_t step, const char *tag, double value)
{
    aur__pb value_pb = {{0}, 0, 0}, summary = {{0}, 0, 0};
    float f = (float)value; /* simple_value is a float, as TensorBoard stores it */
    uint32_t bits;
    memcpy(&bits, &f, 4);
    aur__pb_string(&value_pb, 1, tag, strlen(tag)); /* Summary.Value { string tag = 1; float simple_value = 2; } */
    aur__pb_key(&value_pb, 2, 5);
    aur__pb_le(&value_pb, bits, 4);
    aur__pb_string(&summary, 1, value_pb.b, value_pb.n); /* Summary { repeated Value value = 1; } */
    aur__event_head(ev, wall_time, step);
    aur__pb_string(ev, 5, summary.b, summary.n);
    ev->overflow |= value_pb.overflow | summary.overflow;
}

/* Writes n events into path (opened with mode), each made by make(ctx, i, &event); an event too large is an error. */
static int aur__events_write(const char *path, const char *mode, int n, void (*make)(const void *ctx, int i, aur__pb *ev), const void *ctx)
{
    FILE *fp = fopen(path, mode);
    if (!fp) return aur__err(AUR_EIO, "cannot write %s: %s", path, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        aur__pb ev = {{0}, 0, 0};
        make(ctx, i, &ev);
        if (ev.overflow) rc = aur__err(AUR_EINVAL, "%s: an event record over %zu bytes (a tag too long?)", path, sizeof ev.b);
        else if (!aur__record_write(fp, &ev)) rc = aur__err(AUR_EIO, "cannot write %s", path);
    }
    if (fclose(fp) && !rc) rc = aur__err(AUR_EIO, "cannot write %s", path);
    return rc;
}

static void aur__version_event(const void *ctx, int i, aur__pb *ev)
{
    (void)i;
    aur__event_head(ev, *(const double *)ctx, 0);
    aur__pb_string(ev, 3, "brain.Event:2", 13);
}

AURDEF int aur_events_create(const char *path, double wall_time) { return aur__events_write(path, "wb", 1, aur__version_event, &wall_time); }

/* Scalars to write: tags[i] = values[i] at one step. */
typedef struct aur__scalars {
    double wall_time;
    int64_t step;
    const char *const *tags;
    const double *values;
} aur__scalars;

static void aur__scalars_event(const void *ctx, int i, aur__pb *ev)
{
    const aur__scalars *s = (const aur__scalars *)ctx;
    aur__scalar_event(ev, s->wall_time, s->step, s->tags[i], s->values[i]);
}

AURDEF int aur_events_scalar(const char *path, double wall_time, int64_t step, const char *tag, double value)
{
    if (!tag || !*tag) return aur__err(AUR_EINVAL, "%s: a scalar needs a tag", path);
    aur__scalars s = {wall_time, step, &tag, &value};
    return aur__events_write(path, "ab", 1, aur__scalars_event, &s);
}

/* A metrics line's numbers, written through one open of the file. */
AURDEF int aur_events_from_json(const char *path, double wall_time, const char *json_line)
{
    cJSON *j = aur__cjson_parse(json_line, strlen(json_line), NULL);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
    int rc = cJSON_IsNumber(st) ? 0 : aur__err(AUR_EFORMAT, "%s: a metrics line without a step: %.60s", path, json_line), n = 0;
    int cap = j ? cJSON_GetArraySize(j) : 0;
    const char **tags = (const char **)aur__calloc(sizeof(char *) * (size_t)(cap + 1), "a metrics line's tags");
    double *values = (double *)aur__calloc(sizeof(double) * (size_t)(cap + 1), "a metrics line's values");
    if (!rc && (!tags || !values)) rc = AUR_ENOMEM;
    for (const cJSON *it = j ? j->child : NULL; it && !rc; it = it->next)
        if (cJSON_IsNumber(it) && strcmp(it->string, "step")) tags[n] = it->string, values[n++] = it->valuedouble;
    aur__scalars s = {wall_time, rc ? 0 : (int64_t)st->valuedouble, tags, values};
    if (!rc) rc = aur__events_write(path, "ab", n, aur__scalars_event, &s);
    AUR_FREE(tags);
    AUR_FREE(values);
    cJSON_Delete(j);
    return rc;
}

/* ==== fine-tuning: the trainer ==== */


#define AUR__MAX_GROUPS 8
#define AUR__MAX_MAPS 8

/* A growable table of doubles, `cols` per row (the training history). */
typedef struct aur__table {
    double *v;
    int rows, cap, cols;
} aur__table;

static int aur__table_add(aur__table *t, const double *row)
{
    if (aur__grow((void **)&t->v, &t->cap, (t->rows + 1) * t->cols, sizeof(double))) return AUR_ENOMEM;
    memcpy(t->v + (size_t)t->rows * t->cols, row, sizeof(double) * (size_t)t->cols);
    t->rows++;
    return 0;
}

typedef struct aur__data {
    char **files;    /* a name of each series, for messages: its file, or its first file and how many more */
    char ***paths;   /* each series' files: one safetensors file, or NetCDF/Zarr files read together */
    int *n_paths;
    int n_files;
    char *renames;   /* data.rename as "file_name=aurora_name,..." (shared by train and val), or NULL */
    aur_window_ref *win; /* every window of the set: its series and first step */
    int n_win;
    aur_series *open;    /* evaluation reads here: the series read last, kept open, and its window buffers */
    int open_id;
    aur_window read;
} aur__data;

/* What a model family other than Aurora plugs into the loop (Surya's is in
   surya.h); Aurora's run uses the built-in windows and rollout (task NULL).
   Everything else, the optimiser and its groups, the schedule, the alarm,
   clipping, metrics.jsonl and TensorBoard, checkpoints and an exact resume,
   is the loop's own. */
#define AUR__MAX_METRICS 12
typedef struct aur__trainer_task {
    aur_tensor *(*train_loss)(aur_trainer *tr, int64_t step);  /* the loss of optimiser step `step` on tr->t (training mode set) */
    int (*eval)(aur_trainer *tr, double *loss, double *metrics); /* validation loss and the n_metrics task metrics */
    int n_metrics;
    const char *metric_names[AUR__MAX_METRICS];                 /* logged as "val/{name}" */
    int (*plot)(aur_trainer *tr);                                /* the task's figures beside curves.png, or NULL */
    int (*save)(const aur_trainer *tr, const char *dir);         /* extra files of a checkpoint being written, or NULL */
    void (*print_data)(const aur_trainer *tr, FILE *out);
    void (*free_ctx)(void *ctx);
} aur__trainer_task;

struct aur_trainer {
    const aur__trainer_task *task; /* NULL: an Aurora run */
    void *task_ctx;                /* the task's own state (owned: task->free_ctx) */
    cJSON *config;
    char run_id[24]; /* written into each checkpoint's state and optimiser files: a resume checks that they belong together */
    char base_dir[1024], out_dir[1024];
    aur_aurora_config mcfg;
    aur_device device; /* "device": where the model, its gradients and the optimiser live */
    aur_model *m;
    aur_optim *o;
    aur_tape *t;
    aur_load_report rep;
    char *new_params; /* the new variables' per-variable parameters, comma-joined */
    char *renames;    /* data.rename, "file_name=aurora_name,..." (NULL: none) */
    /* the model section as read (strings borrowed from config), before the model is built */
    const char *checkpoint, *train_only, *freeze;
    const cJSON *stats;
    int load_mode, zero_new_embeddings;
    /* data */
    aur__data train, val;
    int history, rollout, eval_windows;
    int prefetch;       /* training windows read ahead by the loader's thread (data.prefetch) */
    aur_loader *loader; /* made at the first step, when the step to start from is known */
    aur_check_opts check;
    /* optimisation */
    aur_optim_opts opt;
    double new_vars_lr; /* < 0: the new variables train at the rate of the rest */
    const cJSON *groups;
    int n_groups;
    char group_name[AUR__MAX_GROUPS][32];
    char *group_params[AUR__MAX_GROUPS]; /* owned patterns; group 0 = the rest */
    aur_lr_schedule sched;
    int64_t steps, step;
    uint64_t seed;
    double clip;
    int pure_bf16, autocast, checkpointing, offload;
    aur_grad_alarm alarm;
    /* output */
    int log_every, eval_every, save_every, plot_every, keep_last;
    int overwrite_output_dir; /* a fresh run may clear another run's checkpoints and metrics from output_dir */
    char map_vars[AUR__MAX_MAPS][AUR_NAME_LEN];
    int n_maps;
    double levels[AUR_MAX_LEVELS]; /* the first training series' pressure levels (map_vars are checked against them) */
    int n_levels;
    aur__table hist;     /* step, loss, grad norm, lr, group norms... */
    aur__table val_hist; /* step, loss, the task's metrics */
    int loss_mae;              /* "loss": "aurora_mae" (else the fixtures' MSE) */
    aur_aurora_mae_weights mae;
    aur_scores val_scores; /* the last evaluation's WeatherBench2 scores per variable, level and lead (Aurora) */
    double started, steps_at_start;
};

/* A run's id: 64 random bits in hex (the clock and the process id where
   /dev/urandom cannot be read). */
static void aur__new_run_id(char *id, size_t size)
{
    uint64_t r = 0;
    FILE *fp = fopen("/dev/urandom", "rb");
    if (!fp || fread(&r, sizeof r, 1, fp) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() * 0x9e3779b97f4a7c15ull);
    }
    if (fp) fclose(fp);
    snprintf(id, size, "%016llx", (unsigned long long)r);
}

/* ---- the JSON run config ---- */

/* A config path: relative ones are taken from the config file's directory. */
static int aur__path(const aur_trainer *tr, const char *rel, char *out, size_t size)
{
    int n = rel[0] == '/' || !tr->base_dir[0] ? snprintf(out, size, "%s", rel) : snprintf(out, size, "%s/%s", tr->base_dir, rel);
    return n >= 0 && (size_t)n < size ? 0 : aur__err(AUR_EINVAL, "run config: the path '%s' is too long", rel);
}

/* A copy of a pattern list with "@new_vars" replaced by the new variables'
   parameters (NULL in, NULL out). */
static char *aur__expand_new(const aur_trainer *tr, const char *patterns)
{
    if (!patterns) return NULL;
    const char *at = strstr(patterns, "@new_vars");
    size_t n = strlen(patterns) + strlen(tr->new_params) + 2;
    char *out = (char *)aur__malloc(n, "a pattern list");
    if (!out) return NULL;
    if (!at) snprintf(out, n, "%s", patterns);
    else snprintf(out, n, "%.*s%s%s", (int)(at - patterns), patterns, tr->new_params, at + strlen("@new_vars"));
    return out;
}

/* "model": {preset, kwargs, checkpoint, load, new_embeddings, stats, freeze, train_only}, read */
static int aur__trainer_model_config(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"preset", "kwargs", "checkpoint", "load", "new_embeddings", "stats", "freeze", "train_only",
                                       NULL};
    static const char *const loads[] = {"strict", "non-strict", "filtered", NULL}; /* aur_load_mode's order */
    static const char *const inits[] = {"random", "zero", NULL};
    const char *W = "run config: model", *preset = "aurora-small-pretrained";
    tr->load_mode = AUR_LOAD_NONSTRICT;
    if (!j) return aur__err(AUR_EINVAL, "run config: the 'model' section is required");
    int rc = aur__json_keys(j, W, keys);
    if (!rc) rc = aur__json_str(aur__json_at(j, "preset"), W, &preset);
    if (!rc) rc = aur__json_str(aur__json_at(j, "checkpoint"), W, &tr->checkpoint);
    if (!rc) rc = aur__json_enum(aur__json_at(j, "load"), W, loads, &tr->load_mode);
    if (!rc) rc = aur__json_enum(aur__json_at(j, "new_embeddings"), W, inits, &tr->zero_new_embeddings);
    if (!rc) rc = aur__json_str(aur__json_at(j, "train_only"), W, &tr->train_only);
    if (!rc) rc = aur__json_str(aur__json_at(j, "freeze"), W, &tr->freeze);
    if (!rc) rc = aur__json_pairs(tr->stats = aur__json_at(j, "stats"), W, "[location, scale]");
    /* aur_aurora_set_stats's rule, checked now rather than once the model is built */
    for (const cJSON *s = cJSON_IsObject(tr->stats) ? tr->stats->child : NULL; s && !rc; s = s->next) {
        char key[160];
        snprintf(key, sizeof key, "stats.%s", s->string);
        if (!aur__stats_usable(s->child->valuedouble, s->child->next->valuedouble))
            rc = aur__json_bad(s, W, key, "[location, scale] with a scale > 0");
    }
    if (!rc) rc = aur_aurora_preset(preset, &tr->mcfg);
    const cJSON *kw = aur__json_at(j, "kwargs");
    if (!rc && kw) rc = aur_aurora_config_json(kw, &tr->mcfg);
    if (tr->checkpointing) tr->mcfg.checkpoint = AUR_CHECKPOINT_ALL; /* the reference's default modules (model.kwargs may list others) */
    tr->mcfg.autocast = tr->autocast;
    return rc;
}

/* The model the section describes: built, its statistics set, the checkpoint loaded, what trains chosen. */
static int aur__trainer_model_build(aur_trainer *tr)
{
    int rc = 0, zero = tr->zero_new_embeddings;
    if (!(tr->m = aur_aurora_create(&tr->mcfg, tr->device, tr->seed))) rc = AUR_EINVAL;
    for (const cJSON *s = cJSON_IsObject(tr->stats) ? tr->stats->child : NULL; s && !rc; s = s->next)
        rc = aur_aurora_set_stats(tr->m, s->string, s->child->valuedouble, s->child->next->valuedouble);
    if (!rc && tr->checkpoint) {
        char path[2048];
        rc = aur__path(tr, tr->checkpoint, path, sizeof path);
        if (!rc) rc = aur_aurora_load(tr->m, path, (aur_load_mode)tr->load_mode, &tr->rep);
        if (!rc) tr->new_params = aur_aurora_new_var_params(tr->m, &tr->rep);
        if (!rc && !tr->new_params) rc = AUR_ENOMEM;
        /* the guide: zero new encoder embeddings leave the old variables' predictions unchanged */
        for (int i = 0; !rc && zero && i < aur_model_count(tr->m); i++) {
            const char *name = aur_model_at(tr->m, i)->name;
            if (aur_name_matches(tr->new_params, name) && aur_name_matches("encoder.*_token_embeds.weights.*", name)) {
                int hits = aur_model_fill(tr->m, name, 0);
                rc = hits < 0 ? hits : 0;
            }
        }
    }
    if (!rc && !tr->new_params) rc = (tr->new_params = aur__strdup("")) ? 0 : AUR_ENOMEM;
    char *only = rc ? NULL : aur__expand_new(tr, tr->train_only);
    char *freeze = rc ? NULL : aur__expand_new(tr, tr->freeze);
    if (!rc && only) {
        aur_model_freeze(tr->m, "*");
        rc = aur_model_unfreeze(tr->m, only) < 0 ? AUR_EINVAL : 0;
    }
    if (!rc && freeze) rc = aur_model_freeze(tr->m, freeze) < 0 ? AUR_EINVAL : 0;
    AUR_FREE(only);
    AUR_FREE(freeze);
    return rc;
}

/* One series: a file name, or a non-empty list of the NetCDF/Zarr files read together. */
static int aur__trainer_series(aur_trainer *tr, const cJSON *f, const char *key, aur__data *d, int i)
{
    const char *W = "run config: data";
    int n = cJSON_IsString(f) ? 1 : cJSON_IsArray(f) ? cJSON_GetArraySize(f) : -1;
    if (n < 1) return aur__json_bad(f, W, key, "a file name or a non-empty list of the files of one series");
    if (!(d->paths[i] = (char **)aur__calloc(sizeof(char *) * (size_t)n, "a file list"))) return AUR_ENOMEM;
    for (int k = 0; k < n; k++) {
        const cJSON *e = cJSON_IsString(f) ? f : cJSON_GetArrayItem(f, k);
        char path[2048], where[256];
        if (cJSON_IsString(f)) snprintf(where, sizeof where, "%s", key);
        else snprintf(where, sizeof where, "%s[%d]", key, k);
        if (!cJSON_IsString(e) || !e->valuestring[0]) return aur__json_bad(e, W, where, "a file name");
        if (aur__path(tr, e->valuestring, path, sizeof path)) return AUR_EINVAL;
        if (!(d->paths[i][k] = aur__strdup(path))) return AUR_ENOMEM;
        d->n_paths[i]++;
    }
    char label[2100];
    snprintf(label, sizeof label, n > 1 ? "%.2048s (+%d files)" : "%.2048s", d->paths[i][0], n - 1);
    return (d->files[i] = aur__strdup(label)) ? 0 : AUR_ENOMEM;
}

/* The series of a set: a file name, or a non-empty list of series (each a file name or a list of files). */
static int aur__trainer_files(aur_trainer *tr, const cJSON *v, aur__data *d)
{
    int n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1) return aur__json_bad(v, "run config: data", aur__json_key(v), "a file name or a non-empty list of them");
    d->files = (char **)aur__calloc(sizeof(char *) * (size_t)(n + 1), "a file list");
    d->paths = (char ***)aur__calloc(sizeof(char **) * (size_t)(n + 1), "a file list");
    d->n_paths = (int *)aur__calloc(sizeof(int) * (size_t)(n + 1), "a file list");
    if (!d->files || !d->paths || !d->n_paths) return AUR_ENOMEM;
    d->renames = tr->renames;
    for (int i = 0; i < n; i++, d->n_files++) {
        char key[256];
        snprintf(key, sizeof key, "%s[%d]", aur__json_key(v), i);
        int rc = aur__trainer_series(tr, cJSON_IsString(v) ? v : cJSON_GetArrayItem(v, i), key, d, i);
        if (rc) return d->n_files++, rc; /* this one freed with the rest */
    }
    return 0;
}

/* "rename": {"file_name": "aurora_name", ...} as "file_name=aurora_name,...". */
static int aur__trainer_renames(aur_trainer *tr, const cJSON *j)
{
    const char *W = "run config: data";
    if (!j) return 0;
    if (!cJSON_IsObject(j)) return aur__json_bad(j, W, "rename", "an object of file names to Aurora's names");
    aur__buf b;
    memset(&b, 0, sizeof b);
    for (const cJSON *e = j->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strpbrk(e->valuestring, ",=") || strpbrk(e->string, ",="))
            return AUR_FREE(b.p), aur__json_bad(e, W, "rename", "names (strings without ',' or '=')");
        aur__buf_printf(&b, "%s%s=%s", b.n ? "," : "", e->string, e->valuestring);
    }
    aur__buf_append(&b, "", 1);
    if (b.failed) return AUR_FREE(b.p), AUR_ENOMEM;
    tr->renames = b.p;
    return 0;
}

/* Reads every series once: checks it (refusing bad data with the variable's
   name) and lists its windows of history + rollout steps. */
/* Opens each series of a set (names, grid, levels and times checked), checks
   every value against the model's statistics a chunk at a time, and lists
   its windows; nothing is kept in memory but the list. */
static int aur__trainer_scan(aur_trainer *tr, aur__data *d, const char *what)
{
    int span = tr->history + tr->rollout;
    for (int f = 0; f < d->n_files; f++) {
        aur_series *s = aur_series_open((const char *const *)d->paths[f], d->n_paths[f], d->renames, NULL);
        if (!s) return AUR_EFORMAT;
        aur_check_report rep = {0, 0, 0, NULL};
        int rc = aur_aurora_check_series(tr->m, s, &tr->check, &rep), T = aur_series_length(s);
        double step = aur_series_step_seconds(s);
        if (rc == AUR_EFORMAT && rep.vars) {
            fprintf(stderr, "%s data %s:\n", what, d->files[f]);
            aur_check_report_print(&rep, stderr);
            char msg[1024];
            snprintf(msg, sizeof msg, "%.1000s", aur_last_error());
            rc = aur__err(AUR_EFORMAT, "%s: %s", d->files[f], msg);
        } else if (!rc && step > 0 && fabs(step - tr->mcfg.timestep_seconds) > 1e-3) {
            rc = aur__err(AUR_EFORMAT, "%s: its time steps are %g h apart; the model steps %g h (give the files every %g h)", d->files[f],
                          step / 3600, tr->mcfg.timestep_seconds / 3600, tr->mcfg.timestep_seconds / 3600);
        } else if (!rc && T < span) {
            rc = aur__err(AUR_EFORMAT, "%s: %d time steps; a window needs history %d + rollout %d", d->files[f], T, tr->history, tr->rollout);
        }
        if (!rc && d == &tr->train && f == 0) {
            aur_batch *first = aur_series_read(s, 0, 1, 0);
            rc = first ? 0 : AUR_EFORMAT;
            if (first) tr->n_levels = first->C, memcpy(tr->levels, first->levels, sizeof(double) * (size_t)first->C);
            aur_batch_free(first);
        }
        int n = rc ? 0 : T - span + 1;
        aur_check_report_free(&rep);
        aur_series_close(s);
        if (rc) return rc;
        aur_window_ref *w = (aur_window_ref *)AUR_REALLOC(d->win, sizeof(aur_window_ref) * (size_t)(d->n_win + n));
        if (!w) return aur__err(AUR_ENOMEM, "out of memory listing windows");
        d->win = w;
        for (int i = 0; i < n; i++) d->win[d->n_win].series = f, d->win[d->n_win++].start = i;
    }
    return d->n_files && !d->n_win ? aur__err(AUR_EFORMAT, "%s data: no windows", what) : 0;
}

/* "data": {train, val, rename, history, rollout_steps, eval_windows, nan_ok, outlier_z} */
static int aur__trainer_data(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"train", "val", "rename", "history", "rollout_steps", "eval_windows", "nan_ok", "outlier_z", "prefetch", NULL};
    const char *W = "run config: data";
    if (!j) return aur__err(AUR_EINVAL, "run config: the 'data' section is required");
    tr->history = tr->mcfg.max_history_size, tr->rollout = 1, tr->eval_windows = 8, tr->prefetch = 2;
    tr->check = aur_check_defaults();
    int rc = aur__json_keys(j, W, keys);
    if (!rc) rc = aur__json_int(aur__json_at(j, "history"), W, 1, tr->mcfg.max_history_size, &tr->history);
    if (!rc) rc = aur__json_int(aur__json_at(j, "rollout_steps"), W, 1, AUR_MAX_ROLLOUT, &tr->rollout);
    if (!rc) rc = aur__json_int(aur__json_at(j, "prefetch"), W, 0, 64, &tr->prefetch);
    if (!rc) rc = aur__json_int(aur__json_at(j, "eval_windows"), W, 1, 1e6, &tr->eval_windows);
    if (!rc) rc = aur__json_num(aur__json_at(j, "outlier_z"), W, 1, 1e9, &tr->check.outlier_z);
    if (!rc) rc = aur__json_str(aur__json_at(j, "nan_ok"), W, &tr->check.nan_ok);
    const cJSON *train = aur__json_at(j, "train"), *val = aur__json_at(j, "val");
    if (!rc) rc = aur__trainer_renames(tr, aur__json_at(j, "rename"));
    if (!rc && !train) rc = aur__err(AUR_EINVAL, "run config: data.train is required");
    if (!rc) rc = aur__trainer_files(tr, train, &tr->train);
    if (!rc && val) rc = aur__trainer_files(tr, val, &tr->val);
    return rc;
}

static int aur__trainer_group(aur_trainer *tr, const char *name, const char *params, double lr, double wd)
{
    if (tr->n_groups >= AUR__MAX_GROUPS) return aur__err(AUR_EINVAL, "run config: at most %d parameter groups", AUR__MAX_GROUPS - 1);
    if (!params[0]) return 0; /* e.g. no new variables: no group */
    int g = aur_optim_add_group(tr->o, params, lr, wd);
    if (g < 0) return g;
    snprintf(tr->group_name[tr->n_groups], sizeof tr->group_name[0], "%s", name);
    tr->group_params[tr->n_groups++] = aur__strdup(params);
    return 0;
}

/* One entry of optimizer.groups: {name, params, lr, weight_decay}, read
   (with the optimiser's rate and decay as defaults); add: also made a group. */
static int aur__trainer_group_config(aur_trainer *tr, int i, int add)
{
    static const char *const gkeys[] = {"name", "params", "lr", "weight_decay", NULL};
    const cJSON *g = cJSON_GetArrayItem(tr->groups, i);
    const char *params = NULL, *name = NULL;
    double lr = tr->opt.lr, wd = tr->opt.weight_decay;
    char gw[64];
    snprintf(gw, sizeof gw, "run config: optimizer.groups[%d]", i);
    int rc = aur__json_keys(g, gw, gkeys);
    if (!rc) rc = aur__json_num(aur__json_at(g, "lr"), gw, 0, 10, &lr);
    if (!rc) rc = aur__json_num(aur__json_at(g, "weight_decay"), gw, 0, 10, &wd);
    if (!rc) rc = aur__json_str(aur__json_at(g, "params"), gw, &params);
    if (!rc) rc = aur__json_str(aur__json_at(g, "name"), gw, &name);
    if (!rc && !params) rc = aur__err(AUR_EINVAL, "%s: 'params' (name patterns) is required", gw);
    if (!rc && add) rc = aur__trainer_group(tr, name ? name : params, params, lr, wd);
    return rc;
}

/* "optimizer": {name, lr, weight_decay, betas, eps, offload, new_vars_lr, groups: [{name, params, lr, weight_decay}]}, read */
static int aur__trainer_optim_config(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"name", "lr", "weight_decay", "betas", "eps", "offload", "new_vars_lr", "groups", NULL};
    static const char *const names[] = {"adam", "adamw", "adafactor", NULL}; /* aur_optim_kind's order */
    const char *W = "run config: optimizer";
    int kind = AUR_ADAMW, n = 0, n_groups = 0;
    int rc = j ? aur__json_keys(j, W, keys) : 0;
    if (!rc) rc = aur__json_enum(aur__json_at(j, "name"), W, names, &kind);
    aur_optim_opts o = kind == AUR_ADAM ? aur_adam_defaults() : kind == AUR_ADAFACTOR ? aur_adafactor_defaults() : aur_adamw_defaults();
    if (o.kind != AUR_ADAFACTOR) o.lr = 3e-4; /* the guide's rate for the pretrained weights */
    double betas[2] = {o.beta1, o.beta2};
    tr->new_vars_lr = -1;
    if (!rc) rc = aur__json_num(aur__json_at(j, "lr"), W, 0, 10, &o.lr);
    if (!rc) rc = aur__json_num(aur__json_at(j, "weight_decay"), W, 0, 10, &o.weight_decay);
    if (!rc) rc = aur__json_num(aur__json_at(j, "eps"), W, 0, 1, &o.eps);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "offload"), W, &tr->offload);
    if (!rc) rc = aur__json_nums(aur__json_at(j, "betas"), W, betas, 2, 2, &n);
    if (!rc) rc = aur__json_num(aur__json_at(j, "new_vars_lr"), W, 0, 10, &tr->new_vars_lr);
    tr->groups = aur__json_at(j, "groups");
    if (!rc && tr->groups) rc = aur__json_len(tr->groups, W, 0, AUR__MAX_GROUPS - 1 - (tr->new_vars_lr >= 0), "groups", &n_groups);
    o.beta1 = betas[0], o.beta2 = betas[1];
    o.offload = tr->offload; /* on a GPU: the state in pinned host memory; on the CPU it is there already */
    tr->opt = o;
    for (int i = 0; !rc && i < n_groups; i++) rc = aur__trainer_group_config(tr, i, 0);
    return rc;
}

/* The optimiser: the rest, the new variables' group, the config's groups. */
static int aur__trainer_optim_build(aur_trainer *tr)
{
    int rc = (tr->o = aur_optim_create(tr->m, &tr->opt)) ? 0 : AUR_EINVAL;
    snprintf(tr->group_name[0], sizeof tr->group_name[0], "rest");
    tr->n_groups = 1;
    if (!rc && tr->new_vars_lr >= 0) rc = aur__trainer_group(tr, "new_vars", tr->new_params, tr->new_vars_lr, tr->opt.weight_decay);
    for (int i = 0; !rc && i < cJSON_GetArraySize(tr->groups); i++) rc = aur__trainer_group_config(tr, i, 1);
    return rc;
}

/* "schedule": {kind, warmup_steps, final_factor} over the run's steps */
static int aur__trainer_schedule(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"kind", "warmup_steps", "final_factor", NULL};
    static const char *const kinds[] = {"constant", "linear", "cosine", NULL}; /* aur_lr_kind's order */
    const char *W = "run config: schedule";
    int kind = AUR_LR_CONSTANT;
    tr->sched.total_steps = tr->steps;
    tr->sched.final_factor = 0;
    int rc = j ? aur__json_keys(j, W, keys) : 0;
    if (!rc) rc = aur__json_enum(aur__json_at(j, "kind"), W, kinds, &kind);
    if (!rc) rc = aur__json_i64(aur__json_at(j, "warmup_steps"), W, 0, 1e12, &tr->sched.warmup_steps);
    if (!rc) rc = aur__json_num(aur__json_at(j, "final_factor"), W, 0, 1, &tr->sched.final_factor);
    tr->sched.kind = (aur_lr_kind)kind;
    return rc;
}

/* The top-level keys: run length, numerics, stability and output. */
static int aur__trainer_top(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"model", "data", "optimizer", "schedule", "steps", "seed", "clip_grad_norm",
                                       "activation_checkpointing", "autocast", "pure_bf16", "alarm", "log_every", "eval_every",
                                       "save_every", "plot_every", "keep_last", "output_dir", "overwrite_output_dir", "map_vars", "device",
                                       "loss", NULL};
    static const char *const akeys[] = {"window", "z", "skip", NULL};
    static const char *const devices[] = {"cpu", "cuda", NULL}; /* aur_device's order */
    const char *W = "run config", *A = "run config: alarm", *out = "run-out";
    int64_t seed = 0;
    int window = 50, skip = 1, device = AUR_CPU;
    double z = 6;
    tr->steps = 100, tr->log_every = 1, tr->keep_last = 2;
    int rc = aur__json_keys(j, W, keys);
    if (!rc) rc = aur__json_i64(aur__json_at(j, "steps"), W, 0, 1e12, &tr->steps);
    if (!rc) rc = aur__json_i64(aur__json_at(j, "seed"), W, 0, 9007199254740992.0, &seed);
    if (!rc) rc = aur__json_num(aur__json_at(j, "clip_grad_norm"), W, 0, 1e30, &tr->clip);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "activation_checkpointing"), W, &tr->checkpointing);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "autocast"), W, &tr->autocast);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "pure_bf16"), W, &tr->pure_bf16);
    if (!rc) rc = aur__json_int(aur__json_at(j, "log_every"), W, 1, INT_MAX, &tr->log_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "eval_every"), W, 0, INT_MAX, &tr->eval_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "save_every"), W, 0, INT_MAX, &tr->save_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "plot_every"), W, 0, INT_MAX, &tr->plot_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "keep_last"), W, 1, 1e6, &tr->keep_last);
    if (!rc) rc = aur__json_str(aur__json_at(j, "output_dir"), W, &out);
    if (!rc && !out[0]) rc = aur__json_bad(aur__json_at(j, "output_dir"), W, "output_dir", "a directory name");
    if (!rc) rc = aur__json_enum(aur__json_at(j, "device"), W, devices, &device);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "overwrite_output_dir"), W, &tr->overwrite_output_dir);
    if (!rc) rc = aur__json_names(aur__json_at(j, "map_vars"), W, tr->map_vars[0], AUR_NAME_LEN, AUR__MAX_MAPS, &tr->n_maps);
    const cJSON *alarm = aur__json_at(j, "alarm");
    if (!rc && alarm) rc = aur__json_keys(alarm, A, akeys);
    if (!rc) rc = aur__json_int(aur__json_at(alarm, "window"), A, 2, AUR_ALARM_WINDOW, &window);
    if (!rc) rc = aur__json_num(aur__json_at(alarm, "z"), A, 0.1, 1e6, &z);
    if (!rc) rc = aur__json_flag(aur__json_at(alarm, "skip"), A, &skip);
    tr->device = (aur_device)device;
    if (!rc && tr->device == AUR_CUDA && !aur_cuda_available())
        rc = aur__err(AUR_EUNSUPPORTED, "run config: device \"cuda\", but %s", aur__cuda_build() ? "no GPU is visible" :
                      "this program was built without CUDA (compile the implementation with nvcc -DAURORA_CUDA)");
    aur_grad_alarm_init(&tr->alarm, window, z, skip);
    if (tr->pure_bf16) tr->autocast = 1;
    tr->seed = (uint64_t)seed;
    if (!rc) rc = aur__path(tr, out, tr->out_dir, sizeof tr->out_dir);
    return rc;
}

static int aur__mkdirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) return aur__err(AUR_EIO, "cannot create directory %s: %s", path, strerror(errno));
    return 0;
}

/* One group's "surf_weights" / "atmos_weights": {"name": weight, ...} over the defaults. */
static int aur__trainer_mae_weights(const cJSON *j, const char *key, aur_var_list *names, double *weights)
{
    const char *W = "run config: loss";
    const cJSON *o = aur__json_at(j, key);
    if (o && !cJSON_IsObject(o)) return aur__json_bad(o, W, key, "an object of variable names and weights");
    for (const cJSON *e = o ? o->child : NULL; e; e = e->next) {
        char where[AUR_NAME_LEN + 32];
        snprintf(where, sizeof where, "%s.%s", key, e->string);
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0) || !isfinite(e->valuedouble)) return aur__json_bad(e, W, where, "a weight >= 0");
        int i = aur__vl_find(names, e->string);
        if (i < 0 && (strlen(e->string) >= AUR_NAME_LEN || aur__vl_add(names, e->string))) return aur__json_bad(e, W, where, "a variable name");
        weights[i < 0 ? names->n - 1 : i] = e->valuedouble;
    }
    return 0;
}

/* "loss": "mse" (default) or {"name": "aurora_mae", surf_weight, atmos_weight, dataset_weight, latitude_weights,
   surf_weights, atmos_weights}: the paper's loss with its defaults, each of them overridable. */
static int aur__trainer_loss_config(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"name", "surf_weight", "atmos_weight", "dataset_weight", "latitude_weights", "surf_weights", "atmos_weights", NULL};
    static const char *const names[] = {"mse", "aurora_mae", NULL};
    const char *W = "run config: loss";
    aur_aurora_mae_defaults(&tr->mae);
    if (!j) return 0;
    int rc = cJSON_IsString(j) ? aur__json_enum(j, "run config", names, &tr->loss_mae) : 0;
    if (cJSON_IsString(j)) return rc;
    if (!cJSON_IsObject(j)) return aur__json_bad(j, "run config", "loss", "\"mse\", \"aurora_mae\" or an object with a name");
    rc = aur__json_keys(j, W, keys);
    if (!rc) rc = aur__json_enum(aur__json_at(j, "name"), W, names, &tr->loss_mae);
    if (!rc) rc = aur__json_num(aur__json_at(j, "surf_weight"), W, 0, 1e6, &tr->mae.surf);
    if (!rc) rc = aur__json_num(aur__json_at(j, "atmos_weight"), W, 0, 1e6, &tr->mae.atmos);
    if (!rc) rc = aur__json_num(aur__json_at(j, "dataset_weight"), W, 0, 1e6, &tr->mae.dataset);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "latitude_weights"), W, &tr->mae.latitude);
    if (!rc) rc = aur__trainer_mae_weights(j, "surf_weights", &tr->mae.surf_names, tr->mae.surf_weight);
    if (!rc) rc = aur__trainer_mae_weights(j, "atmos_weights", &tr->mae.atmos_names, tr->mae.atmos_weight);
    if (!rc && !tr->loss_mae && cJSON_GetArraySize(j) > (aur__json_at(j, "name") != NULL))
        rc = aur__err(AUR_EINVAL, "run config: loss: weights are options of \"name\": \"aurora_mae\"; the MSE takes none");
    return rc;
}

/* Every key of the run config (tr->config), read and checked before
   anything is built or read from disk: a typo in the last section costs
   no time. Files, variables and output_dir are checked next, as the
   trainer is made, all before step 1. */
static int aur__trainer_read_config(aur_trainer *tr)
{
    const cJSON *c = tr->config;
    int rc = aur__json_unique(c, "run config");
    if (!rc) rc = aur__trainer_top(tr, c);
    if (!rc) rc = aur__trainer_model_config(tr, aur__json_at(c, "model"));
    if (!rc) rc = aur__trainer_data(tr, aur__json_at(c, "data"));
    if (!rc) rc = aur__trainer_optim_config(tr, aur__json_at(c, "optimizer"));
    if (!rc) rc = aur__trainer_schedule(tr, aur__json_at(c, "schedule"));
    if (!rc) rc = aur__trainer_loss_config(tr, aur__json_at(c, "loss"));
    if (!rc && tr->loss_mae && tr->check.nan_ok && tr->check.nan_ok[0])
        rc = aur__err(AUR_EINVAL, "run config: loss \"aurora_mae\" needs finite data, but data.nan_ok lets NaN in (%s); the default MSE "
                      "leaves non-finite cells out", tr->check.nan_ok);
    return rc;
}

/* Every map_vars entry names a predicted variable ("2t", or "t@850" at a level
   of the data): a typo must not wait for the last step's plot to fail. */
static int aur__trainer_check_maps(const aur_trainer *tr)
{
    const aur_aurora_config *c = &tr->mcfg;
    for (int i = 0; i < tr->n_maps; i++) {
        char var[AUR_NAME_LEN];
        snprintf(var, sizeof var, "%s", tr->map_vars[i]);
        char *at = strchr(var, '@');
        if (at) *at++ = 0;
        int in_atmos = aur__vl_find(&c->atmos_vars, var) >= 0, ok = at ? in_atmos : in_atmos || aur__vl_find(&c->surf_vars, var) >= 0;
        for (int k = 0, found = 0; ok && at && !found; k++) {
            if (k == tr->n_levels) ok = 0;
            else found = tr->levels[k] == atof(at);
        }
        if (!ok)
            return aur__err(AUR_EINVAL, "run config: map_vars: '%s' is not a predicted variable (a surface variable, or an atmospheric one as 'name@level' "
                            "at a level of the data)", tr->map_vars[i]);
    }
    return 0;
}

/* output_dir is a directory this run can write, before step 1 rather than at the first save. */
static int aur__trainer_check_output(const aur_trainer *tr)
{
    char probe[1100];
    struct stat st;
    int rc = aur__mkdirs(tr->out_dir);
    if (!rc && (stat(tr->out_dir, &st) || !S_ISDIR(st.st_mode))) rc = aur__err(AUR_EINVAL, "run config: output_dir %s is not a directory", tr->out_dir);
    snprintf(probe, sizeof probe, "%s/.write-test", tr->out_dir);
    FILE *fp = rc ? NULL : fopen(probe, "w");
    if (!rc && (!fp || fclose(fp)))
        rc = aur__err(AUR_EIO, "run config: output_dir %s is not writable: %s", tr->out_dir, strerror(errno));
    if (fp) remove(probe);
    return rc;
}

/* A trainer holding a copy of the config and a fresh run id, nothing built yet. */
static aur_trainer *aur__trainer_alloc(const cJSON *config, const char *base_dir)
{
    aur_trainer *tr = (aur_trainer *)aur__calloc(sizeof *tr, "a trainer");
    if (!tr) return NULL;
    snprintf(tr->base_dir, sizeof tr->base_dir, "%s", base_dir ? base_dir : "");
    aur__new_run_id(tr->run_id, sizeof tr->run_id);
    if (!(tr->config = cJSON_Duplicate(config, 1))) {
        AUR_FREE(tr);
        return NULL;
    }
    return tr;
}

/* The last checks and pieces every run needs once its model and optimiser
   are built (rc: how the building went); frees tr and returns NULL on error. */
static aur_trainer *aur__trainer_finish(aur_trainer *tr, int rc)
{
    if (!rc) rc = aur__trainer_check_output(tr);
    if (!rc && !(tr->t = aur_tape_create())) rc = AUR_ENOMEM;
    tr->hist.cols = 4 + tr->n_groups;
    tr->val_hist.cols = 2 + (tr->task ? tr->task->n_metrics : 0);
    if (rc) {
        aur_trainer_free(tr);
        return NULL;
    }
    return tr;
}

AURDEF aur_trainer *aur_trainer_create_json(const cJSON *config, const char *base_dir)
{
    aur_trainer *tr = aur__trainer_alloc(config, base_dir);
    if (!tr) return NULL;
    int rc = aur__trainer_read_config(tr);
    if (!rc) rc = aur__trainer_model_build(tr);
    if (!rc) rc = aur__trainer_scan(tr, &tr->train, "training");
    if (!rc) rc = aur__trainer_scan(tr, &tr->val, "validation");
    if (!rc) rc = aur__trainer_optim_build(tr);
    if (!rc) rc = aur__trainer_check_maps(tr);
    return aur__trainer_finish(tr, rc);
}

/* A config file's directory, for its relative paths. */
static void aur__config_dir(const char *config_path, char *dir, size_t size)
{
    snprintf(dir, size, "%s", config_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else dir[0] = 0;
}

/* A trainer from a config file, its relative paths taken from the file's directory (Aurora's and Surya's creators). */
static aur_trainer *aur__trainer_from_file(const char *config_path, aur_trainer *(*create_json)(const cJSON *, const char *))
{
    cJSON *j = aur_json_load(config_path);
    if (!j) return NULL;
    char dir[1024];
    aur__config_dir(config_path, dir, sizeof dir);
    aur_trainer *tr = create_json(j, dir);
    cJSON_Delete(j);
    return tr;
}

AURDEF aur_trainer *aur_trainer_create(const char *config_path) { return aur__trainer_from_file(config_path, aur_trainer_create_json); }

static void aur__data_free(aur__data *d)
{
    for (int i = 0; i < d->n_files; i++) {
        for (int k = 0; d->paths && k < d->n_paths[i]; k++) AUR_FREE(d->paths[i][k]);
        if (d->paths) AUR_FREE(d->paths[i]);
        AUR_FREE(d->files[i]);
    }
    AUR_FREE(d->files);
    AUR_FREE(d->paths);
    AUR_FREE(d->n_paths);
    AUR_FREE(d->win);
    aur_window_free(&d->read);
    aur_series_close(d->open);
}

AURDEF void aur_trainer_free(aur_trainer *tr)
{
    if (!tr) return;
    aur_loader_free(tr->loader); /* first: its thread reads the training set */
    const aur__trainer_task *task = tr->task;
    tr->task = NULL; /* a task may keep its hooks in its own state */
    if (task && task->free_ctx) task->free_ctx(tr->task_ctx);
    cJSON_Delete(tr->config);
    aur_optim_free(tr->o);
    aur_tape_free(tr->t);
    aur_scores_free(&tr->val_scores);
    aur_model_free(tr->m);
    aur_load_report_free(&tr->rep);
    AUR_FREE(tr->new_params);
    AUR_FREE(tr->renames);
    aur__data_free(&tr->train);
    aur__data_free(&tr->val);
    for (int g = 0; g < tr->n_groups; g++) AUR_FREE(tr->group_params[g]);
    AUR_FREE(tr->hist.v);
    AUR_FREE(tr->val_hist.v);
    AUR_FREE(tr);
}

AURDEF aur_model *aur_trainer_model(const aur_trainer *tr) { return tr ? tr->m : NULL; }
AURDEF int64_t aur_trainer_steps_done(const aur_trainer *tr) { return tr ? tr->step : 0; }

#define AUR__EVENTS_FILE "events.out.tfevents.aurora" /* TensorBoard finds files named *tfevents* */

/* ---- the setup, printed ---- */

/* Prints names with every run of digits as '*', each pattern once with its
   count: 64 LoRA matrices read as four lines. */
static void aur__print_patterns(char *const *names, int n, FILE *out)
{
    char(*pat)[160] = (char(*)[160])aur__calloc(sizeof *pat * (size_t)(n + 1), "name patterns");
    int *count = (int *)aur__calloc(sizeof(int) * (size_t)(n + 1), "name patterns");
    int k = 0;
    for (int i = 0; pat && count && i < n; i++) {
        char buf[160];
        size_t o = 0;
        for (const char *s = names[i]; *s && o + 2 < sizeof buf; s++) {
            if (isdigit((unsigned char)*s)) {
                while (isdigit((unsigned char)s[1])) s++;
                buf[o++] = '*';
            } else buf[o++] = *s;
        }
        buf[o] = 0;
        int j = 0;
        while (j < k && strcmp(pat[j], buf)) j++;
        if (j == k) memcpy(pat[k++], buf, sizeof buf);
        count[j]++;
    }
    for (int j = 0; j < k; j++) {
        if (count[j] > 1) fprintf(out, "    %s  (%d tensors)\n", pat[j], count[j]);
        else fprintf(out, "    %s\n", pat[j]);
    }
    AUR_FREE(pat);
    AUR_FREE(count);
}

AURDEF void aur_trainer_print_setup(const aur_trainer *tr, FILE *out)
{
    const aur_load_report *r = &tr->rep;
    fprintf(out, "model: %lld parameters (%lld trainable)\n", (long long)aur_model_numel(tr->m, 0), (long long)aur_model_numel(tr->m, 1));
    if (r->n_loaded || r->n_missing || r->n_unexpected) {
        fprintf(out, "checkpoint: %d tensors loaded, %d new (not in the checkpoint), %d in the checkpoint but not the model\n",
                r->n_loaded, r->n_missing, r->n_unexpected);
        if (r->n_missing) fprintf(out, "  new:\n");
        aur__print_patterns(r->missing, r->n_missing, out);
        if (r->n_unexpected) fprintf(out, "  unused from the checkpoint:\n");
        aur__print_patterns(r->unexpected, r->n_unexpected, out);
    }
    aur_model_print_trainable(tr->m, r, out);
    fprintf(out, "optimiser groups:");
    for (int g = 0; g < tr->n_groups; g++) fprintf(out, "%s %s (lr %g)", g ? "," : "", tr->group_name[g], aur_optim_group_lr(tr->o, g));
    fprintf(out, "\n");
    if (tr->task) {
        tr->task->print_data(tr, out);
        return;
    }
    fprintf(out, "data: %d training windows from %d files, %d validation windows; history %d, rollout %d step%s; %d read ahead\n",
            tr->train.n_win, tr->train.n_files, tr->val.n_win, tr->history, tr->rollout, tr->rollout > 1 ? "s" : "", tr->prefetch);
}

/* ---- one step ---- */

/* Items first..first+count-1 of epoch `epoch`'s shuffle of n items, into
   out: a fresh permutation every epoch, a pure function of (seed, epoch) so
   a resumed run sees the same order. (The positions themselves where memory
   is short.) */
static void aur__shuffled(uint64_t seed, int64_t epoch, int n, int first, int count, int64_t *out)
{
    aur__rng r = {aur__mix64(seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch + 1)};
    int *perm = (int *)aur__malloc(sizeof(int) * (size_t)n, "a shuffle");
    for (int i = 0; perm && i < n; i++) perm[i] = i;
    for (int i = n - 1; perm && i > 0; i--) {
        int k = (int)(aur__rng_uniform(&r) * (i + 1)), s = perm[i];
        perm[i] = perm[k], perm[k] = s;
    }
    for (int i = 0; i < count; i++) out[i] = perm ? perm[first + i] : first + i;
    AUR_FREE(perm);
}

/* The training order, the loader's: every window once per epoch, shuffled. */
static aur_window_ref aur__train_order(void *ctx, int64_t step)
{
    const aur_trainer *tr = (const aur_trainer *)ctx;
    int n = tr->train.n_win;
    int64_t item;
    aur__shuffled(tr->seed, step / n, n, (int)(step % n), 1, &item);
    return tr->train.win[item];
}

/* The training window of a step, read ahead by the loader (made at the first
   step asked for, so that a resumed run starts reading where it resumes). */
static const aur_window *aur__train_window(aur_trainer *tr, int64_t step)
{
    if (!tr->loader) {
        int on_gpu = tr->m->n && tr->m->params[0]->device == AUR_CUDA; /* pinned windows copy to the GPU directly */
        aur_loader_opts o = {tr->history, tr->rollout, tr->mcfg.timestep_seconds, tr->prefetch, on_gpu, tr->train.renames};
        tr->loader = aur_loader_create(tr->train.paths, tr->train.n_paths, tr->train.n_files, aur__train_order, tr, &o);
        if (!tr->loader) return NULL;
    }
    return aur_loader_get(tr->loader, step);
}

/* Seconds the run has waited for training windows so far. */
static double aur__data_waited(aur_trainer *tr)
{
    aur_loader_stats st = {0, 0, 0, 0};
    if (tr->loader) aur_loader_stats_get(tr->loader, &st);
    return st.wait_seconds;
}

/* An evaluation window, read now from its series (kept open for the next). */
static const aur_window *aur__read_window(const aur_trainer *tr, aur__data *d, aur_window_ref ref)
{
    if (!d->open || d->open_id != ref.series) {
        aur_series_close(d->open);
        d->open = aur_series_open((const char *const *)d->paths[ref.series], d->n_paths[ref.series], d->renames, NULL);
        d->open_id = ref.series;
        if (!d->open) return NULL;
    }
    return aur_window_read(d->open, ref, tr->history, tr->rollout, tr->mcfg.timestep_seconds, 0, &d->read) ? NULL : &d->read;
}

/* Forward over a window's rollout and the mean loss of its steps; NULL on error. */
static aur_tensor *aur__rollout_loss(aur_trainer *tr, const aur_window *w, aur_batch **first_pred, aur_scores *scores)
{
    if (!w) return NULL;
    double dt = tr->mcfg.timestep_seconds;
    aur_batch *preds[AUR_MAX_ROLLOUT] = {NULL};
    aur_tensor *loss = NULL;
    int ok = !aur_aurora_rollout(tr->m, tr->t, w->input, tr->rollout, preds);
    for (int k = 0; ok && k < tr->rollout; k++) {
        const aur_batch *target = w->target[k];
        aur_tensor *l = tr->loss_mae ? aur_aurora_loss_mae(tr->m, tr->t, preds[k], target, &tr->mae) : aur_aurora_loss(tr->m, tr->t, preds[k], target);
        ok = l != NULL;
        /* WeatherBench2's scores of each lead time, from predictions in host memory */
        if (ok && scores && preds[k]->surf_names.n && preds[k]->surf[0]->device == AUR_CPU && preds[k]->B == 1 && !preds[k]->lat_2d && !preds[k]->lon_2d)
            ok = !aur_scores_add(scores, (k + 1) * dt / 3600, preds[k], target, 0, NULL, 0);
        if (ok) loss = loss ? aur_add(tr->t, loss, l) : l;
    }
    if (ok && tr->rollout > 1) loss = aur_scale(tr->t, loss, 1.0 / tr->rollout);
    for (int k = 0; k < tr->rollout; k++) {
        if (k == 0 && first_pred && ok) *first_pred = preds[k];
        else aur_batch_free(preds[k]);
    }
    return ok ? loss : NULL;
}

/* Rounds the trainable weights to BF16: what a pure-BF16 run stores. */
static int aur__round_params_bf16(aur_model *m)
{
    for (int i = 0; i < m->n; i++) {
        aur_tensor *p = m->params[i];
        if (!p->requires_grad) continue;
        if (p->device == AUR_CUDA) {
            int rc = AUR__GPU(aur__cuda_round, (float *)p->data, (const float *)p->data, 0, p->numel);
            if (rc) return rc;
            continue;
        }
        aur_real *v = aur_tensor_f32(p);
        for (int64_t k = 0; k < p->numel; k++) v[k] = aur_round_bf16(v[k]);
    }
    return 0;
}

/* Group norms: group 0 ("rest") is what the named groups leave of the total. */
static void aur__group_norms(const aur_trainer *tr, double total, double *norms)
{
    double named = 0;
    for (int g = 1; g < tr->n_groups; g++) {
        norms[g] = aur_grad_norm(tr->m, tr->group_params[g]);
        named += norms[g] * norms[g];
    }
    norms[0] = isfinite(total) ? sqrt(fmax(0, total * total - named)) : total;
}

AURDEF int aur_trainer_step(aur_trainer *tr, aur_step_info *info)
{
    aur_step_info si;
    memset(&si, 0, sizeof si);
    double t0 = aur__wall();
    aur_tape_reset(tr->t);
    aur_tape_set_grad(tr->t, 1);
    aur_tape_set_training(tr->t, 1);
    aur_tape_set_autocast(tr->t, 0); /* the model's cfg.autocast turns it on around the backbone only, as the reference's Aurora.forward */
    aur_tape_seed(tr->t, aur__mix64(tr->seed + 0x51ED270B27u * (uint64_t)(tr->step + 1)));
    aur_model_zero_grad(tr->m);
    double waited = aur__data_waited(tr);
    aur_tensor *loss = tr->task ? tr->task->train_loss(tr, tr->step) : aur__rollout_loss(tr, aur__train_window(tr, tr->step), NULL, NULL);
    si.data_seconds = aur__data_waited(tr) - waited;
    if (!loss) return AUR_EINVAL;
    int rc = aur_backward(tr->t, loss);
    if (rc) return rc;
    si.loss = aur__value(loss);
    double norms[AUR__MAX_GROUPS];
    si.grad_norm = aur_grad_norm(tr->m, NULL);
    aur__group_norms(tr, si.grad_norm, norms);
    const char *names[AUR__MAX_GROUPS];
    for (int g = 0; g < tr->n_groups; g++) names[g] = tr->group_name[g];
    si.alarm = aur_grad_alarm_check(&tr->alarm, isfinite(si.loss) ? si.grad_norm : NAN, norms, names, tr->n_groups, si.alarm_msg,
                                    sizeof si.alarm_msg);
    if (si.alarm && !tr->alarm.skip && !(isfinite(si.loss) && isfinite(si.grad_norm)))
        return aur__err(AUR_ENAN, "step %lld: %s; stopping (alarm.skip is off)", (long long)tr->step + 1, si.alarm_msg);
    si.skipped = si.alarm && tr->alarm.skip;
    aur_optim_set_lr_factor(tr->o, aur_lr_factor(&tr->sched, tr->step));
    si.lr = aur_optim_group_lr(tr->o, 0);
    if (!si.skipped && tr->clip > 0) rc = aur_clip_grad_norm(tr->m, tr->clip, NULL);
    if (!si.skipped && !rc) rc = aur_optim_step(tr->o);
    if (rc) return rc;
    if (!si.skipped && tr->pure_bf16 && (rc = aur__round_params_bf16(tr->m))) return rc;
    tr->step++;
    si.step = tr->step;
    si.seconds = aur__wall() - t0;
    double row[4 + AUR__MAX_GROUPS] = {(double)si.step, si.loss, si.grad_norm, si.lr};
    for (int g = 0; g < tr->n_groups; g++) row[4 + g] = norms[g];
    rc = aur__table_add(&tr->hist, row);
    if (info) *info = si;
    return rc;
}

/* ---- evaluation ---- */

/* A task's evaluation: its loss and metrics as one row of the validation history. */
static int aur__task_eval(aur_trainer *tr, double *loss)
{
    double row[2 + AUR__MAX_METRICS] = {(double)tr->step};
    aur_tape_reset(tr->t);
    aur_tape_set_grad(tr->t, 0);
    aur_tape_set_training(tr->t, 0);
    int rc = tr->task->eval(tr, loss, row + 2);
    aur_tape_reset(tr->t);
    row[1] = *loss;
    return rc ? rc : aur__table_add(&tr->val_hist, row);
}

AURDEF int aur_trainer_eval(aur_trainer *tr, double *loss)
{
    if (tr->task) return aur__task_eval(tr, loss);
    aur__data *d = tr->val.n_win ? &tr->val : &tr->train;
    int n = d->n_win < tr->eval_windows ? d->n_win : tr->eval_windows;
    double sum = 0;
    aur_scores_free(&tr->val_scores);
    for (int i = 0; i < n; i++) {
        aur_tape_reset(tr->t);
        aur_tape_set_grad(tr->t, 0);
        aur_tape_set_training(tr->t, 0);
        aur_tape_set_autocast(tr->t, 0);
        /* spread the evaluated windows over the whole set */
        aur_tensor *l = aur__rollout_loss(tr, aur__read_window(tr, d, d->win[(int64_t)i * d->n_win / n]), NULL, &tr->val_scores);
        if (!l) return aur_scores_free(&tr->val_scores), AUR_EINVAL;
        sum += aur__value(l);
    }
    aur_scores_finish(&tr->val_scores);
    aur_tape_reset(tr->t);
    *loss = n ? sum / n : NAN;
    double row[2] = {(double)tr->step, *loss};
    return aur__table_add(&tr->val_hist, row);
}

/* ---- plots ---- */

/* One curve of the history table. */
static aur_plot_series aur__hist_series(const aur__table *t, int col, const char *label, double *x, double *y)
{
    for (int r = 0; r < t->rows; r++) x[r] = t->v[(size_t)r * t->cols], y[r] = t->v[(size_t)r * t->cols + col];
    aur_plot_series s = {label, x, y, t->rows};
    return s;
}

static int aur__plot_curves(const aur_trainer *tr)
{
    int n = tr->hist.rows, nv = tr->val_hist.rows, ng = tr->n_groups > 1 ? tr->n_groups : 0;
    int nm = tr->task ? tr->task->n_metrics : 0;
    double *buf = (double *)aur__malloc(sizeof(double) * (size_t)(2 * (n * (3 + ng)) + 2 * nv * (1 + nm) + 2), "plot data");
    if (!buf) return AUR_ENOMEM;
    double *p = buf;
    aur_plot_series loss[2], gn[1 + AUR__MAX_GROUPS], lr[1], metric[AUR__MAX_METRICS];
    loss[0] = aur__hist_series(&tr->hist, 1, "train", p, p + n), p += 2 * n;
    loss[1] = aur__hist_series(&tr->val_hist, 1, "validation", p, p + nv), p += 2 * nv;
    gn[0] = aur__hist_series(&tr->hist, 2, "total", p, p + n), p += 2 * n;
    for (int g = 0; g < ng; g++) gn[1 + g] = aur__hist_series(&tr->hist, 4 + g, tr->group_name[g], p, p + n), p += 2 * n;
    lr[0] = aur__hist_series(&tr->hist, 3, "lr (group rest)", p, p + n), p += 2 * n;
    for (int k = 0; k < nm; k++) metric[k] = aur__hist_series(&tr->val_hist, 2 + k, tr->task->metric_names[k], p, p + nv), p += 2 * nv;
    aur_plot_panel panels[4] = {{tr->task ? "loss" : "loss (normalised MSE)", loss, nv ? 2 : 1, 1},
                                {"validation metrics", metric, nm < 8 ? nm : 8, 0},
                                {"gradient norm (before clipping)", gn, 1 + ng, 1},
                                {"learning rate", lr, 1, 0}};
    if (!nm || !nv) panels[1] = panels[2], panels[2] = panels[3];
    char path[1100];
    snprintf(path, sizeof path, "%s/curves.png", tr->out_dir);
    int rc = aur_plot_panels(path, 720, 260, "step", panels, nm && nv ? 4 : 3);
    AUR_FREE(buf);
    return rc;
}

/* Copies the first `rows` rows of the first field (sample 0, newest step, level index c) of a variable to out
   (rows*W, host): a 721-row target is mapped on its prediction's 720 rows. 0 if there is none. */
static int aur__field(const aur_batch *b, const char *var, int c, int rows, aur_real *out)
{
    aur_tensor *x = aur_batch_surf(b, var);
    int64_t hw = (int64_t)b->H * b->W, off = (b->T - 1) * hw;
    if (!x && (x = aur_batch_atmos(b, var))) off = ((int64_t)(b->T - 1) * b->C + c) * hw;
    return x && rows <= b->H && !aur__copy_bytes(out, AUR_CPU, (const aur_real *)x->data + off, x->device, sizeof(aur_real) * (size_t)rows * b->W);
}

/* maps_{var}.png: prediction and target on one colour scale; maps_{var}_error.png. A map
   variable "t@850" picks a level. */
static int aur__trainer_map(const aur_trainer *tr, const aur_batch *pred, const aur_batch *target, const char *spec)
{
    char var[AUR_NAME_LEN], path[1200], title[160];
    snprintf(var, sizeof var, "%s", spec);
    char *at = strchr(var, '@');
    double level = at ? atof(at + 1) : 0;
    if (at) *at = 0;
    int c = 0;
    while (at && c < pred->C - 1 && pred->levels[c] != level) c++;
    int64_t hw = (int64_t)pred->H * pred->W;
    float *buf = (float *)aur__malloc(sizeof(float) * (size_t)(2 * hw), "map data");
    aur_real *p = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(2 * hw), "map data"), *y = p ? p + hw : NULL;
    if (!buf || !p) {
        AUR_FREE(buf);
        AUR_FREE(p);
        return AUR_ENOMEM;
    }
    if (!aur__field(pred, var, c, pred->H, p) || !aur__field(target, var, c, pred->H, y)) {
        AUR_FREE(buf);
        AUR_FREE(p);
        return aur__err(AUR_EINVAL, "map_vars: '%s' is not a predicted variable", spec);
    }
    for (int64_t i = 0; i < hw; i++) buf[i] = (float)p[i], buf[hw + i] = (float)y[i];
    AUR_FREE(p);
    for (char *q = var; *q; q++)
        if (*q == '/') *q = '_';
    snprintf(path, sizeof path, "%s/maps_%s%s%s", tr->out_dir, var, at ? "_" : "", at ? at + 1 : "");
    snprintf(title, sizeof title, "%s after %lld steps (validation window 0, lead 1 step)", spec, (long long)tr->step);
    int rc = aur_plot_versus(path, buf, buf + hw, pred->H, pred->W, "prediction", "target", title);
    AUR_FREE(buf);
    return rc;
}

AURDEF int aur_trainer_plot(aur_trainer *tr)
{
    int rc = aur__mkdirs(tr->out_dir);
    if (!rc) rc = aur__plot_curves(tr);
    if (!rc && tr->task) return tr->task->plot ? tr->task->plot(tr) : 0;
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "%s/val_", tr->out_dir);
    if (!rc && tr->val_scores.n) rc = aur_scores_plot(&tr->val_scores, prefix);
    if (rc || !tr->n_maps) return rc;
    aur__data *d = tr->val.n_win ? &tr->val : &tr->train;
    aur_tape_reset(tr->t);
    aur_tape_set_grad(tr->t, 0);
    aur_tape_set_training(tr->t, 0);
    aur_batch *pred = NULL;
    const aur_window *w = aur__read_window(tr, d, d->win[0]);
    aur_tensor *l = aur__rollout_loss(tr, w, &pred, NULL);
    for (int i = 0; l && !rc && i < tr->n_maps; i++) rc = aur__trainer_map(tr, pred, w->target[0], tr->map_vars[i]);
    aur_batch_free(pred);
    aur_tape_reset(tr->t);
    return l ? rc : AUR_EINVAL;
}

/* ---- checkpoints ---- */

static int aur__write_text(const char *path, const char *text)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    int rc = fp && fputs(text, fp) >= 0 && !fflush(fp) && !fsync(fileno(fp)) ? 0 : -1;
    if (fp && fclose(fp)) rc = -1;
    if (!rc && rename(tmp, path)) rc = -1;
    if (rc) {
        unlink(tmp);
        return aur__err(AUR_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    return aur__fsync_dir(path);
}

static cJSON *aur__json_doubles(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* trainer_state.json: the step, the gradient alarm's windows and the
   history (exact: cJSON writes doubles with enough digits to round-trip). */
static char *aur__trainer_state(const aur_trainer *tr)
{
    cJSON *s = cJSON_CreateObject(), *alarm = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "run_id", tr->run_id);
    cJSON_AddNumberToObject(s, "step", (double)tr->step);
    cJSON_AddNumberToObject(s, "n_groups", tr->n_groups);
    cJSON_AddNumberToObject(alarm, "alarms", (double)tr->alarm.alarms);
    cJSON *counts = cJSON_AddArrayToObject(alarm, "count"), *hist = cJSON_AddArrayToObject(alarm, "hist");
    for (int g = 0; g <= tr->n_groups; g++) {
        cJSON_AddItemToArray(counts, cJSON_CreateNumber(tr->alarm.count[g]));
        cJSON_AddItemToArray(hist, aur__json_doubles(tr->alarm.hist[g], tr->alarm.window));
    }
    cJSON_AddItemToObject(s, "alarm", alarm);
    cJSON_AddItemToObject(s, "history", aur__json_doubles(tr->hist.v, tr->hist.rows * tr->hist.cols));
    cJSON_AddItemToObject(s, "val_history", aur__json_doubles(tr->val_hist.v, tr->val_hist.rows * tr->val_hist.cols));
    cJSON_AddItemToObject(s, "config", cJSON_Duplicate(tr->config, 1));
    char *text = cJSON_Print(s);
    cJSON_Delete(s);
    return text;
}

static int aur__restore_table(const cJSON *a, const char *path, aur__table *t)
{
    int n = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || n % t->cols) return aur__err(AUR_EFORMAT, "%s: a history is not a list of rows of %d numbers", path, t->cols);
    t->rows = 0;
    if (n && aur__grow((void **)&t->v, &t->cap, n, sizeof(double))) return AUR_ENOMEM;
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) { /* null: a metric without a value (cJSON writes NaN so) */
        if (!cJSON_IsNumber(e) && !cJSON_IsNull(e)) return aur__err(AUR_EFORMAT, "%s: a history holds a %s where numbers belong", path, cJSON_IsString(e) ? "string" : "non-number");
        t->v[i] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    }
    t->rows = n / t->cols;
    return 0;
}

/* The step, alarm and histories of a parsed trainer_state.json (path: for messages). */
static int aur__trainer_restore_json(aur_trainer *tr, const cJSON *s, const char *path)
{
    const cJSON *alarm = aur__json_at(s, "alarm"), *hist = aur__json_at(alarm, "hist");
    int64_t step = -1;
    int ng = -1, n = 0, rc = aur__json_i64(aur__json_at(s, "step"), path, 0, 9007199254740992.0, &step);
    if (!rc && step < 0) rc = aur__err(AUR_EFORMAT, "%s: no 'step'", path);
    if (!rc) rc = aur__json_int(aur__json_at(s, "n_groups"), path, 0, AUR__MAX_GROUPS, &ng);
    if (!rc) rc = aur__json_i64(aur__json_at(alarm, "alarms"), path, 0, 9007199254740992.0, &tr->alarm.alarms);
    if (!rc) rc = aur__json_ints(aur__json_at(alarm, "count"), path, tr->alarm.count, 0, AUR_ALARM_GROUPS + 1, &n);
    int mismatch = !rc && !(ng == tr->n_groups && n == ng + 1 && cJSON_GetArraySize(hist) == ng + 1);
    if (mismatch) rc = AUR_EFORMAT;
    for (int g = 0; !rc && g <= tr->n_groups; g++)
        rc = aur__json_nums(cJSON_GetArrayItem(hist, g), path, tr->alarm.hist[g], tr->alarm.window, tr->alarm.window, &n);
    if (!rc) rc = aur__restore_table(aur__json_at(s, "history"), path, &tr->hist);
    if (!rc) rc = aur__restore_table(aur__json_at(s, "val_history"), path, &tr->val_hist);
    if (!rc) tr->step = step;
    if (mismatch)
        return aur__err(AUR_EFORMAT, "%s: not the state of this run: 'n_groups', 'alarm.count' or 'alarm.hist' do not fit its %d parameter groups",
                        path, tr->n_groups);
    return rc ? AUR_EFORMAT : 0; /* the readers' messages name the key */
}

/* Removes one of the run's checkpoint directories with whatever it holds
   (an interrupted write leaves a file.tmp beside the three files). 0 when
   it is gone, or was never there. */
static int aur__remove_checkpoint(const char *dir)
{
    DIR *d = opendir(dir);
    char path[1400];
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            unlink(path);
    if (d) closedir(d);
    if (rmdir(dir) && errno != ENOENT) return aur__err(AUR_EIO, "cannot remove %s: %s", dir, strerror(errno));
    return 0;
}

/* 1 if dir holds the three files of a checkpoint. */
static int aur__checkpoint_complete(const char *dir)
{
    static const char *files[] = {"model.safetensors", "optimizer.safetensors", "trainer_state.json"};
    char path[1400];
    for (int i = 0; i < 3; i++)
        if (snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= (int)sizeof path || access(path, R_OK)) return 0;
    return 1;
}

/* The checkpoint directory `latest` names, into dir: 0, or -1 when there is no `latest` to read. */
static int aur__latest_dir(const aur_trainer *tr, char *dir, size_t size)
{
    char path[1200], name[256] = "";
    snprintf(path, sizeof path, "%s/latest", tr->out_dir);
    FILE *fp = fopen(path, "r");
    int ok = fp && fgets(name, sizeof name, fp);
    if (fp) fclose(fp);
    name[strcspn(name, "\r\n")] = 0;
    if (ok) snprintf(dir, size, "%s/%s", tr->out_dir, name);
    return ok ? 0 : -1;
}

/* What a save or a prune cut short leaves, set right: a step whose
   checkpoint-N is missing gets it back from its complete .tmp (the newer) or
   .old copy; other .tmp and .old directories go, and so do the .del ones a
   prune was removing; `latest` names the newest complete checkpoint. Run
   before a save and before a resume. */
static int aur__recover_checkpoints(const aur_trainer *tr)
{
    DIR *d = opendir(tr->out_dir);
    if (!d) return 0;
    char side[1400], dir[1400];
    long long newest = -1, s;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d)) && !rc;) {
        char kind[8] = "", tail;
        if (sscanf(e->d_name, "checkpoint-%lld%c", &s, &tail) == 1) {
            snprintf(dir, sizeof dir, "%s/%s", tr->out_dir, e->d_name);
            if (aur__checkpoint_complete(dir) && s > newest) newest = s;
            continue;
        }
        if (sscanf(e->d_name, ".checkpoint-%lld.%3s%c", &s, kind, &tail) != 2 || (strcmp(kind, "tmp") && strcmp(kind, "old") && strcmp(kind, "del")))
            continue;
        snprintf(side, sizeof side, "%s/%s", tr->out_dir, e->d_name);
        snprintf(dir, sizeof dir, "%s/checkpoint-%06lld", tr->out_dir, s);
        if (strcmp(kind, "del") && access(dir, F_OK) && aur__checkpoint_complete(side)) {
            if (rename(side, dir)) rc = aur__err(AUR_EIO, "cannot restore %s as %s: %s", side, dir, strerror(errno));
            else if (s > newest) newest = s;
        } else {
            rc = aur__remove_checkpoint(side);
        }
    }
    closedir(d);
    if (rc || newest < 0) return rc;
    if (!aur__latest_dir(tr, dir, sizeof dir) && aur__checkpoint_complete(dir)) return 0;
    char path[1200], name[64];
    snprintf(path, sizeof path, "%s/latest", tr->out_dir);
    snprintf(name, sizeof name, "checkpoint-%06lld\n", newest);
    return aur__write_text(path, name);
}

/* Keeps the newest keep_last checkpoint-* directories. Each goes by a rename
   to .checkpoint-N.del first, so a prune cut short never leaves a
   checkpoint-N half removed; what it cannot remove is said, and the next
   save's recovery tries again. */
static void aur__prune_checkpoints(const aur_trainer *tr)
{
    DIR *d = opendir(tr->out_dir);
    if (!d) return;
    long long steps[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;) {
        long long s;
        char tail;
        if (sscanf(e->d_name, "checkpoint-%lld%c", &s, &tail) == 1) steps[n++] = s;
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int k = 0; k < n; k++) newer += steps[k] > steps[i];
        if (newer < tr->keep_last) continue;
        char dir[1200], del[1200];
        snprintf(dir, sizeof dir, "%s/checkpoint-%06lld", tr->out_dir, steps[i]);
        snprintf(del, sizeof del, "%s/.checkpoint-%06lld.del", tr->out_dir, steps[i]);
        int rc = rename(dir, del) ? aur__err(AUR_EIO, "cannot move %s aside: %s", dir, strerror(errno)) : aur__remove_checkpoint(del);
        if (rc) fprintf(stderr, "warning: pruning old checkpoints: %s\n", aur_last_error());
    }
}

/* A fresh run into an output_dir that holds another run's checkpoints or
   metrics would prune its own checkpoints as older and mix both metrics:
   refused, unless the config says overwrite_output_dir (then they go). */
static int aur__claim_output_dir(const aur_trainer *tr)
{
    DIR *d = opendir(tr->out_dir);
    char found[300] = "", path[1400];
    for (struct dirent *e; d && (e = readdir(d));) {
        int run = !strncmp(e->d_name, "checkpoint-", 11) || !strncmp(e->d_name, ".checkpoint-", 12) || !strcmp(e->d_name, "metrics.jsonl") ||
                  !strcmp(e->d_name, "latest") || !strcmp(e->d_name, AUR__EVENTS_FILE);
        if (!run) continue;
        snprintf(path, sizeof path, "%s/%s", tr->out_dir, e->d_name);
        int kept = !tr->overwrite_output_dir;
        if (!kept && strchr(e->d_name, '-')) kept = aur__remove_checkpoint(path) != 0;
        else if (!kept && unlink(path)) kept = aur__err(AUR_EIO, "cannot remove %s: %s", path, strerror(errno)) != 0;
        if (kept) {
            snprintf(found, sizeof found, "%s", e->d_name);
            break;
        }
    }
    if (d) closedir(d);
    if (!found[0]) return 0;
    if (tr->overwrite_output_dir) return AUR_EIO; /* the message says what could not be removed */
    return aur__err(AUR_EINVAL, "output_dir %s holds another run (%s): resume it (aurora-train CONFIG --resume), choose another output_dir, "
                    "or set \"overwrite_output_dir\": true", tr->out_dir, found);
}

AURDEF int aur_trainer_save(aur_trainer *tr)
{
    char tmp[1100], dir[1100], path[1200], old[1100];
    snprintf(tmp, sizeof tmp, "%s/.checkpoint-%06lld.tmp", tr->out_dir, (long long)tr->step);
    snprintf(dir, sizeof dir, "%s/checkpoint-%06lld", tr->out_dir, (long long)tr->step);
    snprintf(old, sizeof old, "%s/.checkpoint-%06lld.old", tr->out_dir, (long long)tr->step);
    int rc = aur__mkdirs(tr->out_dir);
    if (!rc) rc = aur__recover_checkpoints(tr); /* the leftovers of a run killed while saving */
    if (!rc) rc = aur__mkdirs(tmp);
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    if (!rc) rc = aur_save_safetensors(tr->m, path);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)tr->step);
    const char *const meta[] = {"run_id", tr->run_id, "step", step, NULL};
    if (!rc) rc = aur__optim_save(tr->o, path, meta);
    char *state = rc ? NULL : aur__trainer_state(tr);
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    if (!rc) rc = state ? aur__write_text(path, state) : aur__err(AUR_ENOMEM, "out of memory writing the trainer state");
    cJSON_free(state);
    if (!rc && tr->task && tr->task->save) rc = tr->task->save(tr, tmp);
    if (rc) {
        aur__remove_checkpoint(tmp);
        return rc;
    }
    /* a checkpoint of the same step (a rerun) is replaced only once the new one is complete */
    int replacing = access(dir, F_OK) == 0;
    if (replacing && rename(dir, old)) rc = aur__err(AUR_EIO, "cannot move %s aside: %s", dir, strerror(errno));
    if (!rc && rename(tmp, dir)) rc = aur__err(AUR_EIO, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
    if (replacing) aur__remove_checkpoint(old);
    snprintf(path, sizeof path, "%s/latest", tr->out_dir);
    char name[64];
    snprintf(name, sizeof name, "checkpoint-%06lld\n", (long long)tr->step);
    if (!rc) rc = aur__write_text(path, name);
    if (!rc) aur__prune_checkpoints(tr);
    return rc;
}

/* Keeps the metrics lines up to the resumed step, so a resumed run's file
   reads as if it had never stopped, and writes the TensorBoard events
   again from them (TensorBoard would show a resumed run's repeated steps twice). */
static int aur__trim_metrics(const aur_trainer *tr)
{
    char path[1100], events[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", tr->out_dir);
    snprintf(events, sizeof events, "%s/%s", tr->out_dir, AUR__EVENTS_FILE);
    FILE *fp = fopen(path, "rb");
    if (!fp) return access(events, F_OK) == 0 ? aur_events_create(events, aur__unix_time()) : 0; /* no metrics: no events either */
    aur__buf keep;
    memset(&keep, 0, sizeof keep);
    char line[8192];
    while (fgets(line, sizeof line, fp)) {
        cJSON *j = aur__cjson_parse(line, strlen(line), NULL);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (cJSON_IsNumber(st) && st->valuedouble <= (double)tr->step) aur__buf_printf(&keep, "%s", line);
        cJSON_Delete(j);
    }
    fclose(fp);
    int rc = keep.failed ? aur__err(AUR_ENOMEM, "out of memory trimming %s", path) : aur__write_text(path, keep.p ? keep.p : "");
    if (!rc) rc = aur_events_create(events, aur__unix_time());
    for (char *line = keep.p, *next; !rc && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        rc = aur_events_from_json(events, aur__unix_time(), line);
    }
    AUR_FREE(keep.p);
    return rc;
}

/* A checkpoint's state (s, read from path) and optimiser file (f) were
   written by one save: the same run id and step (a copied-in
   optimizer.safetensors of another run or step would resume silently
   wrong). Checkpoints from before run ids have none in either file. The run
   id read is put in *id. */
static int aur__checkpoint_belongs(const cJSON *s, const char *path, const aur_st_file *f, char *id, size_t size)
{
    char step[32] = "";
    const char *opath = f->path, *sid = NULL, *oid = aur_st_meta(f, "run_id"), *ostep = aur_st_meta(f, "step");
    int64_t n = -1;
    int rc = aur__json_str(aur__json_at(s, "run_id"), path, &sid);
    if (!rc) rc = aur__json_i64(aur__json_at(s, "step"), path, 0, 9007199254740992.0, &n);
    if (!rc) snprintf(step, sizeof step, "%lld", (long long)n);
    if (!rc && (!sid != !oid || (sid && strcmp(sid, oid))))
        rc = aur__err(AUR_EFORMAT, "%s: written by run %s, but %s by run %s: the files of two runs are mixed", opath, oid ? oid : "(none)", path,
                      sid ? sid : "(none)");
    else if (!rc && oid && (!ostep || strcmp(ostep, step)))
        rc = aur__err(AUR_EFORMAT, "%s: the state of step %s, but %s is of step %s", opath, ostep ? ostep : "(none)", path, step);
    if (!rc) snprintf(id, size, "%s", sid ? sid : "");
    return rc;
}

AURDEF int aur_trainer_resume(aur_trainer *tr, const char *checkpoint_dir)
{
    char dir[1400], path[1500];
    if (checkpoint_dir) {
        snprintf(dir, sizeof dir, "%s", checkpoint_dir);
    } else {
        int rc = aur__recover_checkpoints(tr); /* a save cut short may have left the newest checkpoint aside */
        if (rc) return rc;
        if (aur__latest_dir(tr, dir, sizeof dir)) return aur__err(AUR_EIO, "%s/latest: no checkpoint to resume from", tr->out_dir);
    }
    /* the state and the optimiser file are read once: checked to belong together before the model is loaded */
    char id[sizeof tr->run_id] = "", state[1500];
    snprintf(state, sizeof state, "%s/trainer_state.json", dir);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    cJSON *s = aur_json_load(state);
    aur_st_file *f = s ? aur_st_open(path) : NULL;
    int rc = s && f ? aur__checkpoint_belongs(s, state, f, id, sizeof id) : AUR_EFORMAT;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = aur_load_safetensors(tr->m, path, AUR_LOAD_STRICT, NULL);
    if (!rc) rc = aur__optim_load_file(tr->o, f);
    if (!rc) rc = aur__trainer_restore_json(tr, s, state);
    aur_st_close(f);
    cJSON_Delete(s);
    if (!rc) rc = aur__trim_metrics(tr);
    if (!rc && id[0]) snprintf(tr->run_id, sizeof tr->run_id, "%s", id); /* the run goes on under its id */
    return rc;
}

/* ---- the loop ---- */

static void aur__progress(const aur_trainer *tr, const aur_step_info *si, double rate)
{
    double eta = rate > 0 ? (double)(tr->steps - tr->step) / rate : 0;
    int tty = isatty(fileno(stderr));
    if (!tty && tr->step % tr->log_every && tr->step != tr->steps) return;
    fflush(stdout); /* keep the order of the run's own output */
    char data[64] = ""; /* said only when reading is what the step waits for */
    if (si->data_seconds > 0.1 * si->seconds && si->seconds > 0)
        snprintf(data, sizeof data, "  waiting for data %.0f%% (data.prefetch %d)", 100 * si->data_seconds / si->seconds, tr->prefetch);
    fprintf(stderr, "%sstep %lld/%lld  loss %.5g  |g| %.3g  lr %.3g  %.2f steps/s  ETA %d:%02d%s%s%s", tty ? "\r\033[K" : "",
            (long long)tr->step, (long long)tr->steps, si->loss, si->grad_norm, si->lr, rate, (int)(eta / 60), (int)eta % 60, data,
            si->alarm ? "  ALARM: " : "", si->alarm ? si->alarm_msg : "");
    fprintf(stderr, tty && !si->alarm && tr->step != tr->steps ? "" : "\n");
}

/* One line of metrics.jsonl, and the same numbers as TensorBoard scalars beside it. */
static int aur__log_metrics(const aur_trainer *tr, const aur_step_info *si, double rate, double val)
{
    char path[1100], events[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", tr->out_dir);
    snprintf(events, sizeof events, "%s/%s", tr->out_dir, AUR__EVENTS_FILE);
    aur__buf line;
    memset(&line, 0, sizeof line);
    aur__buf_printf(&line, "{\"step\": %lld, \"loss\": %.9g, \"grad_norm\": %.9g, \"lr\": %.9g", (long long)si->step, si->loss, si->grad_norm, si->lr);
    const double *row = tr->hist.v + (size_t)(tr->hist.rows - 1) * tr->hist.cols;
    for (int g = 0; g < tr->n_groups && tr->n_groups > 1; g++) aur__buf_printf(&line, ", \"grad_norm/%s\": %.9g", tr->group_name[g], row[4 + g]);
    aur__buf_printf(&line, ", \"steps_per_s\": %.4g, \"data_wait_s\": %.4g, \"alarm\": %s, \"skipped\": %s", rate, si->data_seconds,
                    si->alarm ? "true" : "false", si->skipped ? "true" : "false");
    if (isfinite(val)) aur__buf_printf(&line, ", \"val_loss\": %.9g", val);
    /* the validation row exists only on a step that evaluated */
    const double *vrow = isfinite(val) ? tr->val_hist.v + (size_t)(tr->val_hist.rows - 1) * tr->val_hist.cols : NULL;
    for (int k = 0; vrow && tr->task && k < tr->task->n_metrics; k++) {
        if (isfinite(vrow[2 + k])) aur__buf_printf(&line, ", \"val/%s\": %.9g", tr->task->metric_names[k], vrow[2 + k]);
        else aur__buf_printf(&line, ", \"val/%s\": null", tr->task->metric_names[k]); /* R^2 of a constant target; JSON has no NaN */
    }
    for (int k = 0; isfinite(val) && !tr->task && k < tr->val_scores.n; k++) { /* "val_rmse/z500/6h" */
        const aur_score *r = &tr->val_scores.rows[k];
        char level[32] = "";
        if (r->atmos) snprintf(level, sizeof level, "%g", r->level);
        if (isfinite(r->rmse)) aur__buf_printf(&line, ", \"val_rmse/%s%s/%gh\": %.9g", r->var, level, r->lead_hours, r->rmse);
    }
    aur__buf_printf(&line, "}");
    int rc = line.failed ? aur__err(AUR_ENOMEM, "out of memory writing %s", path) : 0;
    FILE *fp = rc ? NULL : fopen(path, "ab");
    if (!rc && !fp) rc = aur__err(AUR_EIO, "cannot append to %s: %s", path, strerror(errno));
    if (fp) {
        int bad = fprintf(fp, "%s\n", line.p) < 0;
        if (fclose(fp) || bad) rc = aur__err(AUR_EIO, "cannot write %s", path);
    }
    if (!rc && access(events, F_OK) != 0) rc = aur_events_create(events, aur__unix_time());
    if (!rc) rc = aur_events_from_json(events, aur__unix_time(), line.p);
    AUR_FREE(line.p);
    return rc;
}

static int aur__due(int64_t step, int every) { return every > 0 && step % every == 0; }

AURDEF int aur_trainer_run(aur_trainer *tr)
{
    int rc = aur__mkdirs(tr->out_dir);
    if (!rc && tr->step == 0) rc = aur__claim_output_dir(tr);
    if (!rc && tr->step == 0) aur_trainer_print_setup(tr, stdout);
    double t0 = aur__wall();
    int64_t first = tr->step;
    while (!rc && tr->step < tr->steps) {
        aur_step_info si;
        rc = aur_trainer_step(tr, &si);
        if (rc) break;
        double rate = (double)(tr->step - first) / fmax(aur__wall() - t0, 1e-9), val = NAN;
        if (aur__due(tr->step, tr->eval_every) || tr->step == tr->steps) rc = aur_trainer_eval(tr, &val);
        aur__progress(tr, &si, rate);
        if (!rc) rc = aur__log_metrics(tr, &si, rate, val);
        if (!rc && aur__due(tr->step, tr->plot_every)) rc = aur_trainer_plot(tr);
        if (!rc && aur__due(tr->step, tr->save_every) && tr->step != tr->steps) rc = aur_trainer_save(tr);
    }
    if (!rc) rc = aur_trainer_plot(tr);
    if (!rc) rc = aur_trainer_save(tr);
    return rc;
}

#endif /* AUR__CORE_IMPL_DONE */
