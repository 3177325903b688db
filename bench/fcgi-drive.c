/*
 * A bounded FastCGI load driver for profiling (bench/profile): sends exactly N logout requests
 * straight to a responder's unix socket, as nginx would (one connection per request, the
 * parameters nginx.conf.example sends), from C threads, and checks each answer is a 200.
 * No nginx and no wrk in the profile, and a known request count to divide by.
 *
 *   cc -O2 -pthread -o fcgi-drive bench/fcgi-drive.c
 *   fcgi-drive SOCKET_PATH REQUESTS CONCURRENCY [COOKIE_HEADER | @COOKIE_FILE [FIRST_LINE]]
 *
 * With @COOKIE_FILE (bench/seal-pool.py's output, one Cookie header value a line), request i
 * sends line FIRST_LINE + i (cycling): distinct tokens, as the bench's pool sends them, so the
 * profile measures the queue and the spool, not the deduplication of one replayed token.
 *
 * With KEEP=1 in the environment each thread keeps its connection, as nginx with an upstream
 * `keepalive` and `fastcgi_keep_conn on` does (the keep-connection flag set in each begin
 * record), and when the responder has closed it, sends the request again on a new one, as
 * nginx's `fastcgi_next_upstream ... non_idempotent` does.
 *
 * Prints "requests=N ok=N failed=N seconds=S". Exit status 1 if any request failed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *socket_path;
static const char *cookie;
static char **cookie_lines;
static long cookie_count, first_line;
static atomic_long next_request;
static long total_requests;
static atomic_long ok_count, failed_count;
static int keep_connections;

struct buffer { unsigned char data[8192]; size_t length; };

static void put_record_header(struct buffer *b, int type, size_t content_length) {
    unsigned char *h = b->data + b->length;
    h[0] = 1; h[1] = (unsigned char)type; h[2] = 0; h[3] = 1;  /* version, type, request id 1 */
    h[4] = (unsigned char)(content_length >> 8); h[5] = (unsigned char)content_length;
    h[6] = 0; h[7] = 0;
    b->length += 8;
}

static void put_length(unsigned char **p, size_t n) {
    if (n < 128) { *(*p)++ = (unsigned char)n; return; }
    *(*p)++ = (unsigned char)((n >> 24) | 0x80); *(*p)++ = (unsigned char)(n >> 16);
    *(*p)++ = (unsigned char)(n >> 8); *(*p)++ = (unsigned char)n;
}

static size_t put_param(unsigned char *p, const char *name, const char *value) {
    unsigned char *start = p;
    size_t n = strlen(name), v = strlen(value);
    put_length(&p, n); put_length(&p, v);
    memcpy(p, name, n); p += n; memcpy(p, value, v); p += v;
    return (size_t)(p - start);
}

/* The request as nginx sends it with fastcgi_params + HTTP_COOKIE, built once (or, with a
 * cookie file, once per request). */
static struct buffer request_bytes;

static void build_request(struct buffer *b, const char *cookie) {
    b->length = 0;
    put_record_header(b, 1, 8);  /* FCGI_BEGIN_REQUEST */
    unsigned char begin[8] = {0, 1, (unsigned char)keep_connections, 0, 0, 0, 0, 0};  /* role RESPONDER, flags: keep-conn */
    memcpy(b->data + b->length, begin, 8); b->length += 8;

    unsigned char params[6000]; size_t n = 0;
    const char *pairs[][2] = {
        {"QUERY_STRING", ""}, {"REQUEST_METHOD", "POST"}, {"CONTENT_TYPE", ""}, {"CONTENT_LENGTH", "0"},
        {"SCRIPT_NAME", "/api/auth/logout"}, {"REQUEST_URI", "/api/auth/logout"},
        {"DOCUMENT_URI", "/api/auth/logout"}, {"DOCUMENT_ROOT", "/usr/share/nginx/html"},
        {"SERVER_PROTOCOL", "HTTP/1.1"}, {"REQUEST_SCHEME", "http"}, {"GATEWAY_INTERFACE", "CGI/1.1"},
        {"SERVER_SOFTWARE", "nginx/1.22.1"}, {"REMOTE_ADDR", "127.0.0.1"}, {"REMOTE_PORT", "54321"},
        {"SERVER_ADDR", "127.0.0.1"}, {"SERVER_PORT", "8080"}, {"SERVER_NAME", "_"},
        {"REDIRECT_STATUS", "200"}, {"HTTP_HOST", "127.0.0.1:8080"}, {"HTTP_CONTENT_LENGTH", "0"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) n += put_param(params + n, pairs[i][0], pairs[i][1]);
    if (cookie && *cookie) n += put_param(params + n, "HTTP_COOKIE", cookie);
    put_record_header(b, 4, n);  /* FCGI_PARAMS */
    memcpy(b->data + b->length, params, n); b->length += n;
    put_record_header(b, 4, 0);  /* end of params */
    put_record_header(b, 5, 0);  /* FCGI_STDIN, empty */
}

static int connect_responder(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, socket_path, sizeof address.sun_path - 1);
    for (int attempt = 0; connect(fd, (struct sockaddr *)&address, sizeof address) != 0; attempt++) {
        if (errno != EAGAIN || attempt > 1000) { close(fd); return -1; }
        usleep(1000);
    }
    return fd;
}

