#ifndef RADGRID_CZLIB_SHIM_H
#define RADGRID_CZLIB_SHIM_H
#include <zlib.h>
#endif
