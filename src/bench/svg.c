/* svg.c - ds4-bench's plot: prefill and decode tokens/s against context, as a
 * self-contained SVG written with fprintf (no plotting tool needed to make it,
 * any browser or ImageMagick to view it).
 *
 * One linear y axis from 0 for both series, so their ratio reads directly;
 * ticks at 1/2/5 x 10^k steps; the x axis spans 0..the last frontier, since
 * speed against absolute context is the question. Text is XML-escaped (the
 * title carries the model name, which comes from the file). */
#include <math.h>
#include <string.h>

#include "bench/bench.h"

enum { W = 900, H = 560, ML = 90, MR = 30, MT = 90, MB = 70 };

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
        }
    }
}

/* A "nice" tick step giving about `want` intervals over [0, max]. */
static double tick_step(double max, int want) {
    if (!(max > 0)) return 1;
    double raw = max / want, mag = pow(10, floor(log10(raw))), r = raw / mag;
    double m = r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10;
    return m * mag;
}

static void num(char *buf, size_t n, double v) {
    if (fabs(v) >= 1e6) snprintf(buf, n, "%.0fM", v / 1e6);
    else if (fabs(v) >= 1e4) snprintf(buf, n, "%.0fk", v / 1e3);
    else if (v == floor(v)) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%.3g", v);
}

static void series(FILE *f, const ds4_bench_row *rows, size_t n, int decode, double xmax, double ymax,
                   const char *color) {
    const double pw = W - ML - MR, ph = H - MT - MB;
    /* one <line> per segment: ImageMagick's SVG renderer draws a stray edge
     * (second point to last) for open polylines and paths */
    for (size_t i = 1; i < n; i++) {
        double y0 = decode ? rows[i - 1].decode_tps : rows[i - 1].prefill_tps;
        double y1 = decode ? rows[i].decode_tps : rows[i].prefill_tps;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\" stroke-linecap=\"round\"/>\n",
                ML + rows[i - 1].frontier / xmax * pw, MT + ph - y0 / ymax * ph, ML + rows[i].frontier / xmax * pw,
                MT + ph - y1 / ymax * ph, color);
    }
    for (size_t i = 0; i < n; i++) {
        double y = decode ? rows[i].decode_tps : rows[i].prefill_tps;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" stroke=\"none\"/>\n", ML + rows[i].frontier / xmax * pw,
                MT + ph - y / ymax * ph, color);
    }
}

int ds4_bench_write_svg(FILE *f, const ds4_bench_row *rows, size_t n, const char *title, const char *subtitle) {
    const double pw = W - ML - MR, ph = H - MT - MB;
    double xmax = 1, ymax = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].frontier > xmax) xmax = rows[i].frontier;
        if (rows[i].prefill_tps > ymax) ymax = rows[i].prefill_tps;
        if (rows[i].decode_tps > ymax) ymax = rows[i].decode_tps;
    }
    const double xs = tick_step(xmax, 8), ys = tick_step(ymax > 0 ? ymax : 1, 6);
    xmax = ceil(xmax / xs) * xs;
    ymax = ceil((ymax > 0 ? ymax * 1.05 : 1) / ys) * ys;
    const char *font = "font-family=\"DejaVu Sans\""; /* one name: ImageMagick rejects a list */

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", W, H, W, H);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"30\" font-size=\"18\" font-weight=\"bold\" %s>", ML, font);
    esc(f, title ? title : "ds4-bench");
    fprintf(f, "</text>\n");
    if (subtitle) {
        fprintf(f, "<text x=\"%d\" y=\"50\" font-size=\"12\" fill=\"#555\" %s>", ML, font);
        esc(f, subtitle);
        fprintf(f, "</text>\n");
    }
    /* grid and ticks */
    char lab[32];
    for (double y = 0; y <= ymax + ys / 2; y += ys) {
        double py = MT + ph - y / ymax * ph;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", ML, py, ML + pw, py);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>\n", ML - 5, py, ML, py);
        num(lab, sizeof lab, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\" %s>%s</text>\n", ML - 8, py + 4, font, lab);
    }
    for (double x = 0; x <= xmax + xs / 2; x += xs) {
        double px = ML + x / xmax * pw;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", px, MT, px, MT + ph);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", px, MT + ph, px, MT + ph + 5);
        num(lab, sizeof lab, x);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" %s>%s</text>\n", px, MT + ph + 20, font, lab);
    }
    /* axes and labels */
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\" stroke-width=\"1.5\"/>\n", ML, MT, ML, MT + ph);
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" stroke-width=\"1.5\"/>\n", ML, MT + ph, ML + pw, MT + ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"14\" text-anchor=\"middle\" %s>context (tokens)</text>\n", ML + pw / 2, H - 22, font);
    fprintf(f, "<text x=\"22\" y=\"%.1f\" font-size=\"14\" text-anchor=\"middle\" transform=\"rotate(-90 22 %.1f)\" %s>tokens/s</text>\n",
            MT + ph / 2, MT + ph / 2, font);
    /* series */
    series(f, rows, n, 0, xmax, ymax, "#1f77b4");
    series(f, rows, n, 1, xmax, ymax, "#d62728");
    /* legend: one row between the subtitle and the plot, so it never hides a point */
    const double ly = 72;
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#1f77b4\" stroke-width=\"2.5\"/>\n", ML, ly, ML + 30, ly);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"13\" %s>prefill t/s (each interval)</text>\n", ML + 38, ly + 4, font);
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#d62728\" stroke-width=\"2.5\"/>\n", ML + 250, ly, ML + 280, ly);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"13\" %s>decode t/s (greedy, from the frontier)</text>\n", ML + 288, ly + 4, font);
    fprintf(f, "</svg>\n");
    return ferror(f) ? -1 : 0;
}
