// zlib, Debian's zlib1g-dev: gzip-compressed movie log files.
#include <zlib.h>
