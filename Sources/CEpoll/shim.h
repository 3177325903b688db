#ifndef CROCANTE_CEPOLL_SHIM_H
#define CROCANTE_CEPOLL_SHIM_H
// Glibc's Swift module leaves sys/epoll.h out; the kept-connection set needs it (Linux only).
#include <sys/epoll.h>
#endif
