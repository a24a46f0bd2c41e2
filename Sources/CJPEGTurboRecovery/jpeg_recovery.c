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
