/*
 * keys_fixture.h - a key store with a CA in a scratch directory, opened by
 * keys_open with the signer served from threads of the test process (the
 * in-process mode), for test_keys.c and test_signer.c.
 */
#ifndef ZTB_TESTS_KEYS_FIXTURE_H
#define ZTB_TESTS_KEYS_FIXTURE_H

#define TD "example.org"

struct fix {
    char dir[64];
    char keys[128];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ztb-signer-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->keys, sizeof(f->keys), "%s/keys", f->dir);
    int64_t now = (int64_t)time(NULL);
    ztb_keystore *ks = NULL;
    assert_int_equal(ztb_keystore_init(f->keys, NULL, now, &ks), ZTB_OK);
    ztb_keystore_close(ks);
    ztb_ca_opts o = {.trust_domain = TD};
    ztb_ca *ca = NULL;
    assert_int_equal(ztb_ca_create(&o, now - 60, &ca), ZTB_OK);
    assert_int_equal(ztb_ca_save(ca, f->keys, NULL, 0), ZTB_OK);
    ztb_ca_free(ca);
    char err[512] = "";
    assert_int_equal(keys_open(f->keys, NULL, now, err, sizeof(err)), ZTB_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    keys_close();
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

#endif /* ZTB_TESTS_KEYS_FIXTURE_H */
