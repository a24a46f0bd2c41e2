#ifndef RADGRID_CZSTD_SHIM_H
#define RADGRID_CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
