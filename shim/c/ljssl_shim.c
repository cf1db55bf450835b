/* ljssl_shim.c — the optional C shim: OpenSSL callbacks that never enter Lua.
 *
 * Built by `make shim` into libljssl_shim.so.  ffi/ljssl/lib.lua loads it when
 * present; otherwise ffi/ljssl/engine/callbacks.lua installs LuaJIT callbacks
 * with the same behaviour.  See ljssl_shim.h for the contract. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "ljssl_shim.h"

struct ticket_key {
    unsigned char name[LJSSL_TICKET_NAME_LEN];
    unsigned char aes[LJSSL_TICKET_AES_LEN];
    unsigned char hmac[LJSSL_TICKET_HMAC_LEN];
    time_t added;
};

struct ticket_keys {
    int n;
    long lifetime;
    struct ticket_key keys[LJSSL_MAX_TICKET_KEYS];
};

struct ctx_data {
    int verify_flags;
    unsigned char *alpn;
    unsigned int alpn_len;
    unsigned char *staple;
    unsigned int staple_len;
    struct ticket_keys *tickets;        /* cleansed when freed */
};

struct sni_entry {
    char *name;
    SSL_CTX *ctx;
};

struct ssl_data {
    int nerrors;
    int depths[LJSSL_MAX_VERIFY_ERRORS];
    int errors[LJSSL_MAX_VERIFY_ERRORS];
    int sni_strict;
    int sni_count;
    struct sni_entry *sni;
};

static int ctx_index = -1, ssl_index = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void free_ctx_data(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                          long argl, void *argp)
{
    struct ctx_data *d = ptr;
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    if (d == NULL)
        return;
    OPENSSL_free(d->alpn);
    OPENSSL_free(d->staple);
    OPENSSL_clear_free(d->tickets, sizeof *d->tickets);
    OPENSSL_free(d);
}

static void free_ssl_data(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                          long argl, void *argp)
{
    struct ssl_data *d = ptr;
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    if (d == NULL)
        return;
    for (int i = 0; i < d->sni_count; i++) {
        OPENSSL_free(d->sni[i].name);
        SSL_CTX_free(d->sni[i].ctx);
    }
    OPENSSL_free(d->sni);
    OPENSSL_free(d);
}

static void init_indexes(void)
{
    ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_ctx_data);
    ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_ssl_data);
}

static struct ctx_data *ctx_data(const SSL_CTX *ctx, int create)
{
    struct ctx_data *d;
    pthread_once(&once, init_indexes);
    d = SSL_CTX_get_ex_data(ctx, ctx_index);
    if (d == NULL && create) {
        d = OPENSSL_zalloc(sizeof *d);
        if (d != NULL && !SSL_CTX_set_ex_data((SSL_CTX *)ctx, ctx_index, d)) {
            OPENSSL_free(d);
            d = NULL;
        }
    }
    return d;
}

static struct ssl_data *ssl_data(const SSL *ssl, int create)
{
    struct ssl_data *d;
    pthread_once(&once, init_indexes);
    d = SSL_get_ex_data(ssl, ssl_index);
    if (d == NULL && create) {
        d = OPENSSL_zalloc(sizeof *d);
        if (d != NULL && !SSL_set_ex_data((SSL *)ssl, ssl_index, d)) {
            OPENSSL_free(d);
            d = NULL;
        }
    }
    return d;
}

int ljssl_shim_version(void)
{
    return LJSSL_SHIM_VERSION;
}

int ljssl_password_cb(char *buf, int size, int rwflag, void *userdata)
{
    const char *password = userdata;
    size_t len;

    (void)rwflag;
    if (password == NULL || buf == NULL || size <= 0)
        return -1;
    len = strlen(password);
    if (len > (size_t)size)
        len = (size_t)size;
    memcpy(buf, password, len);
    return (int)len;
}

