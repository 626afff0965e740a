#include "api.h"
#include "platform.h"

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
