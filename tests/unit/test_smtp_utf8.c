/*
 * test_smtp_utf8 - unit tests for smtp/smtp_utf8.c: when MAIL carries
 * SMTPUTF8, which address forms go to a next hop without it (A-label
 * domains), which recipients cannot go to it, and which bounce with
 * 5.6.7 before MAIL; the list of addresses found without SMTPUTF8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "netaddr.h"
#include "smtp_utf8.h"

#define JOSE "j\xc3\xb6s\xc3\xa9" /* jösé */
#define BUCHER                                                                                     \
    "b\xc3\xbc"                                                                                    \
    "cher" /* bücher */

/* request_of - a request from sender to the NULL-terminated rcpts */
static void request_of(struct delivery_request *req, const char *sender, const char *const *rcpts)
{
    delivery_request_init(req);
    req->sender = strdup(sender);
    while (rcpts[req->rcpt_count] != NULL)
        req->rcpt_count++;
    req->rcpts = calloc(req->rcpt_count, sizeof(*req->rcpts));
    for (size_t i = 0; i < req->rcpt_count; i++) {
        req->rcpts[i].address = strdup(rcpts[i]);
        req->rcpts[i].notify = strdup("");
        req->rcpts[i].orcpt = strdup("");
    }
}

static void test_smtputf8_used_only_when_offered_and_needed(void **state)
{
    static const char *const ascii[] = {"a@b.test", NULL};
    static const char *const utf8[] = {"a@b.test", JOSE "@b.test", NULL};
    struct delivery_request req;

    request_of(&req, "s@b.test", ascii);
    assert_int_equal(smtp_utf8_use(&req, 1), 0);
    req.smtputf8 = 1; /* the flag alone asks for it */
    assert_int_equal(smtp_utf8_use(&req, 1), 1);
    assert_int_equal(smtp_utf8_use(&req, 0), 0);
    delivery_request_free(&req);
    request_of(&req, "s@b.test", utf8);
    assert_int_equal(smtp_utf8_use(&req, 1), 1);
    assert_int_equal(smtp_utf8_use(&req, 0), 0);
    delivery_request_free(&req);
    request_of(&req, JOSE "@b.test", ascii);
    assert_int_equal(smtp_utf8_use(&req, 1), 1);
    delivery_request_free(&req);
}

static void test_address_forms_for_a_hop_without_smtputf8(void **state)
{
    buf_t out = BUF_INIT;

    assert_int_equal(smtp_utf8_address("u@" BUCHER ".test", 0, &out), 0);
    assert_string_equal(buf_cstr(&out), "u@xn--bcher-kva.test");
    buf_reset(&out);
    assert_int_equal(smtp_utf8_address("u@" BUCHER ".test", 1, &out), 0);
    assert_string_equal(buf_cstr(&out), "u@" BUCHER ".test");
    buf_reset(&out);
    assert_int_equal(smtp_utf8_address(JOSE "@b.test", 0, &out), -1);
    assert_int_equal(out.len, 0);
    assert_int_equal(smtp_utf8_address("", 0, &out), 0);
    assert_string_equal(buf_cstr(&out), "");
    buf_free(&out);
}

static void test_refuse_bounces_utf8_local_parts_with_567(void **state)
{
    static const char *const rcpts[] = {"u@" BUCHER ".test", JOSE "@b.test", NULL};
    struct delivery_request req;

    request_of(&req, "s@b.test", rcpts);
    assert_int_equal(smtp_utf8_refuse(&req, 1, "mx[192.0.2.1]:25"), 2);
    assert_int_equal(req.rcpts[1].result.status, DELIVERY_PENDING);
    assert_int_equal(smtp_utf8_refuse(&req, 0, "mx[192.0.2.1]:25"), 1);
    assert_int_equal(req.rcpts[0].result.status, DELIVERY_PENDING);
    assert_int_equal(req.rcpts[1].result.status, DELIVERY_BOUNCE);
    assert_string_equal(req.rcpts[1].result.dsn, "5.6.7");
    assert_string_equal(buf_cstr(&req.rcpts[1].result.reason),
                        "SMTPUTF8 is required, but was not offered by host mx[192.0.2.1]:25");
    delivery_request_free(&req);
}

