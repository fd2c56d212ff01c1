// libjpeg-turbo (Debian's libjpeg62-turbo-dev) for JPEG output.
//
// libjpeg reports a fatal error by calling `error_exit`, which must not return; its default
// prints the message and calls exit(). The only way to get control back is setjmp/longjmp,
// which Swift cannot use, so the whole compress (and, for tests, decompress) call lives in the
// small C functions below: they install an error manager that longjmps back, clean up, and
// return 0 with libjpeg's message instead of ending the process.
#ifndef SWIFT_DIFFUSERS_CJPEG_SHIM_H
#define SWIFT_DIFFUSERS_CJPEG_SHIM_H

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>    // jpeglib.h uses FILE without including it
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>   // ERREXIT1 and the message codes

typedef struct {
    struct jpeg_error_mgr manager;   // first: libjpeg hands back a pointer to it
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} cjpeg_error_manager;

static inline void cjpeg_error_exit(j_common_ptr cinfo) {
    cjpeg_error_manager *error = (cjpeg_error_manager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, error->message);
    longjmp(error->jump, 1);
}

// Warnings (corrupt-data notices while decoding) would go to stderr; a library stays quiet.
static inline void cjpeg_ignore_message(j_common_ptr cinfo) { (void)cinfo; }

static inline void cjpeg_install_error_manager(cjpeg_error_manager *error) {
    jpeg_std_error(&error->manager);
    error->manager.error_exit = cjpeg_error_exit;
    error->manager.output_message = cjpeg_ignore_message;
    error->message[0] = 0;
}

// A growing malloc'd output buffer owned here rather than by jpeg_mem_dest: after an error,
// jpeg_mem_dest's caller-visible pointer can name a buffer it has already replaced, so it
// could be neither freed safely nor leaked safely.
typedef struct {
    struct jpeg_destination_mgr manager;   // first, as above
    unsigned char *buffer;
    size_t capacity;
} cjpeg_destination;

static inline void cjpeg_init_destination(j_compress_ptr cinfo) { (void)cinfo; }

static inline boolean cjpeg_empty_output_buffer(j_compress_ptr cinfo) {
    cjpeg_destination *destination = (cjpeg_destination *)cinfo->dest;
    size_t used = destination->capacity;   // libjpeg calls this only when the buffer is full
    size_t capacity = used * 2;
    unsigned char *grown = (unsigned char *)realloc(destination->buffer, capacity);
    if (grown == NULL) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
    destination->buffer = grown;
    destination->capacity = capacity;
    destination->manager.next_output_byte = grown + used;
    destination->manager.free_in_buffer = capacity - used;
    return TRUE;
}

static inline void cjpeg_term_destination(j_compress_ptr cinfo) { (void)cinfo; }

/// Compresses `height` rows of `width` RGB pixels (3 bytes each, no padding) at `quality`
/// (1-100), with 4:2:0 chroma subsampling when `subsample_chroma` is non-zero (libjpeg's
/// default) or none (4:4:4) otherwise, and Huffman tables optimised for the image. When
/// `app1_length` is non-zero, `app1` (at most 65533 bytes) is written as an APP1 segment after
/// the JFIF header.
///
/// On success returns 1 and sets `*out` to a malloc'd buffer of `*out_length` bytes that the
/// caller frees. On failure returns 0, copies libjpeg's message into `message`
/// (JMSG_LENGTH_MAX bytes) and leaves `*out` NULL.
static inline int cjpeg_compress_rgb(const unsigned char *rgb, unsigned int width, unsigned int height, int quality,
                                     int subsample_chroma, const unsigned char *app1, unsigned int app1_length,
                                     unsigned char **out, size_t *out_length, char *message) {
    struct jpeg_compress_struct cinfo;
    cjpeg_error_manager error;
    cjpeg_destination destination;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&destination, 0, sizeof destination);
    *out = NULL;
    *out_length = 0;
    cjpeg_install_error_manager(&error);
    cinfo.err = &error.manager;
    if (setjmp(error.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(destination.buffer);
        memcpy(message, error.message, JMSG_LENGTH_MAX);
        return 0;
    }
    jpeg_create_compress(&cinfo);

    destination.capacity = 1 << 16;
    destination.buffer = (unsigned char *)malloc(destination.capacity);
    if (destination.buffer == NULL) ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
    destination.manager.next_output_byte = destination.buffer;
    destination.manager.free_in_buffer = destination.capacity;
    destination.manager.init_destination = cjpeg_init_destination;
    destination.manager.empty_output_buffer = cjpeg_empty_output_buffer;
    destination.manager.term_destination = cjpeg_term_destination;
    cinfo.dest = &destination.manager;

    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    cinfo.optimize_coding = TRUE;
    if (!subsample_chroma) {
        cinfo.comp_info[0].h_samp_factor = 1;
        cinfo.comp_info[0].v_samp_factor = 1;
    }
    jpeg_start_compress(&cinfo, TRUE);
    if (app1_length > 0) jpeg_write_marker(&cinfo, JPEG_APP0 + 1, app1, app1_length);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    *out_length = destination.capacity - destination.manager.free_in_buffer;
    *out = destination.buffer;
    jpeg_destroy_compress(&cinfo);
    return 1;
}

/// Decompresses the JPEG in `data` to RGB (3 bytes a pixel, rows without padding), saving the
/// APP1 segments so that `*app1` can point at the first one whose data starts with
/// "Exif\0\0" (copied into a malloc'd buffer of `*app1_length` bytes, or NULL when none).
///
/// On success returns 1 and sets `*pixels` (malloc'd, the caller frees it), `*width` and
/// `*height`. On failure returns 0 with libjpeg's message in `message` (JMSG_LENGTH_MAX bytes)
/// and nothing to free.
static inline int cjpeg_decompress_rgb(const unsigned char *data, size_t length, unsigned char **pixels,
                                       unsigned int *width, unsigned int *height, unsigned char **app1,
                                       size_t *app1_length, char *message) {
    struct jpeg_decompress_struct cinfo;
    cjpeg_error_manager error;
    memset(&cinfo, 0, sizeof cinfo);
    *pixels = NULL;
    *app1 = NULL;
    *app1_length = 0;
    *width = 0;
    *height = 0;
    cjpeg_install_error_manager(&error);
    cinfo.err = &error.manager;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(*pixels);
        *pixels = NULL;
        free(*app1);
        *app1 = NULL;
        *app1_length = 0;
        memcpy(message, error.message, JMSG_LENGTH_MAX);
        return 0;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)length);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    for (jpeg_saved_marker_ptr marker = cinfo.marker_list; marker != NULL; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 1 && marker->data_length >= 6 && memcmp(marker->data, "Exif\0\0", 6) == 0) {
            *app1 = (unsigned char *)malloc(marker->data_length);
            if (*app1 == NULL) ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
            memcpy(*app1, marker->data, marker->data_length);
            *app1_length = marker->data_length;
            break;
        }
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t row_bytes = (size_t)cinfo.output_width * 3;
    *pixels = (unsigned char *)malloc(row_bytes * cinfo.output_height);
    if (*pixels == NULL) ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = (JSAMPROW)(*pixels + (size_t)cinfo.output_scanline * row_bytes);
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    *width = cinfo.output_width;
    *height = cinfo.output_height;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 1;
}

#endif
