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
