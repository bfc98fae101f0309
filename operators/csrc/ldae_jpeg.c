/* Decoding JPEGs through the system's libjpeg-turbo, loaded at run time (dlopen).
 *
 * Built against the system's jpeglib.h (for the struct layouts and the ABI version), it loads
 * the matching libjpeg.so.N on first use. libjpeg reports fatal errors through a callback that
 * must not return, so the longjmp that catches them stays here in C and the Rust side only
 * sees return codes. A library that is missing or of another ABI makes every call decline, and
 * the caller then decodes in pure Rust. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <pthread.h>
#include <dlfcn.h>
#include <jpeglib.h>

#if JPEG_LIB_VERSION >= 80
#define LDAE_JPEG_SONAME "libjpeg.so.8"
#elif JPEG_LIB_VERSION >= 70
#define LDAE_JPEG_SONAME "libjpeg.so.7"
#else
#define LDAE_JPEG_SONAME "libjpeg.so.62"
#endif

#define STR2(x) #x
#define STR(x) STR2(x)
#ifdef LIBJPEG_TURBO_VERSION
#define LDAE_JPEG_VERSION "libjpeg-turbo " STR(LIBJPEG_TURBO_VERSION)
#else
#define LDAE_JPEG_VERSION "libjpeg " STR(JPEG_LIB_VERSION)
#endif

static struct {
    struct jpeg_error_mgr *(*std_error)(struct jpeg_error_mgr *);
    void (*create)(j_decompress_ptr, int, size_t);
    void (*destroy)(j_decompress_ptr);
    void (*abort_)(j_decompress_ptr);
    void (*mem_src)(j_decompress_ptr, const unsigned char *, unsigned long);
    int (*read_header)(j_decompress_ptr, boolean);
    boolean (*start)(j_decompress_ptr);
    JDIMENSION (*read_scanlines)(j_decompress_ptr, JSAMPARRAY, JDIMENSION);
    boolean (*finish)(j_decompress_ptr);
    /* libjpeg-turbo 1.5 and later only: decoding a region (NULL when missing). */
    void (*crop)(j_decompress_ptr, JDIMENSION *, JDIMENSION *);
    JDIMENSION (*skip)(j_decompress_ptr, JDIMENSION);
} lib;
static int lib_ok = 0;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *h = dlopen(LDAE_JPEG_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
#define SYM(field, name) *(void **)(&lib.field) = dlsym(h, name); if (!lib.field) return;
    SYM(std_error, "jpeg_std_error");
    SYM(create, "jpeg_CreateDecompress");
    SYM(destroy, "jpeg_destroy_decompress");
    SYM(abort_, "jpeg_abort_decompress");
    SYM(mem_src, "jpeg_mem_src");
    SYM(read_header, "jpeg_read_header");
    SYM(start, "jpeg_start_decompress");
    SYM(read_scanlines, "jpeg_read_scanlines");
    SYM(finish, "jpeg_finish_decompress");
#undef SYM
    *(void **)(&lib.crop) = dlsym(h, "jpeg_crop_scanline");
    *(void **)(&lib.skip) = dlsym(h, "jpeg_skip_scanlines");
    lib_ok = 1;
}

/* The library this build loads and its version, for `--version`. */
const char *ldae_jpeg_soname(void) { return LDAE_JPEG_SONAME; }
const char *ldae_jpeg_version(void) { return LDAE_JPEG_VERSION; }

/* 1 when the library loaded and has every function used here. */
int ldae_jpeg_available(void) {
    pthread_once(&lib_once, load);
    return lib_ok;
}

struct err_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int warnings;
};

/* One decompressor: reused across images of one thread (libjpeg's pools are kept). */
struct ldae_jpeg {
    struct jpeg_decompress_struct cinfo;
    struct err_mgr err;
};

static void on_error(j_common_ptr cinfo) { longjmp(((struct err_mgr *)cinfo->err)->jump, 1); }
static void on_message(j_common_ptr cinfo, int level) {
    if (level < 0) ((struct err_mgr *)cinfo->err)->warnings++;
}
static void no_output(j_common_ptr cinfo) { (void)cinfo; }

struct ldae_jpeg *ldae_jpeg_new(void) {
    if (!ldae_jpeg_available()) return NULL;
    struct ldae_jpeg *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->cinfo.err = lib.std_error(&d->err.pub);
    d->err.pub.error_exit = on_error;
    d->err.pub.emit_message = on_message;
    d->err.pub.output_message = no_output;
    if (setjmp(d->err.jump)) { /* another ABI: the struct size check failed */
        free(d);
        return NULL;
    }
    lib.create(&d->cinfo, JPEG_LIB_VERSION, sizeof(struct jpeg_decompress_struct));
    return d;
}

void ldae_jpeg_free(struct ldae_jpeg *d) {
    if (!d) return;
    lib.destroy(&d->cinfo);
    free(d);
}

/* Reads the header of `data`: the size, and whether it is a plain 8-bit YCbCr, RGB or grayscale
 * JPEG. 0 on success, 1 when libjpeg stopped on it. On success the decompressor stays after
 * the header, so `ldae_jpeg_decode` goes on from there (the header is parsed once) while `data`
 * is alive; a caller that does not decode just reads the next header, which starts afresh. */
