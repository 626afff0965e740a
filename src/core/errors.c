#include "api.h"
#include "platform.h"

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
