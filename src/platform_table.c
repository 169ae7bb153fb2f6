/* platform_table: which implementation of the platform interface each platform.type names; the one place that knows them all. */
#include "autoconfig.h"

#include "platform_table.h"

#include <stddef.h>

#include "platform_k8s.h"
#include "platform_local.h"

static const struct {
	enum platform_type type;
	const struct platform_ops *ops;
} platforms[] = {
	{PLATFORM_LOCAL, &local_platform_ops},
	{PLATFORM_KUBERNETES, &kube_platform_ops},
};

const struct platform_ops *platform_table_find(int type)
{
	for (size_t i = 0; i < sizeof platforms / sizeof platforms[0]; i++)
		if ((int)platforms[i].type == type)
			return platforms[i].ops;
	return NULL;
}
