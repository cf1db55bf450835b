/* check_shim.c — C tests (check library) of the optional shim, ljssl_shim.c. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ljssl_shim.h"

START_TEST(test_version_matches_header)
{
    ck_assert_int_eq(ljssl_shim_version(), LJSSL_SHIM_VERSION);
}
END_TEST

START_TEST(test_password_copied)
{
    char buf[64];
    memset(buf, 'x', sizeof buf);
    ck_assert_int_eq(ljssl_password_cb(buf, sizeof buf, 0, "s3cret"), 6);
    ck_assert_mem_eq(buf, "s3cret", 6);
}
END_TEST

START_TEST(test_password_truncated_to_buffer)
{
    char buf[4];
    ck_assert_int_eq(ljssl_password_cb(buf, sizeof buf, 1, "longer than four"), 4);
    ck_assert_mem_eq(buf, "long", 4);
}
END_TEST

START_TEST(test_password_missing_refuses)
{
    char buf[16];
    ck_assert_int_eq(ljssl_password_cb(buf, sizeof buf, 0, NULL), -1);
    ck_assert_int_eq(ljssl_password_cb(buf, 0, 0, "pw"), -1);
    ck_assert_int_eq(ljssl_password_cb(NULL, 16, 0, "pw"), -1);
}
END_TEST

START_TEST(test_password_empty)
{
    char buf[16];
    ck_assert_int_eq(ljssl_password_cb(buf, sizeof buf, 0, ""), 0);
}
END_TEST

/* Through OpenSSL itself: an encrypted PEM key opens with the shim's callback. */
START_TEST(test_password_decrypts_key)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(key);
    BIO *mem = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PrivateKey(mem, key, EVP_aes_128_cbc(),
                                              (unsigned char *)"pw123", 5, NULL, NULL), 1);
    EVP_PKEY *back = PEM_read_bio_PrivateKey(mem, NULL, ljssl_password_cb, "pw123");
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(EVP_PKEY_eq(key, back), 1);
    EVP_PKEY_free(back);
    EVP_PKEY_free(key);
    BIO_free(mem);
}
END_TEST

START_TEST(test_wrong_password_fails)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    BIO *mem = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(mem, key, EVP_aes_128_cbc(), (unsigned char *)"pw123", 5, NULL, NULL);
    ck_assert_ptr_null(PEM_read_bio_PrivateKey(mem, NULL, ljssl_password_cb, "wrong"));
    ERR_clear_error();
    EVP_PKEY_free(key);
    BIO_free(mem);
}
END_TEST

/* ---- DH parameters (LuaSec's dhparam): the trampoline asks the provider,
 * parses its PEM, keeps the DH with the context ---- */

static char dh_pem[4096];
static int dh_asked, dh_export, dh_keylength;

static const char *dh_provider(SSL *ssl, int is_export, int keylength, size_t *len)
{
    (void)ssl;
    dh_asked++;
    dh_export = is_export;
    dh_keylength = keylength;
    *len = strlen(dh_pem);
    return dh_pem[0] ? dh_pem : NULL;
}

static void make_dh_pem(void)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    EVP_PKEY *params = NULL;
    BIO *mem = BIO_new(BIO_s_mem());
    char *data;
    long n;
    ck_assert_ptr_nonnull(pctx);
    ck_assert_int_eq(EVP_PKEY_paramgen_init(pctx), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_dh_nid(pctx, NID_ffdhe2048), 1);
    ck_assert_int_eq(EVP_PKEY_paramgen(pctx, &params), 1);
    ck_assert_int_eq(PEM_write_bio_Parameters(mem, params), 1);
    n = BIO_get_mem_data(mem, &data);
    ck_assert(n > 0 && (size_t)n < sizeof dh_pem);
    memcpy(dh_pem, data, (size_t)n);
    dh_pem[n] = '\0';
    ck_assert_ptr_nonnull(strstr(dh_pem, "BEGIN DH PARAMETERS"));
    EVP_PKEY_free(params);
    EVP_PKEY_CTX_free(pctx);
    BIO_free(mem);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
