#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

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
