#ifndef RADGRID_CCHARLS_SHIM_H
#define RADGRID_CCHARLS_SHIM_H
#include <charls/charls.h>
#endif