START_TEST(test_dh_trampoline)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL *ssl;
    DH *dh;
    make_dh_pem();
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(ljssl_ctx_set_dh_pem_cb(ctx, dh_provider), 1);
    ssl = SSL_new(ctx);
    ck_assert_ptr_nonnull(ssl);
    dh_asked = 0;
    dh = ljssl_tmp_dh_cb(ssl, 0, 1024);              /* as OpenSSL 3.0 calls it */
    ck_assert_ptr_nonnull(dh);
    ck_assert_int_eq(DH_bits(dh), 2048);
    ck_assert_int_eq(dh_asked, 1);
    ck_assert_int_eq(dh_export, 0);
    ck_assert_int_eq(dh_keylength, 1024);
    /* asked again on every call; the previous DH is freed by then */
    ck_assert_ptr_nonnull(ljssl_tmp_dh_cb(ssl, 1, 512));
    ck_assert_int_eq(dh_asked, 2);
    ck_assert_int_eq(dh_export, 1);
    strcpy(dh_pem, "-----BEGIN DH PARAMETERS-----\nnot base64\n-----END DH PARAMETERS-----\n");
    ck_assert_ptr_null(ljssl_tmp_dh_cb(ssl, 0, 1024));   /* not PEM: none */
    ERR_clear_error();
    dh_pem[0] = '\0';
    ck_assert_ptr_null(ljssl_tmp_dh_cb(ssl, 0, 1024));   /* the provider gives none */
    ck_assert_int_eq(ljssl_ctx_set_dh_pem_cb(ctx, NULL), 1);   /* removed: not asked */
    dh_asked = 0;
    ck_assert_ptr_null(ljssl_tmp_dh_cb(ssl, 0, 1024));
    ck_assert_int_eq(dh_asked, 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);                               /* frees the DH it kept */
}
END_TEST
#pragma GCC diagnostic pop

/* ---- session-ticket keys: in-memory handshakes between a client and servers
 * whose contexts hold different key lists (the rotation of a fleet) ---- */

static EVP_PKEY *ticket_pkey;
static X509 *ticket_cert;

/* A self-signed P-256 certificate for the test servers (made once). */
static void ticket_identity(void)
{
    X509_NAME *name;
    if (ticket_cert != NULL)
        return;
    ticket_pkey = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(ticket_pkey);
    ticket_cert = X509_new();
    ck_assert_ptr_nonnull(ticket_cert);
    X509_set_version(ticket_cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(ticket_cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(ticket_cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(ticket_cert), 3600);
    X509_set_pubkey(ticket_cert, ticket_pkey);
    name = X509_get_subject_name(ticket_cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(ticket_cert, name);
    ck_assert_int_gt(X509_sign(ticket_cert, ticket_pkey, EVP_sha256()), 0);
}

/* Key `rev` as libtls lays it out: name htonl(rev) + 12 zero bytes, then 32
 * AES and 16 HMAC bytes that differ from revision to revision. */
static void ticket_key(unsigned char *out, unsigned rev)
{
    memset(out, 0, LJSSL_TICKET_KEY_LEN);
    out[0] = (unsigned char)(rev >> 24);
    out[1] = (unsigned char)(rev >> 16);
    out[2] = (unsigned char)(rev >> 8);
    out[3] = (unsigned char)rev;
    for (int i = LJSSL_TICKET_NAME_LEN; i < LJSSL_TICKET_KEY_LEN; i++)
        out[i] = (unsigned char)(rev * 37 + i * 11);
}

/* A server context with keys `revs` (newest first), all added `age` seconds
 * ago, valid for `lifetime` seconds. */
static SSL_CTX *ticket_server(const unsigned *revs, int n, long age, long lifetime)
{
    unsigned char keys[LJSSL_MAX_TICKET_KEYS * LJSSL_TICKET_KEY_LEN];
    time_t added[LJSSL_MAX_TICKET_KEYS];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_ptr_nonnull(ctx);
    ticket_identity();
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, ticket_cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, ticket_pkey), 1);
    ck_assert_int_eq(SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"check", 5), 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    for (int i = 0; i < n; i++) {
        ticket_key(keys + i * LJSSL_TICKET_KEY_LEN, revs[i]);
        added[i] = time(NULL) - age;
    }
    ck_assert_int_eq(ljssl_ctx_set_ticket_keys(ctx, keys, added, n, lifetime), 1);
    ck_assert_int_eq(SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ljssl_ticket_key_cb), 1);
    return ctx;
}

