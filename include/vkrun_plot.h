/* vkrun — training curves as PNG line plots (host side, no Vulkan).
 *
 * vkr_plot_lines draws an 800x500 white PNG: title, framed plot area with light
 * grid, tick marks and numeric tick labels on both axes at "nice" round values
 * (1, 2, 2.5, 5 x 10^k), axis labels (the y label rotated), anti-aliased 2.5 px
 * lines with a marker at every point, and a legend box naming each series,
 * placed in the corner of the plot area where it hides the least of the data.
 * Text is stb_easy_font at 2x (title 3x).  Non-finite points (NaN, +-Inf) are
 * skipped and the line joins the neighbouring finite points; a single point
 * or a constant series gets a padded range.  When every x value is an integer
 * (epochs), x ticks are integers.  The file is written atomically (PATH.tmp.PID
 * then rename). */
#ifndef VKRUN_PLOT_H
#define VKRUN_PLOT_H

#include <stdint.h>

#include "vkrun.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VKR_PLOT_WIDTH 800
#define VKR_PLOT_HEIGHT 500

typedef struct {
    const char *name;  /* legend text (ASCII; other bytes print as '?'); NULL: no legend entry */
    const double *x;   /* n values; NULL: x = 1, 2, ..., n (epochs) */
    const double *y;   /* n values */
    int n;
    uint32_t color;    /* 0xRRGGBB; 0: default palette (blue, orange, green, red, purple, ...) */
} vkr_plot_series;

/* Errors: VKR_ERR_INVALID (bad arguments), VKR_ERR_IO (cannot write; the
 * message names the path), VKR_ERR_OUT_OF_MEMORY. */
vkr_status vkr_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                          const vkr_plot_series *series, int nseries);

/* A vertical marker: a dashed line at data x (VKR_PLOT_MARKER_COLOR, 2 px wide, dashes of 6 px
 * every 10 px from the top of the plot area, under the series) labelled at the top of the plot
 * area, right of the line ("fine-tuning" where a run's fine-tuning starts).  The x range grows
 * to include it. */
typedef struct {
    double x;
    const char *label; /* ASCII; NULL: none */
} vkr_plot_marker;
#define VKR_PLOT_MARKER_COLOR 0x555555u

/* vkr_plot_lines with vertical markers. */
vkr_status vkr_plot_lines_marked(const char *path, const char *title, const char *xlabel, const char *ylabel,
                                 const vkr_plot_series *series, int nseries, const vkr_plot_marker *markers,
                                 int nmarkers);

/* The palette colour used for series i when its color is 0. */
uint32_t vkr_plot_palette(int i);

#ifdef __cplusplus
}
#endif

#endif
