/* bench/c/libtls_client.c — the system libtls (Debian libtls-dev, libretls)
 * as a benchmark client: the reference the ljssl libtls face
 * (bench/libtls_client.lua) is compared with.  Talks to tls_peer's server.
 * Blocking sockets, loopback, no certificate or name checks.
 *
 *   libtls_client PORT bulk BYTES     read BYTES in 16 KiB reads
 *   libtls_client PORT echo COUNT     COUNT line round trips
 *   libtls_client PORT hs COUNT       COUNT full handshakes, each with a PING
 *   libtls_client PORT resume COUNT   COUNT handshakes resumed from a session
 *                                     file (tls_config_set_session_fd), each
 *                                     with a PING; fails if none resumed,
 *                                     prints how many did on stderr
 *
 * bulk, echo and hs connect with tls_connect; resume connects a socket of its
 * own with TCP_NODELAY and uses tls_connect_socket (see ping()).
 *
 * An optional last argument sets the protocols (tls_config_parse_protocols:
 * "tlsv1.2", "tlsv1.3"; libtls's default otherwise, which negotiates TLS 1.3
 * with tls_peer).  libretls resumes only TLS 1.2: it saves a client's session
 * when the handshake ends, and in TLS 1.3 the ticket comes after that.
 *
 * Prints the seconds its work took (CLOCK_MONOTONIC), as tls_peer does. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <tls.h>
#include <unistd.h>

static const char *port;

static void die(const char *what, struct tls *ctx) {
  fprintf(stderr, "libtls_client: %s: %s\n", what, ctx ? tls_error(ctx) : "");
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A TCP connection to the peer with TCP_NODELAY, as tls_peer's client has. */
static int connect_nodelay(void) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(port)) };
  int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect", NULL);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* A connected, handshaken client context: over tls_connect's own socket, or
 * with *fd set, over a socket of ours with TCP_NODELAY (the caller closes
 * *fd after tls_close). */
static struct tls *open_client(struct tls_config *cfg, int *fd) {
  struct tls *ctx = tls_client();
  int r, tries = 0;
  if (!ctx) die("tls_client", NULL);
  if (tls_configure(ctx, cfg) != 0) die("tls_configure", ctx);
  if (fd) {
    *fd = connect_nodelay();
    if (tls_connect_socket(ctx, *fd, "localhost") != 0) die("tls_connect_socket", ctx);
  } else if (tls_connect(ctx, "127.0.0.1", port) != 0) {
    die("tls_connect", ctx);
  }
  while ((r = tls_handshake(ctx)) != 0) {
    if ((r != TLS_WANT_POLLIN && r != TLS_WANT_POLLOUT) || ++tries > 1000) die("tls_handshake", ctx);
  }
  return ctx;
}

static void write_all(struct tls *ctx, const char *buf, size_t len) {
  int tries = 0;
  while (len > 0) {
    ssize_t n = tls_write(ctx, buf, len);
    if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
      if (++tries > 1000) die("tls_write: no progress", ctx);
      continue;
    }
    if (n < 0) die("tls_write", ctx);
    buf += n;
    len -= n;
  }
}

/* One tls_read, retried while libtls asks to be called again (a TLS 1.3
 * ticket arrives as a read that gives no data): the bytes read, 0 at the end
 * of the stream. */
static ssize_t read_some(struct tls *ctx, char *buf, size_t size) {
  int tries = 0;
  for (;;) {
    ssize_t n = tls_read(ctx, buf, size);
    if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
      if (++tries > 1000) die("tls_read: no progress", ctx);
      continue;
    }
    if (n < 0) die("tls_read", ctx);
    return n;
  }
}

/* Reads until '\n'; returns the line's length.  The peer answers each line
 * with one record, so nothing after the '\n' is read. */
static size_t read_line(struct tls *ctx, char *line, size_t size) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = read_some(ctx, line + got, size - got);
    if (n == 0) die("read_line: end of stream", NULL);
    got += n;
    if (line[got - 1] == '\n') return got;
  }
  die("read_line: line too long", NULL);
  return 0;
}

static void close_client(struct tls *ctx) {
  int tries = 0, r;
  while ((r = tls_close(ctx)) == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT)
    if (++tries > 1000) break;
  tls_free(ctx);
}