/* One connection of a client offering `session` (or none) to a server on
 * `sctx`, at `version`; returns the client's session afterwards (its newest
 * ticket) and whether it resumed. */
static SSL_SESSION *ticket_connect(SSL_CTX *sctx, int version, SSL_SESSION *session, int *resumed)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *client, *server;
    BIO *cb, *sb;
    unsigned char buf[16];
    int cdone = 0, sdone = 0;
    SSL_SESSION *out;

    ck_assert_ptr_nonnull(cctx);
    SSL_CTX_set_min_proto_version(cctx, version);
    SSL_CTX_set_max_proto_version(cctx, version);
    client = SSL_new(cctx);
    server = SSL_new(sctx);
    ck_assert_ptr_nonnull(client);
    ck_assert_ptr_nonnull(server);
    ck_assert_int_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(client, cb, cb);
    SSL_set_bio(server, sb, sb);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    if (session != NULL)
        ck_assert_int_eq(SSL_set_session(client, session), 1);
    for (int i = 0; i < 100 && !(cdone && sdone); i++) {
        if (!cdone) cdone = SSL_do_handshake(client) == 1;
        if (!sdone) sdone = SSL_do_handshake(server) == 1;
    }
    ck_assert(cdone && sdone);
    /* TLS 1.3 tickets follow the handshake: let the client read them */
    ck_assert_int_eq(SSL_write(server, "x", 1), 1);
    ck_assert_int_eq(SSL_read(client, buf, sizeof buf), 1);
    *resumed = SSL_session_reused(client);
    out = SSL_get1_session(client);
    ck_assert_ptr_nonnull(out);
    /* freed without a shutdown, a connection's session is not resumable */
    SSL_shutdown(client);
    SSL_shutdown(server);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    ERR_clear_error();
    return out;
}

/* The revision in the name of the session's ticket (0: no ticket). */
static unsigned ticket_rev(const SSL_SESSION *session)
{
    const unsigned char *tick = NULL;
    size_t len = 0;
    SSL_SESSION_get0_ticket(session, &tick, &len);
    if (tick == NULL || len < LJSSL_TICKET_NAME_LEN)
        return 0;
    for (int i = 4; i < LJSSL_TICKET_NAME_LEN; i++)
        ck_assert_int_eq(tick[i], 0);
    return (unsigned)tick[0] << 24 | (unsigned)tick[1] << 16 | (unsigned)tick[2] << 8 | tick[3];
}

static void check_rotation(int version)
{
    const unsigned a[] = { 1 }, b[] = { 2, 1 }, c[] = { 2 }, d[] = { 3, 2 };
    SSL_CTX *ka = ticket_server(a, 1, 0, 300), *kb = ticket_server(b, 2, 0, 300);
    SSL_CTX *kc = ticket_server(c, 1, 0, 300), *kd = ticket_server(d, 2, 0, 300);
    int resumed;
    SSL_SESSION *s1 = ticket_connect(ka, version, NULL, &resumed), *s2, *s3, *s4;

    ck_assert_int_eq(resumed, 0);
    ck_assert_uint_eq(ticket_rev(s1), 1);              /* A's newest key encrypts */
    s2 = ticket_connect(kb, version, s1, &resumed);   /* B still decrypts K1 ... */
    ck_assert_int_eq(resumed, 1);
    ck_assert_uint_eq(ticket_rev(s2), 2);              /* ... and renews under K2 */
    s3 = ticket_connect(kc, version, s2, &resumed);   /* K2 alone reads B's ticket */
    ck_assert_int_eq(resumed, 1);
    SSL_SESSION_free(s3);
    s4 = ticket_connect(kd, version, s1, &resumed);   /* K1 dropped: full handshake */
    ck_assert_int_eq(resumed, 0);
    ck_assert_uint_eq(ticket_rev(s4), 3);
    SSL_SESSION_free(s4);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s1);
    SSL_CTX_free(ka); SSL_CTX_free(kb); SSL_CTX_free(kc); SSL_CTX_free(kd);
}

