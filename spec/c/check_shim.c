/* check_shim.c — C tests (check library) of the optional shim, ljssl_shim.c. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

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
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