/* ---- DH parameters (LuaSec's dhparam) ----
 * The temporary-DH callback and DH type are deprecated in OpenSSL 3 and have
 * no replacement that asks during the handshake; LuaSec's API needs exactly
 * that.  The state has its own ex_data slot. */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

struct dh_data {
    ljssl_dh_pem_fn pem;
    DH *dh;                             /* the last parameters handed to OpenSSL */
};

static int dh_index = -1;
static pthread_once_t dh_once = PTHREAD_ONCE_INIT;

static void free_dh_data(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                         long argl, void *argp)
{
    struct dh_data *d = ptr;
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    if (d == NULL)
        return;
    DH_free(d->dh);
    OPENSSL_free(d);
}

static void init_dh_index(void)
{
    dh_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_dh_data);
}

int ljssl_ctx_set_dh_pem_cb(SSL_CTX *ctx, ljssl_dh_pem_fn fn)
{
    struct dh_data *d;
    pthread_once(&dh_once, init_dh_index);
    if (dh_index < 0)
        return 0;
    d = SSL_CTX_get_ex_data(ctx, dh_index);
    if (d == NULL) {
        if (fn == NULL)
            return 1;
        if ((d = OPENSSL_zalloc(sizeof *d)) == NULL)
            return 0;
        if (!SSL_CTX_set_ex_data(ctx, dh_index, d)) {
            OPENSSL_free(d);
            return 0;
        }
    }
    d->pem = fn;
    SSL_CTX_set_tmp_dh_callback(ctx, fn != NULL ? ljssl_tmp_dh_cb : NULL);
    return 1;
}

DH *ljssl_tmp_dh_cb(SSL *ssl, int is_export, int keylength)
{
    struct dh_data *d;
    const char *pem;
    size_t len = 0;
    BIO *bio;
    DH *dh;

    pthread_once(&dh_once, init_dh_index);
    d = dh_index < 0 ? NULL : SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), dh_index);
    if (d == NULL || d->pem == NULL)
        return NULL;
    pem = d->pem(ssl, is_export, keylength, &len);
    if (pem == NULL || len == 0 || len > 0x7fffffff)   /* BIO_new_mem_buf takes an int */
        return NULL;
    if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
        return NULL;
    dh = PEM_read_bio_DHparams(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (dh == NULL)
        return NULL;
    /* OpenSSL takes its own reference; the callback keeps one (LuaSec does) */
    DH_free(d->dh);
    d->dh = dh;
    return dh;
}

#pragma GCC diagnostic pop

/* ---- verification ---- */

int ljssl_ctx_set_verify_flags(SSL_CTX *ctx, int flags)
{
    struct ctx_data *d = ctx_data(ctx, 1);
    if (d == NULL)
        return 0;
    d->verify_flags = flags;
    return 1;
}

int ljssl_ctx_get_verify_flags(const SSL_CTX *ctx)
{
    struct ctx_data *d = ctx_data(ctx, 0);
    return d ? d->verify_flags : 0;
}

static SSL *store_ssl(X509_STORE_CTX *store)
{
    return X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
}

int ljssl_verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
    SSL *ssl;
    struct ssl_data *d;
    int err;

    if (preverify_ok)
        return 1;
    ssl = store_ssl(store);
    if (ssl == NULL)
        return preverify_ok;
    err = X509_STORE_CTX_get_error(store);
    d = ssl_data(ssl, 1);
    if (err != X509_V_OK && d != NULL && d->nerrors < LJSSL_MAX_VERIFY_ERRORS) {
        d->depths[d->nerrors] = X509_STORE_CTX_get_error_depth(store);
        d->errors[d->nerrors] = err;
        d->nerrors++;
    }
    return (ljssl_ctx_get_verify_flags(SSL_get_SSL_CTX(ssl)) & LJSSL_VERIFY_CONTINUE)
        ? 1 : preverify_ok;
}

