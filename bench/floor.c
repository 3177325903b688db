/*
 * The benchmark's floor: the cheapest responder the design allows. N threads, each with its
 * own FCGX_Request in an FCGX_Accept_r loop on one unix socket, writing the very bytes
 * crocante-logout answers (APP_ENV=production), and nothing else: no cookie parsing, no
 * crypto, no queue. What crocante-logout costs beyond this is the cost of the logout itself.
 *
 *   cc -O2 -pthread -o floor bench/floor.c -lfcgi
 *   ./floor /path/to/floor.sock WORKERS
 *
 * Stops on SIGTERM/SIGINT (default action); bench/run removes the socket with its run dir.
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

static const char response[] =
    "Status: 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 16\r\n"
    "Cache-Control: no-store\r\n"
    "Set-Cookie: crocante_session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; "
    "HttpOnly; SameSite=Strict; Secure\r\n"
    "\r\n"
    "{\"success\":true}";

static int listen_fd;

static void *worker(void *unused) {
    (void)unused;
    FCGX_Request request;
    if (FCGX_InitRequest(&request, listen_fd, 0) != 0) abort();
    /* Linux needs no accept() serialisation, so no mutex around FCGX_Accept_r. */
    while (FCGX_Accept_r(&request) >= 0) {
        FCGX_PutStr(response, (int)(sizeof response - 1), request.out);
        FCGX_Finish_r(&request);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SOCKET_PATH WORKERS\n", argv[0]);
        return 64;
    }
    int workers = atoi(argv[2]);
    if (workers < 1 || workers > 1024) {
        fprintf(stderr, "floor: WORKERS must be 1..1024\n");
        return 64;
    }
    if (FCGX_Init() != 0) return 71;
    /* libfcgi's SIGTERM handler only sets a flag its accept loop never sees while it blocks:
     * take the default action back so that bench/run can stop this process. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    /* FCGX_OpenSocket leaves the mode to the umask: make the socket reachable by nginx. */
    umask(0);
    listen_fd = FCGX_OpenSocket(argv[1], SOMAXCONN);
    if (listen_fd < 0) {
        fprintf(stderr, "floor: cannot listen on %s\n", argv[1]);
        return 71;
    }
    pthread_t *threads = calloc((size_t)workers, sizeof *threads);
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&threads[i], NULL, worker, NULL) != 0) return 71;
    }
    fprintf(stderr, "floor: ready on %s with %d workers\n", argv[1], workers);
    for (int i = 0; i < workers; i++) pthread_join(threads[i], NULL);
    return 0;
}
