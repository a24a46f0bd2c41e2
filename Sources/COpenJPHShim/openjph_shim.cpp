#include "openjph_shim.h"

// ojph_arch.h defines OJPH_EXPORT, which the other headers use without including it.
#include <openjph/ojph_arch.h>
#include <openjph/ojph_file.h>
#include <openjph/ojph_mem.h>
#include <openjph/ojph_codestream.h>
#include <openjph/ojph_message.h>
#include <openjph/ojph_params.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>

namespace {

// OpenJPH 0.9 prints info and warnings to stdout and errors to stderr, then throws
// std::runtime_error("ojph error"). Its configure_* functions copy the handler object by value
// (the override is lost) and its info printer does not accept a NULL stream, so all three go
// to /dev/null. The caller learns that OpenJPH refused the stream, not why.
std::once_flag streams_configured;

void configure_streams() {
    std::call_once(streams_configured, [] {
        if (FILE *sink = fopen("/dev/null", "w")) {
            ojph::set_info_stream(sink);
            ojph::set_warning_stream(sink);
            ojph::set_error_stream(sink);
        }
    });
}

void copy_message(char *message, size_t size, const char *text) {
    if (message && size > 0) snprintf(message, size, "%s", text);
}

}  // namespace

struct radgrid_ojph_decoder {
    ojph::mem_infile input;
    ojph::codestream codestream;
};

extern "C" radgrid_ojph_decoder *radgrid_ojph_open(const uint8_t *data, size_t size, radgrid_ojph_info *info,
                                                   char *message, size_t message_size) {
    configure_streams();
    radgrid_ojph_decoder *decoder = nullptr;
    try {
        decoder = new radgrid_ojph_decoder();
        decoder->input.open(data, size);
        decoder->codestream.read_headers(&decoder->input);
        ojph::param_siz siz = decoder->codestream.access_siz();
        ojph::point extent = siz.get_image_extent(), offset = siz.get_image_offset();
        std::memset(info, 0, sizeof *info);
        info->width = extent.x - offset.x;
        info->height = extent.y - offset.y;
        info->components = siz.get_num_components();
        for (uint32_t c = 0; c < info->components && c < 4; ++c) {
            info->bit_depth[c] = siz.get_bit_depth(c);
            info->is_signed[c] = siz.is_signed(c) ? 1 : 0;
        }
        ojph::param_cod cod = decoder->codestream.access_cod();
        info->reversible = cod.is_reversible() ? 1 : 0;
        info->color_transform = cod.is_using_color_transform() ? 1 : 0;
        // Colour lines interleaved by row (the MCT needs all three); grey is one plane anyway.
        decoder->codestream.set_planar(false);
        decoder->codestream.create();
        return decoder;
    } catch (const std::bad_alloc &) {
        copy_message(message, message_size, "out of memory");
    } catch (const std::exception &e) {
        copy_message(message, message_size, e.what());
    } catch (...) {
        copy_message(message, message_size, "unknown OpenJPH failure");
    }
    delete decoder;
    return nullptr;
}

extern "C" int radgrid_ojph_pull(radgrid_ojph_decoder *decoder, uint32_t *component, const int32_t **line,
                                 char *message, size_t message_size) {
    try {
        ojph::ui32 comp = 0;
        ojph::line_buf *buffer = decoder->codestream.pull(comp);
        if (!buffer) {
            copy_message(message, message_size, "no more lines");
            return RADGRID_OJPH_ERROR;
        }
        *component = comp;
        *line = buffer->i32;
        return RADGRID_OJPH_OK;
    } catch (const std::bad_alloc &) {
        copy_message(message, message_size, "out of memory");
        return RADGRID_OJPH_NO_MEMORY;
    } catch (const std::exception &e) {
        copy_message(message, message_size, e.what());
    } catch (...) {
        copy_message(message, message_size, "unknown OpenJPH failure");
    }
    return RADGRID_OJPH_ERROR;
}

extern "C" void radgrid_ojph_close(radgrid_ojph_decoder *decoder) {
    if (!decoder) return;
    try {
        decoder->codestream.close();
    } catch (...) {
    }
    delete decoder;
}
