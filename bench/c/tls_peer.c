/* bench/c/tls_peer.c — the C/OpenSSL side of the benchmarks: the server every
 * client talks to, and the reference client (the ceiling the Lua clients are
 * compared with).  Blocking sockets, loopback, TLS 1.3 (the server also
 * accepts TLS 1.2: see main).
 *
 *   tls_peer server PORT CERT KEY            serve connections one at a time
 *   tls_peer client PORT bulk BYTES          read BYTES in 16 KiB reads
 *   tls_peer client PORT echo COUNT          COUNT line round trips
 *   tls_peer client PORT hs COUNT            COUNT full handshakes
 *   tls_peer client PORT resume COUNT        COUNT resumed handshakes (tickets)
 *   tls_peer client PORT idle COUNT          hold COUNT connections open; prints
 *                                            the RSS each one costs, in bytes
 *   tls_peer client PORT idle-lean COUNT     the same, each connection's record
 *                                            buffers freed once idle
 *                                            (SSL_free_buffers): the least an
 *                                            idle OpenSSL connection costs
 *
 * After the handshake a client sends one command line: "BULK n" (the server
 * sends n bytes and closes), "ECHO" (the server echoes lines until EOF) or
 * "PING" (the server answers "PONG", which also delivers TLS 1.3 tickets).
 * A client prints the seconds its work took, measured with CLOCK_MONOTONIC.
 * The server gives each connection a thread, so that it can hold many. */
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "tls_peer: %s\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Resident set size from /proc/self/statm, in bytes. */
static long rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) { if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0; fclose(f); }
  return resident * sysconf(_SC_PAGESIZE);
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Buffered line reading: one SSL_read per record, not per byte, so the C
 * side costs as little as it can. */
struct reader { SSL *ssl; char buf[16384]; int start, end; };

/* Reads one line (up to '\n') into line; returns its length or -1. */
static int read_line(struct reader *r, char *line, int size) {
  int n = 0;
  for (;;) {
    while (r->start < r->end) {
      char c = r->buf[r->start++];
      if (n < size - 1) line[n++] = c;
      if (c == '\n') { line[n] = 0; return n; }
    }
    r->start = 0;
    r->end = SSL_read(r->ssl, r->buf, sizeof r->buf);
    if (r->end <= 0) { r->end = 0; return -1; }
  }
}

static SSL_CTX *server_ctx;

static char block[16384];

static void *serve_one(void *arg) {
  int fd = (int)(long)arg;
  SSL *ssl = SSL_new(server_ctx);
  struct reader *r = malloc(sizeof *r);
  char line[256];
  SSL_set_fd(ssl, fd);
  r->ssl = ssl; r->start = r->end = 0;
  if (SSL_accept(ssl) == 1 && read_line(r, line, sizeof line) > 0) {
    if (strncmp(line, "BULK ", 5) == 0) {
      long long left = atoll(line + 5);
      while (left > 0) {
        int n = left < (long long)sizeof block ? (int)left : (int)sizeof block;
        if (SSL_write(ssl, block, n) <= 0) break;
        left -= n;
      }
    } else if (strncmp(line, "ECHO", 4) == 0) {
      int n;
      while ((n = read_line(r, line, sizeof line)) > 0)
        if (SSL_write(ssl, line, n) <= 0) break;
    } else if (strncmp(line, "PING", 4) == 0) {
      SSL_write(ssl, "PONG\n", 5);
    } else if (strncmp(line, "HOLD", 4) == 0) {
      /* an idle connection: answer, then wait for the client to close */
      SSL_write(ssl, "OK\n", 3);
      while (read_line(r, line, sizeof line) > 0) {}
    }
    SSL_shutdown(ssl);
  }
  ERR_clear_error();
  SSL_free(ssl);
  free(r);
  close(fd);
  return NULL;
}

static int connect_to(int port) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
  nodelay(fd);
  return fd;
}

static SSL *client_session(SSL_CTX *ctx, int port, SSL_SESSION *resume) {
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, connect_to(port));
  if (resume) SSL_set_session(ssl, resume);
  if (SSL_connect(ssl) != 1) die("handshake");
  return ssl;
}

