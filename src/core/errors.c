#include "api.h"
#include "platform.h"

/* ==== errors ==== */

static AUR__TLS char aur__errmsg[2048] = "no error";

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int aur__err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(aur__errmsg, sizeof aur__errmsg, fmt, ap);
    va_end(ap);
    return code;
}

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
