/*
 * test_tls - unit tests for the session ticket key ratchet of lib/tls:
 * the step is SHA-256("tern ratchet" || state), the keys HMACs of the state;
 * "PERIOD:HEX" round-trips and anything else is refused; a worker's ring
 * finds the keys of its period (1) and the one before (2) but not older ones,
 * whether it moved one period at a time or jumped; every worker that starts
 * from tern-master's chain, at whatever period, meets the same keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tls.h"

/* tls_hex - a hex text as bytes (the test's own decoder) */
static void tls_hex(const char *hex, unsigned char *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

/* tls_chain - the state 00 01 02 ... 1f at period */
static void tls_chain(struct tls_ratchet *r, long long period)
{
    r->period = period;
    for (int i = 0; i < TLS_RATCHET_LEN; i++)
        r->state[i] = (unsigned char)i;
}

/* test_tls_ratchet_step_is_sha256_of_label_and_state */
static void test_tls_ratchet_step_is_sha256_of_label_and_state(void **state)
{
    struct tls_ratchet r;
    unsigned char want[32];

    tls_chain(&r, 0);
    tls_ratchet_step(r.state);
    tls_hex("7ebc99fc1e298bde42f462b094cc8a59d7ae11c3e4957d034174640aa41dfbd7", want, 32);
    assert_memory_equal(r.state, want, 32);
}

/* test_tls_ticket_keys_are_hmacs_of_the_state */
static void test_tls_ticket_keys_are_hmacs_of_the_state(void **state)
{
    struct tls_ratchet r;
    struct tls_ticket_keys k;
    unsigned char name[16], aes[32];

    tls_chain(&r, 0);
    tls_ratchet_step(r.state);
    tls_ticket_keys_derive(r.state, &k);
    tls_hex("493f9e7d33b000d856fbc3258dec46e5", name, 16);
    tls_hex("e03bd48de767b383b09f3bb52c4b2e1d1cf6886b6cb06799ac34c241722c92df", aes, 32);
    assert_memory_equal(k.name, name, 16);
    assert_memory_equal(k.aes, aes, 32);
    assert_memory_not_equal(k.aes, k.mac, 32);
}

/* test_tls_ratchet_advance_steps_forward_only */
static void test_tls_ratchet_advance_steps_forward_only(void **state)
{
    struct tls_ratchet a, b;

    tls_chain(&a, 100);
    tls_chain(&b, 100);
    tls_ratchet_advance(&a, 103);
    for (int i = 0; i < 3; i++)
        tls_ratchet_step(b.state);
    assert_int_equal(a.period, 103);
    assert_memory_equal(a.state, b.state, 32);
    tls_ratchet_advance(&a, 101); /* never backwards */
    assert_int_equal(a.period, 103);
    assert_memory_equal(a.state, b.state, 32);
}

/* test_tls_ratchet_format_and_parse */
static void test_tls_ratchet_format_and_parse(void **state)
{
    struct tls_ratchet a, b;
    char text[TLS_RATCHET_TEXT_SIZE], small[20];

    tls_chain(&a, 29000000);
    assert_int_equal(tls_ratchet_format(&a, text, sizeof(text)), 0);
    assert_string_equal(text, "29000000:000102030405060708090a0b0c0d0e0f"
                              "101112131415161718191a1b1c1d1e1f");
    assert_int_equal(tls_ratchet_parse(text, &b), 0);
    assert_int_equal(b.period, a.period);
    assert_memory_equal(b.state, a.state, 32);
    assert_int_equal(tls_ratchet_format(&a, small, sizeof(small)), -1);
    /* upper-case hex too */
    assert_int_equal(tls_ratchet_parse("7:000102030405060708090A0B0C0D0E0F"
                                       "101112131415161718191A1B1C1D1E1F",
                                       &b),
                     0);
    assert_int_equal(b.period, 7);
    assert_memory_equal(b.state, a.state, 32);
}

/* test_tls_ratchet_parse_refuses_malformed */
static void test_tls_ratchet_parse_refuses_malformed(void **state)
{
    static const char hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const char *bad[] = {
        "",
        hex, /* the old form, no period */
        ":000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "-1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "1 :000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "99999999999999999999:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",     /* short */
        "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00", /* long */
        "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
        "1:0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    };
    struct tls_ratchet r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&r, 0xaa, sizeof(r));
        if (tls_ratchet_parse(bad[i], &r) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        for (size_t j = 0; j < sizeof(r.state); j++)
            assert_int_equal(r.state[j], 0); /* nothing half-parsed is left */
    }
}

/* test_tls_ring_accepts_current_and_previous_period_only */
static void test_tls_ring_accepts_current_and_previous_period_only(void **state)
{
    struct tls_ratchet chain;
    struct tls_ticket_ring ring;
    const struct tls_ticket_keys *k = NULL;
    struct tls_ticket_keys issued, older;

    tls_chain(&chain, 50);
    tls_ticket_ring_init(&ring, &chain);
    older = ring.cur;
    assert_int_equal(tls_ticket_ring_find(&ring, older.name, &k), 1);
    tls_ticket_ring_advance(&ring, 51);
    issued = ring.cur; /* a ticket made in period 51 */
    assert_int_equal(tls_ticket_ring_find(&ring, issued.name, &k), 1);
    assert_ptr_equal(k, &ring.cur);
    assert_int_equal(tls_ticket_ring_find(&ring, older.name, &k), 2);
    tls_ticket_ring_advance(&ring, 52); /* one period later: renewed */
    assert_int_equal(tls_ticket_ring_find(&ring, issued.name, &k), 2);
    assert_memory_equal(k->aes, issued.aes, 32);
    assert_memory_equal(k->mac, issued.mac, 32);
    assert_int_equal(tls_ticket_ring_find(&ring, older.name, &k), 0);
    tls_ticket_ring_advance(&ring, 52); /* the same period: nothing moves */
    assert_int_equal(tls_ticket_ring_find(&ring, issued.name, &k), 2);
    tls_ticket_ring_advance(&ring, 53); /* two periods later: gone */
    assert_int_equal(tls_ticket_ring_find(&ring, issued.name, &k), 0);
    assert_int_equal(tls_ticket_ring_find(&ring, older.name, &k), 0);
    /* and nothing of it is left in the ring */
    assert_null(memmem(&ring, sizeof(ring), issued.aes, 32));
    assert_null(memmem(&ring, sizeof(ring), issued.mac, 32));
    tls_ticket_ring_clear(&ring);
}

/* test_tls_ring_jump_equals_steps */
static void test_tls_ring_jump_equals_steps(void **state)
{
    struct tls_ratchet chain;
    struct tls_ticket_ring stepped, jumped;

    tls_chain(&chain, 10);
    tls_ticket_ring_init(&stepped, &chain);
    tls_ticket_ring_init(&jumped, &chain);
    for (long long p = 11; p <= 17; p++)
        tls_ticket_ring_advance(&stepped, p);
    tls_ticket_ring_advance(&jumped, 17);
    assert_int_equal(jumped.chain.period, 17);
    assert_true(jumped.have_prev);
    assert_memory_equal(&jumped.chain, &stepped.chain, sizeof(jumped.chain));
    assert_memory_equal(&jumped.cur, &stepped.cur, sizeof(jumped.cur));
    assert_memory_equal(&jumped.prev, &stepped.prev, sizeof(jumped.prev));
}

/* test_tls_workers_of_one_master_meet - tern-master's chain starts at p0 and
 * hands each worker the state of the period before its start: a worker
 * started then, one started later (a reload) and one that ratcheted on its
 * own hold the same keys, and a worker started fresh in a period accepts the
 * previous period's tickets */
static void test_tls_workers_of_one_master_meet(void **state)
{
    struct tls_ratchet master, copy;
    struct tls_ticket_ring early, late;
    struct tls_ticket_keys p5;
    const struct tls_ticket_keys *k;
    char text[TLS_RATCHET_TEXT_SIZE];

    tls_chain(&master, 1000); /* p0 = 1000, the first worker starts at once */
    assert_int_equal(tls_ratchet_format(&master, text, sizeof(text)), 0);
    assert_int_equal(tls_ratchet_parse(text, &copy), 0);
    tls_ticket_ring_init(&early, &copy);
    tls_ticket_ring_advance(&early, 1000);
    assert_false(early.have_prev);
    for (long long p = 1001; p <= 1005; p++)
        tls_ticket_ring_advance(&early, p);
    p5 = early.cur;
    tls_ticket_ring_advance(&early, 1006);
    /* a worker started in period 1006 gets the master's state of 1005 */
    tls_ratchet_advance(&master, 1005);
    assert_int_equal(tls_ratchet_format(&master, text, sizeof(text)), 0);
    assert_int_equal(strncmp(text, "1005:", 5), 0);
    assert_int_equal(tls_ratchet_parse(text, &copy), 0);
    tls_ticket_ring_init(&late, &copy);
    tls_ticket_ring_advance(&late, 1006);
    assert_memory_equal(&late, &early, sizeof(late));
    assert_int_equal(tls_ticket_ring_find(&late, p5.name, &k), 2);
    assert_memory_equal(k->aes, p5.aes, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_ratchet_step_is_sha256_of_label_and_state),
        cmocka_unit_test(test_tls_ticket_keys_are_hmacs_of_the_state),
        cmocka_unit_test(test_tls_ratchet_advance_steps_forward_only),
        cmocka_unit_test(test_tls_ratchet_format_and_parse),
        cmocka_unit_test(test_tls_ratchet_parse_refuses_malformed),
        cmocka_unit_test(test_tls_ring_accepts_current_and_previous_period_only),
        cmocka_unit_test(test_tls_ring_jump_equals_steps),
        cmocka_unit_test(test_tls_workers_of_one_master_meet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
