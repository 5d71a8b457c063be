/*
 * activation_none.c - activation.h where no service manager passes
 * listening sockets (Windows: the SCM starts a service with none): every
 * listener binds its own.
 */
#include "activation.h"

#include <stdlib.h>

void proxy_activation_collect(struct proxy_activated **out, size_t *n)
{
    *out = NULL;
    *n = 0;
}

int proxy_activation_take(struct proxy_activated *a, size_t n, const struct conf_addr *addr)
{
    return -1;
}

void proxy_activation_close_unused(struct proxy_activated **a, size_t *n)
{
    free(*a);
    *a = NULL;
    *n = 0;
}