int ldae_jpeg_header(struct ldae_jpeg *d, const unsigned char *data, size_t len,
                     unsigned *width, unsigned *height, int *plain) {
    j_decompress_ptr c = &d->cinfo;
    if (setjmp(d->err.jump)) {
        lib.abort_(c);
        return 1;
    }
    lib.abort_(c); /* whatever the last image left: abort is valid in every state */
    d->err.warnings = 0;
    lib.mem_src(c, data, (unsigned long)len);
    if (lib.read_header(c, TRUE) != JPEG_HEADER_OK) {
        lib.abort_(c);
        return 1;
    }
    *width = c->image_width;
    *height = c->image_height;
    *plain = c->data_precision == 8 &&
             (c->jpeg_color_space == JCS_YCbCr || c->jpeg_color_space == JCS_RGB ||
              c->jpeg_color_space == JCS_GRAYSCALE);
    return 0;
}

/* Starts decoding the image whose header was just read, to interleaved RGB at eighths/8 of
 * its size, and checks that size is `width x height`: 0 when it is (else the decoder is
 * aborted). Called under the caller's setjmp. */
static int start_rgb(j_decompress_ptr c, unsigned eighths, unsigned width, unsigned height) {
    c->out_color_space = JCS_RGB;
    c->scale_num = eighths;
    c->scale_denom = 8;
    c->dct_method = JDCT_ISLOW;
    lib.start(c);
    if (c->output_width != width || c->output_height != height || c->output_components != 3) {
        lib.abort_(c);
        return 1;
    }
    return 0;
}

/* Reads the output rows from the current one up to `end` into `out`, row r at
 * `out + (r - first) * pitch`. Called under the caller's setjmp. */
static void read_rows(j_decompress_ptr c, unsigned char *out, unsigned first, unsigned end,
                      size_t pitch) {
    while (c->output_scanline < end) {
        JSAMPROW rows[4];
        unsigned n = 0;
        for (; n < 4 && c->output_scanline + n < end; n++)
            rows[n] = out + (size_t)(c->output_scanline + n - first) * pitch;
        lib.read_scanlines(c, rows, n);
    }
}

/* Decodes the image whose header `ldae_jpeg_header` just read to interleaved RGB at eighths/8
 * of the size (the library reduces the fraction), into `out` of `width * height * 3` bytes,
 * where width and height are what the caller expects (ceil(size * eighths / 8)). 0 on success;
 * 1 when libjpeg stopped on it, warned about it (truncated or corrupt data, the header's
 * warnings included) or its size is not the expected one. */
int ldae_jpeg_decode(struct ldae_jpeg *d, unsigned eighths, unsigned char *out, unsigned width,
                     unsigned height) {
    j_decompress_ptr c = &d->cinfo;
    if (setjmp(d->err.jump)) {
        lib.abort_(c);
        return 1;
    }
    if (start_rgb(c, eighths, width, height)) return 1;
    read_rows(c, out, 0, height, (size_t)width * 3);
    lib.finish(c);
    return d->err.warnings ? 1 : 0;
}

/* 1 when the loaded library can decode a region (jpeg_crop_scanline, jpeg_skip_scanlines). */
int ldae_jpeg_can_crop(void) { return ldae_jpeg_available() && lib.crop && lib.skip; }

/* As `ldae_jpeg_decode`, but only the rows [y0, y1) and at least the columns [x0, x1) of the
 * image at eighths/8, whose full size there is `width x height`: libjpeg-turbo widens the
 * columns to its iMCU boundaries and says which came in `*got_x0`, `*got_width`. Rows above
 * the region are skipped and those below it skipped to the end (their entropy-coded data is
 * still read, so a damaged file fails here as it would in a full decode). `out` holds
 * `width * (y1 - y0) * 3` bytes; the rows come packed at `*got_width * 3` bytes each. The
 * region's pixels are the full decode's (libjpeg-turbo decodes the neighbours its upsampling
 * needs). 0 on success, 1 as `ldae_jpeg_decode`. */
int ldae_jpeg_decode_region(struct ldae_jpeg *d, unsigned eighths, unsigned char *out,
                            unsigned width, unsigned height, unsigned x0, unsigned y0,
                            unsigned x1, unsigned y1, unsigned *got_x0, unsigned *got_width) {
    j_decompress_ptr c = &d->cinfo;
    if (!lib.crop || !lib.skip || x0 >= x1 || y0 >= y1 || x1 > width || y1 > height) return 1;
    if (setjmp(d->err.jump)) {
        lib.abort_(c);
        return 1;
    }
    if (start_rgb(c, eighths, width, height)) return 1;
    JDIMENSION xoff = x0, xw = x1 - x0;
    if (x0 > 0 || x1 < width) lib.crop(c, &xoff, &xw);
    if (xoff > x0 || xoff + xw < x1) { /* not the columns asked for */
        lib.abort_(c);
        return 1;
    }
    if (y0 > 0 && lib.skip(c, y0) != y0) {
        lib.abort_(c);
        return 1;
    }
    read_rows(c, out, y0, y1, (size_t)xw * 3);
    if (y1 < height) lib.skip(c, height - y1);
    lib.finish(c);
    *got_x0 = xoff;
    *got_width = xw;
    return d->err.warnings ? 1 : 0;
}
