/* The system liblz4 headers (block and frame APIs) for the CLZ4 module map. */
#ifndef VECGO_CLZ4_SHIM_H
#define VECGO_CLZ4_SHIM_H
#include <lz4.h>
#include <lz4frame.h>
#endif
