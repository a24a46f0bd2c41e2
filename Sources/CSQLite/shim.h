#ifndef RADGRID_CSQLITE_SHIM_H
#define RADGRID_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
