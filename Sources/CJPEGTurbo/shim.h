#ifndef RADGRID_CJPEGTURBO_SHIM_H
#define RADGRID_CJPEGTURBO_SHIM_H
// jpeglib.h needs FILE and size_t declared before it.
#include <stddef.h>
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#endif
