#ifndef RADGRID_JPEG_RECOVERY_H
#define RADGRID_JPEG_RECOVERY_H
// libjpeg reports errors by calling error_exit(), whose default ends the process. These
// entry points run each libjpeg call under setjmp so an error (or a warning: a damaged
// stream) returns -1 here instead; Swift only ever calls these wrappers, so no longjmp
// crosses a Swift frame.
#include <stddef.h>
#include <stdio.h>
#include <jpeglib.h>

typedef struct rg_jpeg_decoder rg_jpeg_decoder;

/// A decompressor with the recovering error manager, or NULL when out of memory.
rg_jpeg_decoder *rg_jpeg_create(long max_memory);
void rg_jpeg_destroy(rg_jpeg_decoder *decoder);
/// The libjpeg object, for reading header fields and setting decompression parameters.
struct jpeg_decompress_struct *rg_jpeg_info(rg_jpeg_decoder *decoder);
/// libjpeg's text for the last error or warning ("" when none).
const char *rg_jpeg_message(const rg_jpeg_decoder *decoder);
/// libjpeg's message code for the last error or warning (J_MESSAGE_CODE), 0 when none.
int rg_jpeg_message_code(const rg_jpeg_decoder *decoder);

/// Each returns 0 on success and -1 when libjpeg raised an error or a warning.
int rg_jpeg_read_header(rg_jpeg_decoder *decoder, const unsigned char *data, unsigned long size);
int rg_jpeg_start(rg_jpeg_decoder *decoder);
int rg_jpeg_read_rows(rg_jpeg_decoder *decoder, JSAMPARRAY rows, JDIMENSION max_rows, JDIMENSION *rows_read);

/// Compresses 8-bit grey (1 component) or RGB (3) rows into a baseline JPEG in memory.
/// Returns 0 and a malloc'd buffer (free it with rg_jpeg_free) or -1 on any libjpeg error.
int rg_jpeg_encode_8bit(const unsigned char *pixels, unsigned int width, unsigned int height, int components, int quality,
                        unsigned char **output, unsigned long *output_size);
void rg_jpeg_free(unsigned char *buffer);

#endif