/* A handshake, PING and PONG, and close; returns whether it resumed.  With
 * nodelay, over a socket with TCP_NODELAY: a TLS 1.2 resumed handshake ends
 * with the client's Finished, and without it Nagle's algorithm holds the PING
 * until the server's delayed ACK, 40 ms later. */
static int ping(struct tls_config *cfg, int nodelay) {
  char buf[64];
  int fd = -1;
  struct tls *ctx = open_client(cfg, nodelay ? &fd : NULL);
  int resumed = tls_conn_session_resumed(ctx);
  write_all(ctx, "PING\n", 5);
  if (read_line(ctx, buf, sizeof buf) != 5 || memcmp(buf, "PONG\n", 5) != 0) die("ping", NULL);
  /* the session file is written as the ticket arrives (with PONG) */
  close_client(ctx);
  if (fd >= 0) close(fd);
  return resumed;
}

int main(int argc, char **argv) {
  static char buf[16384];
  struct tls_config *cfg;
  long long amount;
  const char *work;
  double start;
  signal(SIGPIPE, SIG_IGN);
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: libtls_client PORT bulk|echo|hs|resume N [PROTOCOLS]\n");
    return 2;
  }
  port = argv[1];
  work = argv[2];
  amount = atoll(argv[3]);
  if (tls_init() != 0) die("tls_init", NULL);
  if (!(cfg = tls_config_new())) die("tls_config_new", NULL);
  tls_config_insecure_noverifycert(cfg);
  tls_config_insecure_noverifyname(cfg);
  if (argc == 5) {
    uint32_t protocols;
    if (tls_config_parse_protocols(&protocols, argv[4]) != 0 ||
        tls_config_set_protocols(cfg, protocols) != 0) die("protocols", NULL);
  }
  if (strcmp(work, "bulk") == 0) {
    struct tls *ctx = open_client(cfg, NULL);
    long long got = 0;
    start = now();
    snprintf(buf, sizeof buf, "BULK %lld\n", amount);
    write_all(ctx, buf, strlen(buf));
    while (got < amount) {
      ssize_t n = read_some(ctx, buf, sizeof buf);
      if (n == 0) break;
      got += n;
    }
    if (got != amount) die("short bulk transfer", NULL);
    printf("%.6f\n", now() - start);
    close_client(ctx);
  } else if (strcmp(work, "echo") == 0) {
    static const char msg[] = "hello, this is one line of the echo benchmark\n";
    struct tls *ctx = open_client(cfg, NULL);
    write_all(ctx, "ECHO\n", 5);
    /* one round trip before the clock starts: tls_connect's socket has no
     * TCP_NODELAY, and the first line would wait for the ACK of "ECHO" (the
     * server's delayed ACK, up to 40 ms) */
    write_all(ctx, msg, sizeof msg - 1);
    if (read_line(ctx, buf, sizeof buf) != sizeof msg - 1) die("echo", NULL);
    start = now();
    for (long long i = 0; i < amount; i++) {
      write_all(ctx, msg, sizeof msg - 1);
      if (read_line(ctx, buf, sizeof buf) != sizeof msg - 1 || memcmp(buf, msg, sizeof msg - 1) != 0)
        die("echo", NULL);
    }
    printf("%.6f\n", now() - start);
    close_client(ctx);
  } else if (strcmp(work, "hs") == 0) {
    start = now();
    for (long long i = 0; i < amount; i++) ping(cfg, 0);
    printf("%.6f\n", now() - start);
  } else if (strcmp(work, "resume") == 0) {
    char path[] = "/tmp/libtls_client_session.XXXXXX";
    int fd = mkstemp(path), resumed = 0;   /* mkstemp makes it 0600 */
    if (fd < 0) die("mkstemp", NULL);
    unlink(path);
    if (tls_config_set_session_fd(cfg, fd) != 0) die("tls_config_set_session_fd", NULL);
    ping(cfg, 1);                         /* a full handshake gives the ticket */
    start = now();
    for (long long i = 0; i < amount; i++) resumed += ping(cfg, 1);
    printf("%.6f\n", now() - start);
    fprintf(stderr, "resumed %d of %lld\n", resumed, amount);
    if (resumed == 0) die("no handshake resumed", NULL);
    close(fd);
  } else {
    die("unknown work", NULL);
  }
  tls_config_free(cfg);
  return 0;
}
