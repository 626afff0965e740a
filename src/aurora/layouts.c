#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

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
