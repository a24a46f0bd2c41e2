#ifndef RADGRID_CHIREDIS_SHIM_H
#define RADGRID_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