int ljssl_cert_verify_cb(X509_STORE_CTX *store, void *arg)
{
    SSL *ssl = store_ssl(store);
    (void)arg;
    if (ssl != NULL &&
        (ljssl_ctx_get_verify_flags(SSL_get_SSL_CTX(ssl)) & LJSSL_VERIFY_IGNORE_PURPOSE)) {
        X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(store);
        if (param != NULL) {
            X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
            X509_VERIFY_PARAM_set_trust(param, X509_TRUST_SSL_SERVER);
        }
    }
    return X509_verify_cert(store);
}

int ljssl_verify_errors(const SSL *ssl, int *depths, int *errors, int max)
{
    struct ssl_data *d = ssl_data(ssl, 0);
    if (d == NULL)
        return 0;
    for (int i = 0; i < d->nerrors && i < max; i++) {
        depths[i] = d->depths[i];
        errors[i] = d->errors[i];
    }
    return d->nerrors;
}

/* ---- ALPN ---- */

int ljssl_ctx_set_alpn(SSL_CTX *ctx, const unsigned char *wire, unsigned int len)
{
    struct ctx_data *d = ctx_data(ctx, 1);
    unsigned char *copy;
    if (d == NULL || wire == NULL || len == 0)
        return 0;
    copy = OPENSSL_memdup(wire, len);
    if (copy == NULL)
        return 0;
    OPENSSL_free(d->alpn);
    d->alpn = copy;
    d->alpn_len = len;
    return 1;
}

