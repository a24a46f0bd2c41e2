#ifndef RADGRID_COPENJPEG_SHIM_H
#define RADGRID_COPENJPEG_SHIM_H
#include <openjpeg.h>
#endif