static void test_refuse_bounces_everybody_for_a_utf8_sender(void **state)
{
    static const char *const rcpts[] = {"a@b.test", "c@d.test", NULL};
    struct delivery_request req;

    request_of(&req, JOSE "@b.test", rcpts);
    assert_int_equal(smtp_utf8_refuse(&req, 0, "mx"), 0);
    assert_int_equal(req.rcpts[0].result.status, DELIVERY_BOUNCE);
    assert_int_equal(req.rcpts[1].result.status, DELIVERY_BOUNCE);
    delivery_request_free(&req);
}

static void test_unsendable_counts_without_deciding(void **state)
{
    static const char *const rcpts[] = {"u@" BUCHER ".test", JOSE "@b.test", JOSE "@c.test", NULL};
    struct delivery_request req;

    request_of(&req, "s@b.test", rcpts);
    assert_int_equal(smtp_utf8_unsendable(&req, 1), 0);
    assert_int_equal(smtp_utf8_unsendable(&req, 0), 2);
    assert_int_equal(req.rcpts[1].result.status, DELIVERY_PENDING); /* the next host may take it */
    delivery_rcpt_set(&req.rcpts[2], DELIVERY_SENT, "2.0.0", "ok"); /* decided ones do not count */
    assert_int_equal(smtp_utf8_unsendable(&req, 0), 1);
    delivery_request_free(&req);
    request_of(&req, JOSE "@b.test", rcpts);
    assert_int_equal(smtp_utf8_unsendable(&req, 0), 3); /* a UTF-8 sender: everybody */
    delivery_request_free(&req);
}

/* addr - an address with its port, as tern-smtp connects to it */
static struct sockaddr_storage addr(const char *text, int port)
{
    struct sockaddr_storage ss;

    assert_int_equal(netaddr_parse_addr(text, &ss), 0);
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    return ss;
}

static void test_lacking_list_matches_address_and_port_exactly(void **state)
{
    buf_t list = BUF_INIT;
    struct sockaddr_storage a = addr("192.0.2.1", 25), a2 = addr("192.0.2.1", 2525),
                            b = addr("92.0.2.1", 25), c = addr("2001:db8::1", 25);

    (void)state;
    assert_false(smtp_utf8_lacking_has(&list, (struct sockaddr *)&a));
    smtp_utf8_lacking_add(&list, (struct sockaddr *)&a);
    smtp_utf8_lacking_add(&list, (struct sockaddr *)&a); /* once only */
    smtp_utf8_lacking_add(&list, (struct sockaddr *)&c);
    assert_string_equal(buf_cstr(&list), " 192.0.2.1 25  2001:db8::1 25 ");
    assert_true(smtp_utf8_lacking_has(&list, (struct sockaddr *)&a));
    assert_true(smtp_utf8_lacking_has(&list, (struct sockaddr *)&c));
    assert_false(smtp_utf8_lacking_has(&list, (struct sockaddr *)&a2)); /* another port */
    assert_false(smtp_utf8_lacking_has(&list, (struct sockaddr *)&b));  /* a suffix of a */
    buf_free(&list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtputf8_used_only_when_offered_and_needed),
        cmocka_unit_test(test_address_forms_for_a_hop_without_smtputf8),
        cmocka_unit_test(test_refuse_bounces_utf8_local_parts_with_567),
        cmocka_unit_test(test_refuse_bounces_everybody_for_a_utf8_sender),
        cmocka_unit_test(test_unsendable_counts_without_deciding),
        cmocka_unit_test(test_lacking_list_matches_address_and_port_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