START_TEST(test_ticket_rotation_tls13)
{
    check_rotation(TLS1_3_VERSION);
}
END_TEST

START_TEST(test_ticket_rotation_tls12)
{
    check_rotation(TLS1_2_VERSION);
}
END_TEST

/* As libtls: a key is valid for the lifetime after it was added.  No valid
 * key: no ticket is issued (the handshake succeeds), none is accepted. */
START_TEST(test_ticket_keys_expire)
{
    const unsigned one[] = { 1 };
    SSL_CTX *fresh = ticket_server(one, 1, 0, 300), *stale = ticket_server(one, 1, 1000, 300);
    SSL_CTX *forever = ticket_server(one, 1, 1000, 0);
    int resumed;
    SSL_SESSION *s1 = ticket_connect(fresh, TLS1_2_VERSION, NULL, &resumed), *s2;
    s2 = ticket_connect(stale, TLS1_2_VERSION, s1, &resumed);
    ck_assert_int_eq(resumed, 0);
    ck_assert_uint_eq(ticket_rev(s2), 0);
    SSL_SESSION_free(s2);
    s2 = ticket_connect(forever, TLS1_2_VERSION, s1, &resumed);   /* lifetime 0: never stale */
    ck_assert_int_eq(resumed, 1);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s1);
    SSL_CTX_free(fresh); SSL_CTX_free(stale); SSL_CTX_free(forever);
}
END_TEST

START_TEST(test_ticket_keys_refused)
{
    unsigned char keys[(LJSSL_MAX_TICKET_KEYS + 1) * LJSSL_TICKET_KEY_LEN] = { 0 };
    time_t added[LJSSL_MAX_TICKET_KEYS + 1] = { 0 };
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(ljssl_ctx_set_ticket_keys(ctx, keys, added, LJSSL_MAX_TICKET_KEYS + 1, 0), 0);
    ck_assert_int_eq(ljssl_ctx_set_ticket_keys(ctx, keys, added, -1, 0), 0);
    ck_assert_int_eq(ljssl_ctx_set_ticket_keys(ctx, NULL, added, 1, 0), 0);
    ck_assert_int_eq(ljssl_ctx_set_ticket_keys(ctx, keys, added, 2, 0), 1);
    ck_assert_int_eq(ljssl_ctx_set_ticket_keys(ctx, NULL, NULL, 0, 0), 1);   /* removes them */
    SSL_CTX_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shim");
    TCase *tc = tcase_create("password");
    tcase_add_test(tc, test_version_matches_header);
    tcase_add_test(tc, test_password_copied);
    tcase_add_test(tc, test_password_truncated_to_buffer);
    tcase_add_test(tc, test_password_missing_refuses);
    tcase_add_test(tc, test_password_empty);
    tcase_add_test(tc, test_password_decrypts_key);
    tcase_add_test(tc, test_wrong_password_fails);
    suite_add_tcase(s, tc);
    tc = tcase_create("dh parameters");
    tcase_add_test(tc, test_dh_trampoline);
    suite_add_tcase(s, tc);
    tc = tcase_create("ticket keys");
    tcase_add_test(tc, test_ticket_rotation_tls13);
    tcase_add_test(tc, test_ticket_rotation_tls12);
    tcase_add_test(tc, test_ticket_keys_expire);
    tcase_add_test(tc, test_ticket_keys_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
