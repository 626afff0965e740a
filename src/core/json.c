#include "api.h"
#include "platform.h"

/* ==== JSON files ==== */

AURDEF cJSON *aur_json_load(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    aur__buf b;
    memset(&b, 0, sizeof b);
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0) aur__buf_append(&b, chunk, got);
    int read_failed = ferror(fp) || b.failed;
    fclose(fp);
    if (read_failed) {
        AUR_FREE(b.p);
        aur__err(AUR_EIO, "%s: cannot read", path);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(b.p ? b.p : "", b.n);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        int line = 1;
        for (const char *c = b.p; c && at && c < at && c < b.p + b.n; c++) line += *c == '\n';
        aur__err(AUR_EFORMAT, "%s: invalid JSON near line %d", path, line);
    }
    AUR_FREE(b.p);
    return j;
}
