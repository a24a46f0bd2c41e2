#include "jpeg_recovery.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct rg_jpeg_decoder {
    struct jpeg_decompress_struct info;
    struct jpeg_error_mgr errors;
    jmp_buf recover;
    int created;
    char message[JMSG_LENGTH_MAX];
};

static void rg_error_exit(j_common_ptr info) {
    // `err` is the first member of errors, and errors sits inside our struct.
    rg_jpeg_decoder *decoder = (rg_jpeg_decoder *)info->client_data;
    (*info->err->format_message)(info, decoder->message);
    longjmp(decoder->recover, 1);
}

static void rg_emit_message(j_common_ptr info, int level) {
    // level -1 is a warning: libjpeg carries on past corrupt or truncated data, filling
    // the rest with grey; we refuse such a stream instead. Trace messages are ignored.
    if (level < 0) {
        rg_error_exit(info);
    }
}

static void rg_output_message(j_common_ptr info) {
    (void)info;  // never print to stderr
}

rg_jpeg_decoder *rg_jpeg_create(long max_memory) {
    rg_jpeg_decoder *decoder = calloc(1, sizeof(rg_jpeg_decoder));
    if (decoder == NULL) {
        return NULL;
    }
    decoder->info.err = jpeg_std_error(&decoder->errors);
    decoder->errors.error_exit = rg_error_exit;
    decoder->errors.emit_message = rg_emit_message;
    decoder->errors.output_message = rg_output_message;
    decoder->info.client_data = decoder;
    if (setjmp(decoder->recover)) {
        free(decoder);
        return NULL;
    }
    jpeg_create_decompress(&decoder->info);
    decoder->created = 1;
    if (max_memory > 0) {
        decoder->info.mem->max_memory_to_use = max_memory;
    }
    return decoder;
}

void rg_jpeg_destroy(rg_jpeg_decoder *decoder) {
    if (decoder == NULL) {
        return;
    }
    if (decoder->created && setjmp(decoder->recover) == 0) {
        jpeg_destroy_decompress(&decoder->info);
    }
    free(decoder);
}

struct jpeg_decompress_struct *rg_jpeg_info(rg_jpeg_decoder *decoder) {
    return &decoder->info;
}

const char *rg_jpeg_message(const rg_jpeg_decoder *decoder) {
    return decoder->message;
}

int rg_jpeg_message_code(const rg_jpeg_decoder *decoder) {
    return decoder->errors.msg_code;
}

int rg_jpeg_read_header(rg_jpeg_decoder *decoder, const unsigned char *data, unsigned long size) {
    if (setjmp(decoder->recover)) {
        return -1;
    }
    jpeg_mem_src(&decoder->info, data, size);
    jpeg_read_header(&decoder->info, TRUE);
    return 0;
}

int rg_jpeg_start(rg_jpeg_decoder *decoder) {
    if (setjmp(decoder->recover)) {
        return -1;
    }
    jpeg_start_decompress(&decoder->info);
    return 0;
}

int rg_jpeg_read_rows(rg_jpeg_decoder *decoder, JSAMPARRAY rows, JDIMENSION max_rows, JDIMENSION *rows_read) {
    if (setjmp(decoder->recover)) {
        return -1;
    }
    *rows_read = jpeg_read_scanlines(&decoder->info, rows, max_rows);
    return 0;
}

// MARK: Encoding (8-bit baseline, for rendered images)

struct rg_jpeg_encoder {
    struct jpeg_compress_struct info;
    struct jpeg_error_mgr errors;
    jmp_buf recover;
    char message[JMSG_LENGTH_MAX];
};

static void rg_encode_error_exit(j_common_ptr info) {
    struct rg_jpeg_encoder *encoder = (struct rg_jpeg_encoder *)info->client_data;
    (*info->err->format_message)(info, encoder->message);
    longjmp(encoder->recover, 1);
}

int rg_jpeg_encode_8bit(const unsigned char *pixels, unsigned int width, unsigned int height, int components, int quality,
                        unsigned char **output, unsigned long *output_size) {
    if (pixels == NULL || output == NULL || output_size == NULL || width == 0 || height == 0 || (components != 1 && components != 3)) {
        return -1;
    }
    *output = NULL;
    *output_size = 0;
    // Heap-allocated so that nothing setjmp must preserve lives in a register of this frame.
    struct rg_jpeg_encoder *encoder = calloc(1, sizeof(struct rg_jpeg_encoder));
    if (encoder == NULL) {
        return -1;
    }
    encoder->info.err = jpeg_std_error(&encoder->errors);
    encoder->errors.error_exit = rg_encode_error_exit;
    encoder->errors.output_message = rg_output_message;
    encoder->info.client_data = encoder;
    if (setjmp(encoder->recover)) {
        jpeg_destroy_compress(&encoder->info);
        free(*output);
        *output = NULL;
        *output_size = 0;
        free(encoder);
        return -1;
    }
    jpeg_create_compress(&encoder->info);
    jpeg_mem_dest(&encoder->info, output, output_size);
    encoder->info.image_width = width;
    encoder->info.image_height = height;
    encoder->info.input_components = components;
    encoder->info.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&encoder->info);
    jpeg_set_quality(&encoder->info, quality, TRUE);
    jpeg_start_compress(&encoder->info, TRUE);
    while (encoder->info.next_scanline < encoder->info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)encoder->info.next_scanline * width * (size_t)components);
        jpeg_write_scanlines(&encoder->info, &row, 1);
    }
    jpeg_finish_compress(&encoder->info);
    jpeg_destroy_compress(&encoder->info);
    free(encoder);
    return 0;
}

void rg_jpeg_free(unsigned char *buffer) { free(buffer); }
