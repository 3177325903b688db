#ifndef CROCANTE_CFASTCGI_SHIM_H
#define CROCANTE_CFASTCGI_SHIM_H
// Only the reentrant API: fcgi_stdio.h would redefine printf and friends.
#include <fcgiapp.h>
#endif
