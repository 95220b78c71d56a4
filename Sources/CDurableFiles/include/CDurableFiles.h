#ifndef CDURABLEFILES_H
#define CDURABLEFILES_H

/// Exchanges two paths atomically (Linux renameat2 with RENAME_EXCHANGE): both exist before and
/// after, each under the other's name. Returns 0, or -1 with errno set.
int durable_exchange_paths(const char *first, const char *second);

#endif
