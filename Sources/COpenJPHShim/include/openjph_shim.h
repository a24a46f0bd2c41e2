#ifndef RADGRID_OPENJPH_SHIM_H
#define RADGRID_OPENJPH_SHIM_H
// A C face for the few OpenJPH (C++) calls the HTJ2K codec needs. OpenJPH reports errors by
// throwing; every entry point catches them and returns a status with the library's message.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct radgrid_ojph_decoder radgrid_ojph_decoder;

/// What the main header says (after the decoder has read it).
typedef struct radgrid_ojph_info {
    uint32_t width, height;   // image extent minus offset
    uint32_t components;
    uint32_t bit_depth[4];    // first four components
    uint8_t is_signed[4];
    uint8_t reversible;
    uint8_t color_transform;
} radgrid_ojph_info;

enum { RADGRID_OJPH_OK = 0, RADGRID_OJPH_ERROR = 1, RADGRID_OJPH_NO_MEMORY = 2 };

/// Reads the main header of the raw codestream `data` (which must outlive the decoder) and
/// prepares decoding. On failure returns NULL and writes a message into `message`.
radgrid_ojph_decoder *radgrid_ojph_open(const uint8_t *data, size_t size, radgrid_ojph_info *info,
                                        char *message, size_t message_size);

/// Decodes the next line: sets `*component` and `*line` (width 32-bit samples, valid until
/// the next call). Lines come component by component within each row, or plane by plane.
int radgrid_ojph_pull(radgrid_ojph_decoder *decoder, uint32_t *component, const int32_t **line,
                      char *message, size_t message_size);

void radgrid_ojph_close(radgrid_ojph_decoder *decoder);

#ifdef __cplusplus
}
#endif
#endif