static void client_close(SSL *ssl) {
  int fd = SSL_get_fd(ssl);
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc == 5 && strcmp(argv[1], "server") == 0) {
    SSL_CTX *ctx = server_ctx = SSL_CTX_new(TLS_server_method());
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
    /* TLS 1.2 too, for libtls_client's resumed handshakes (libretls saves
     * a client's session at the end of the handshake, before a TLS 1.3
     * ticket arrives, so it resumes only TLS 1.2); every other client
     * negotiates TLS 1.3 */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1) die("certificate");
    if (SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1) die("key");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 128) != 0) die("listen");
    memset(block, 'x', sizeof block);
    for (;;) {
      pthread_t thread;
      pthread_attr_t attr;
      int fd = accept(lfd, NULL, NULL);
      if (fd < 0) continue;
      nodelay(fd);
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_attr_setstacksize(&attr, 256 * 1024);
      if (pthread_create(&thread, &attr, serve_one, (void *)(long)fd) != 0) close(fd);
      pthread_attr_destroy(&attr);
    }
  }
  if (argc == 5 && strcmp(argv[1], "client") == 0) {
    int port = atoi(argv[2]);
    long long amount = atoll(argv[4]);
    const char *work = argv[3];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char buf[16384];
    static struct reader r;
    double start;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (strcmp(work, "bulk") == 0) {
      SSL *ssl = client_session(ctx, port, NULL);
      long long got = 0;
      int n;
      start = now();
      snprintf(buf, sizeof buf, "BULK %lld\n", amount);
      SSL_write(ssl, buf, strlen(buf));
      while (got < amount && (n = SSL_read(ssl, buf, sizeof buf)) > 0) got += n;
      if (got != amount) die("short bulk transfer");
      printf("%.6f\n", now() - start);
      client_close(ssl);
    } else if (strcmp(work, "echo") == 0) {
      SSL *ssl = client_session(ctx, port, NULL);
      static const char msg[] = "hello, this is one line of the echo benchmark\n";
      SSL_write(ssl, "ECHO\n", 5);
      r.ssl = ssl; r.start = r.end = 0;
      /* BENCH_WARMUP=W: W round trips first, and callgrind's collection
       * toggled around the COUNT measured ones (run with --collect-atstart=no) */
      long long warm = getenv("BENCH_WARMUP") ? atoll(getenv("BENCH_WARMUP")) : 0;
      start = now();
      for (long long i = 0; i < warm + amount; i++) {
        if (warm && i == warm) CALLGRIND_TOGGLE_COLLECT;
        SSL_write(ssl, msg, sizeof msg - 1);
        if (read_line(&r, buf, sizeof buf) != (int)sizeof msg - 1) die("echo");
      }
      if (warm) CALLGRIND_TOGGLE_COLLECT;
      printf("%.6f\n", now() - start);
      client_close(ssl);
    } else if (strcmp(work, "hs") == 0 || strcmp(work, "resume") == 0) {
      int resume = strcmp(work, "resume") == 0;
      SSL_SESSION *session = NULL;
      if (resume) { /* a first full handshake gives the ticket */
        SSL *ssl = client_session(ctx, port, NULL);
        SSL_write(ssl, "PING\n", 5);
        r.ssl = ssl; r.start = r.end = 0;
        if (read_line(&r, buf, sizeof buf) != 5) die("ping");
        session = SSL_get1_session(ssl);
        client_close(ssl);
      }
      start = now();
      for (long long i = 0; i < amount; i++) {
        SSL *ssl = client_session(ctx, port, session);
        if (resume && !SSL_session_reused(ssl)) die("not resumed");
        SSL_write(ssl, "PING\n", 5);
        r.ssl = ssl; r.start = r.end = 0;
        if (read_line(&r, buf, sizeof buf) != 5) die("ping");
        if (resume) { SSL_SESSION_free(session); session = SSL_get1_session(ssl); }
        client_close(ssl);
      }
      printf("%.6f\n", now() - start);
    } else if (strcmp(work, "idle") == 0 || strcmp(work, "idle-lean") == 0) {
      int lean = strcmp(work, "idle-lean") == 0;
      SSL **held = calloc(amount, sizeof *held);
      long before = rss_bytes();
      for (long long i = 0; i < amount; i++) {
        held[i] = client_session(ctx, port, NULL);
        SSL_write(held[i], "HOLD\n", 5);
        r.ssl = held[i]; r.start = r.end = 0;
        if (read_line(&r, buf, sizeof buf) != 3) die("hold");
        if (lean && !SSL_free_buffers(held[i])) die("SSL_free_buffers");
      }
      printf("%.1f\n", (double)(rss_bytes() - before) / amount);
      for (long long i = 0; i < amount; i++) client_close(held[i]);
    } else {
      die("unknown work");
    }
    return 0;
  }
  fprintf(stderr, "usage: tls_peer server PORT CERT KEY | client PORT bulk|echo|hs|resume N\n");
  return 2;
}