int ljssl_alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                         const unsigned char *in, unsigned int inlen, void *arg)
{
    struct ctx_data *d = ctx_data(SSL_get_SSL_CTX(ssl), 0);
    unsigned char *selected = NULL;
    (void)arg;
    if (d == NULL || d->alpn == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&selected, outlen, d->alpn, d->alpn_len, in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- SNI ---- */

int ljssl_ssl_add_sni(SSL *ssl, const char *name, SSL_CTX *target)
{
    struct ssl_data *d = ssl_data(ssl, 1);
    struct sni_entry *grown;
    char *copy = NULL;
    if (d == NULL || target == NULL)
        return 0;
    grown = OPENSSL_realloc(d->sni, sizeof *grown * (size_t)(d->sni_count + 1));
    if (grown == NULL)
        return 0;
    d->sni = grown;
    if (name != NULL && (copy = OPENSSL_strdup(name)) == NULL)
        return 0;
    if (!SSL_CTX_up_ref(target)) {
        OPENSSL_free(copy);
        return 0;
    }
    d->sni[d->sni_count].name = copy;
    d->sni[d->sni_count].ctx = target;
    d->sni_count++;
    return 1;
}

int ljssl_ssl_set_sni_strict(SSL *ssl, int strict)
{
    struct ssl_data *d = ssl_data(ssl, 1);
    if (d == NULL)
        return 0;
    d->sni_strict = strict;
    return 1;
}

int ljssl_sni_cb(SSL *ssl, int *alert, void *arg)
{
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    struct ssl_data *d = ssl_data(ssl, 0);
    (void)arg;
    if (name == NULL || d == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    for (int i = 0; i < d->sni_count; i++) {
        X509 *cert;
        int match;
        if (d->sni[i].name != NULL) {
            match = strcmp(d->sni[i].name, name) == 0;
        } else {
            cert = SSL_CTX_get0_certificate(d->sni[i].ctx);
            match = cert != NULL && X509_check_host(cert, name, 0, 0, NULL) == 1;
        }
        if (match) {
            SSL_set_SSL_CTX(ssl, d->sni[i].ctx);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    if (d->sni_strict) {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ---- OCSP stapling ---- */

int ljssl_ctx_set_ocsp_staple(SSL_CTX *ctx, const unsigned char *der, unsigned int len)
{
    struct ctx_data *d = ctx_data(ctx, 1);
    unsigned char *copy = NULL;
    if (d == NULL)
        return 0;
    if (der != NULL && len > 0 && (copy = OPENSSL_memdup(der, len)) == NULL)
        return 0;
    OPENSSL_free(d->staple);
    d->staple = copy;
    d->staple_len = copy ? len : 0;
    return 1;
}

int ljssl_ocsp_staple_cb(SSL *ssl, void *arg)
{
    struct ctx_data *d = ctx_data(SSL_get_SSL_CTX(ssl), 0);
    unsigned char *copy;
    (void)arg;
    if (!SSL_is_server(ssl))
        return 1;                       /* clients check the response after the handshake */
    if (d == NULL || d->staple == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    /* OpenSSL frees the response it is given */
    if ((copy = OPENSSL_memdup(d->staple, d->staple_len)) == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)d->staple_len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ---- session-ticket keys ---- */

int ljssl_ctx_set_ticket_keys(SSL_CTX *ctx, const unsigned char *keys, const time_t *added,
                              int n, long lifetime)
{
    struct ctx_data *d = ctx_data(ctx, 1);
    struct ticket_keys *t = NULL;
    if (d == NULL || n < 0 || n > LJSSL_MAX_TICKET_KEYS || (n > 0 && (keys == NULL || added == NULL)))
        return 0;
    if (n > 0) {
        if ((t = OPENSSL_zalloc(sizeof *t)) == NULL)
            return 0;
        t->n = n;
        t->lifetime = lifetime;
        for (int i = 0; i < n; i++) {
            const unsigned char *k = keys + (size_t)i * LJSSL_TICKET_KEY_LEN;
            memcpy(t->keys[i].name, k, LJSSL_TICKET_NAME_LEN);
            memcpy(t->keys[i].aes, k + LJSSL_TICKET_NAME_LEN, LJSSL_TICKET_AES_LEN);
            memcpy(t->keys[i].hmac, k + LJSSL_TICKET_NAME_LEN + LJSSL_TICKET_AES_LEN,
                   LJSSL_TICKET_HMAC_LEN);
            t->keys[i].added = added[i];
        }
    }
    OPENSSL_clear_free(d->tickets, sizeof *d->tickets);
    d->tickets = t;
    return 1;
}

/* The first valid key (the newest) when `name` is NULL, else the valid key of
 * that name; *index is its place in the list.  As libtls's
 * tls_server_ticket_key: a key is valid for `lifetime` seconds after it was
 * added, and names compare in constant time. */
static const struct ticket_key *find_ticket_key(const struct ticket_keys *t,
                                                const unsigned char *name, int *index)
{
    time_t now = time(NULL);
    for (int i = 0; i < t->n; i++) {
        const struct ticket_key *k = &t->keys[i];
        if (t->lifetime > 0 && now - t->lifetime > k->added)
            continue;
        if (name == NULL || CRYPTO_memcmp(name, k->name, LJSSL_TICKET_NAME_LEN) == 0) {
            *index = i;
            return k;
        }
    }
    return NULL;
}

int ljssl_ticket_key_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv,
                        EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct ctx_data *d = ctx_data(SSL_get_SSL_CTX(ssl), 0);
    const struct ticket_key *k;
    OSSL_PARAM params[2];
    int index = 0;

    /* 0: no ticket is issued (enc) or the ticket is not accepted; the
     * connection goes on with a full handshake either way */
    if (d == NULL || d->tickets == NULL)
        return 0;
    if ((k = find_ticket_key(d->tickets, enc ? NULL : key_name, &index)) == NULL)
        return 0;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (enc) {
        memcpy(key_name, k->name, LJSSL_TICKET_NAME_LEN);
        /* OpenSSL's iv buffer is EVP_MAX_IV_LENGTH bytes, AES-CBC's iv length */
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1
            || !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
            return -1;
    } else if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv)) {
        return -1;
    }
    if (!EVP_MAC_init(hctx, k->hmac, LJSSL_TICKET_HMAC_LEN, params))
        return -1;
    /* a ticket under an older key is renewed under the newest */
    return enc || index == 0 ? 1 : 2;
}
