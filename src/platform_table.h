/* platform_table: which implementation of the platform interface each platform.type names. */
#ifndef PGHA_PLATFORM_TABLE_H
#define PGHA_PLATFORM_TABLE_H

#include "platform.h"

/* The operations of platform type (enum platform_type), or NULL when none. */
const struct platform_ops *platform_table_find(int type);

#endif
