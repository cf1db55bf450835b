/* ljssl_shim.h — the optional C shim's interface.
 *
 * The shim holds the OpenSSL callbacks that would otherwise be LuaJIT callbacks:
 * with it loaded, OpenSSL never re-enters Lua from a handshake, a read or a key
 * load (except for callbacks whose behaviour is itself a Lua function, such as a
 * PSK or ALPN function).  Every function here follows lua-resty-core's FFI
 * contract: no Lua, plain return codes, state kept in OpenSSL ex_data slots that
 * OpenSSL frees with the object.  tools/gen_cdefs turns this header into
 * ffi/cdefs/shim.lua, so the Lua side and the C side cannot drift; the Lua
 * fallback without the shim is ffi/ljssl/engine/callbacks.lua. */
#ifndef LJSSL_SHIM_H
#define LJSSL_SHIM_H

#include <time.h>

#include <openssl/ssl.h>

/* Interface version; bumped whenever a function is added or changed. */
#define LJSSL_SHIM_VERSION 6

/* Verification flags of a context (LuaSec's verifyext names). */
#define LJSSL_VERIFY_CONTINUE 1       /* lsec_continue: record errors, go on */
#define LJSSL_VERIFY_IGNORE_PURPOSE 2 /* lsec_ignore_purpose */
/* How many verification errors one connection records; more are dropped. */
#define LJSSL_MAX_VERIFY_ERRORS 64

int ljssl_shim_version(void);

/* pem_password_cb: `userdata` is a NUL-terminated password.  Copies at most
 * `size` bytes and returns the length copied, or -1 (refuse) when userdata is
 * NULL, so a missing password never falls back to a TTY prompt. */
int ljssl_password_cb(char *buf, int size, int rwflag, void *userdata);

/* DH parameters chosen during a handshake, as LuaSec's dhparam function:
 * ljssl_ctx_set_dh_pem_cb installs ljssl_tmp_dh_cb as the context's
 * temporary-DH callback (OpenSSL calls it only when a DHE suite is
 * negotiated, with its is_export and key length), or removes it when `fn` is
 * NULL.  ljssl_tmp_dh_cb asks `fn` (a LuaJIT callback: the parameters come
 * from a Lua function) for PEM "DH PARAMETERS", sets *len and returns the PEM,
 * which must stay valid until the next call, or NULL for none; it parses them
 * and keeps the DH with the context, freeing the previous one, as OpenSSL
 * expects of the callback.  No parameters: NULL, and the handshake fails. */
typedef const char *(*ljssl_dh_pem_fn)(SSL *ssl, int is_export, int keylength, size_t *len);
int ljssl_ctx_set_dh_pem_cb(SSL_CTX *ctx, ljssl_dh_pem_fn fn);
DH *ljssl_tmp_dh_cb(SSL *ssl, int is_export, int keylength);

/* Verification.  ljssl_verify_cb goes to SSL_CTX_set_verify, and
 * ljssl_cert_verify_cb to SSL_CTX_set_cert_verify_callback (arg unused); both
 * read the flags stored on the connection's SSL_CTX. */
int ljssl_ctx_set_verify_flags(SSL_CTX *ctx, int flags);
int ljssl_ctx_get_verify_flags(const SSL_CTX *ctx);
int ljssl_verify_cb(int preverify_ok, X509_STORE_CTX *store);
int ljssl_cert_verify_cb(X509_STORE_CTX *store, void *arg);
/* Copies up to `max` recorded (depth, error) pairs; returns how many exist. */
int ljssl_verify_errors(const SSL *ssl, int *depths, int *errors, int max);

/* ALPN on a server: the server's list in wire format (copied), chosen from in
 * the server's order of preference; no overlap means no ALPN (NOACK). */
int ljssl_ctx_set_alpn(SSL_CTX *ctx, const unsigned char *wire, unsigned int len);
int ljssl_alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                         const unsigned char *in, unsigned int inlen, void *arg);

/* SNI on a server connection: host name -> SSL_CTX (up-referenced until the
 * SSL is freed).  A NULL name matches any name the target context's
 * certificate is valid for (X509_check_host), as libtls's extra keypairs do;
 * entries are tried in order.  ljssl_sni_cb goes to the servername callback of
 * the connection's SSL_CTX.  No name from the client: NOACK.  No match: a fatal
 * unrecognized_name alert when strict, else the connection keeps its context. */
int ljssl_ssl_add_sni(SSL *ssl, const char *name, SSL_CTX *target);
int ljssl_ssl_set_sni_strict(SSL *ssl, int strict);
int ljssl_sni_cb(SSL *ssl, int *alert, void *arg);

/* OCSP stapling on a server: the DER response for a context (copied; an
 * empty one removes it).  ljssl_ocsp_staple_cb goes to the context's status
 * callback and staples the response of the connection's current context (after
 * SNI), or sends none (NOACK). */
int ljssl_ctx_set_ocsp_staple(SSL_CTX *ctx, const unsigned char *der, unsigned int len);
int ljssl_ocsp_staple_cb(SSL *ssl, void *arg);

/* Session-ticket keys as libtls keeps them (tls_config_add_ticket_key): up to
 * LJSSL_MAX_TICKET_KEYS keys, newest first, each LJSSL_TICKET_KEY_LEN bytes:
 * the key name (16 bytes, carried in clear by every ticket), an AES-256-CBC
 * key (32) and an HMAC-SHA256 key (16); added[i] is when key i was added
 * (time(NULL)).  The newest valid key encrypts new tickets; every valid key
 * decrypts, and a ticket under an older one is renewed (the callback returns
 * 2).  With lifetime > 0 a key added more than `lifetime` seconds ago is no
 * longer valid.  The keys are copied, and the copies cleansed when replaced or
 * when the context is freed; n = 0 removes them.  ljssl_ticket_key_cb goes to
 * SSL_CTX_set_tlsext_ticket_key_evp_cb and reads the keys of the connection's
 * current context (after SNI), so a server gives each of its contexts the
 * same keys.  No valid key: no ticket is issued, a ticket is not accepted
 * (a full handshake). */
#define LJSSL_MAX_TICKET_KEYS 4
#define LJSSL_TICKET_NAME_LEN 16
#define LJSSL_TICKET_AES_LEN 32
#define LJSSL_TICKET_HMAC_LEN 16
#define LJSSL_TICKET_KEY_LEN 64
int ljssl_ctx_set_ticket_keys(SSL_CTX *ctx, const unsigned char *keys, const time_t *added,
                              int n, long lifetime);
int ljssl_ticket_key_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv,
                        EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);

#endif