/* One request on *kept (a kept connection, or -1 for a new one); 0 when answered 200. */
static int one_request(const struct buffer *request, int *kept) {
    int fd = *kept >= 0 ? *kept : connect_responder();
    *kept = -1;
    if (fd < 0) return -1;
    size_t sent = 0;
    while (sent < request->length) {
        ssize_t w = send(fd, request->data + sent, request->length - sent, MSG_NOSIGNAL);
        if (w <= 0) { close(fd); return -1; }
        sent += (size_t)w;
    }
    /* Read records until FCGI_END_REQUEST; check the stdout starts with a 200. */
    unsigned char in[16384]; size_t have = 0; int status_ok = 0, ended = 0, first_stdout = 1;
    for (;;) {
        ssize_t r = read(fd, in + have, sizeof in - have);
        if (r <= 0) break;
        have += (size_t)r;
        size_t off = 0;
        while (have - off >= 8) {
            size_t clen = ((size_t)in[off + 4] << 8) | in[off + 5], plen = in[off + 6];
            if (have - off < 8 + clen + plen) break;
            int type = in[off + 1];
            if (type == 6 && clen > 0 && first_stdout) {
                first_stdout = 0;
                status_ok = clen >= 14 && memcmp(in + off + 8, "Status: 200 OK", 14) == 0;
            }
            if (type == 3) ended = 1;
            off += 8 + clen + plen;
        }
        memmove(in, in + off, have - off); have -= off;
        if (ended) break;
    }
    if (keep_connections && ended) *kept = fd; else close(fd);
    return ended && status_ok ? 0 : -1;
}

static void load_cookie_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(66); }
    char *line = NULL; size_t capacity = 0; ssize_t n; long allocated = 0;
    while ((n = getline(&line, &capacity, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        if (cookie_count == allocated) {
            allocated = allocated ? 2 * allocated : 1024;
            cookie_lines = realloc(cookie_lines, (size_t)allocated * sizeof *cookie_lines);
            if (!cookie_lines) exit(71);
        }
        cookie_lines[cookie_count++] = strdup(line);
    }
    free(line);
    fclose(f);
    if (cookie_count == 0) { fprintf(stderr, "%s: no cookies\n", path); exit(66); }
}

static void *worker(void *unused) {
    (void)unused;
    static _Thread_local struct buffer own;
    int kept = -1;
    long i;
    while ((i = atomic_fetch_add(&next_request, 1)) < total_requests) {
        const struct buffer *request = &request_bytes;
        if (cookie_lines) {
            build_request(&own, cookie_lines[(first_line + i) % cookie_count]);
            request = &own;
        }
        int reused = kept >= 0;
        int status = one_request(request, &kept);
        /* A kept connection the responder gave up: again on a new one, as nginx retries. */
        if (status != 0 && reused) status = one_request(request, &kept);
        if (status == 0) atomic_fetch_add(&ok_count, 1); else atomic_fetch_add(&failed_count, 1);
    }
    if (kept >= 0) close(kept);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s SOCKET_PATH REQUESTS CONCURRENCY [COOKIE_HEADER | @COOKIE_FILE [FIRST_LINE]]\n", argv[0]);
        return 64;
    }
    socket_path = argv[1];
    total_requests = atol(argv[2]);
    int concurrency = atoi(argv[3]);
    cookie = argc >= 5 ? argv[4] : NULL;
    if (concurrency < 1 || concurrency > 256) return 64;
    if (cookie && cookie[0] == '@') {
        load_cookie_file(cookie + 1);
        first_line = argc == 6 ? atol(argv[5]) : 0;
        cookie = NULL;
    }
    keep_connections = getenv("KEEP") && strcmp(getenv("KEEP"), "1") == 0;
    build_request(&request_bytes, cookie);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t threads[256];
    for (int i = 0; i < concurrency; i++) pthread_create(&threads[i], NULL, worker, NULL);
    for (int i = 0; i < concurrency; i++) pthread_join(threads[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("requests=%ld ok=%ld failed=%ld seconds=%.3f\n", total_requests, atomic_load(&ok_count),
           atomic_load(&failed_count), seconds);
    return atomic_load(&failed_count) ? 1 : 0;
}
