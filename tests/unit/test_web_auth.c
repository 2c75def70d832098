/* test_web_auth.c: login codes, sessions, the Cookie header, Origin and page names. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "node/web_auth.h"

#define T0 1000000u

static struct web_auth w;

static void test_code_once_and_ttl(void **state)
{
	(void)state;
	web_auth_init(&w, WEB_CODE_TTL_MS);
	char a[WEB_CODE_HEX + 1], b[WEB_CODE_HEX + 1];
	web_code_new(&w, T0, a);
	web_code_new(&w, T0, b);
	assert_int_equal(strlen(a), WEB_CODE_HEX);
	assert_string_not_equal(a, b);
	struct web_session *s = web_code_redeem(&w, a, strlen(a), T0 + 1000);
	assert_non_null(s);
	assert_null(web_code_redeem(&w, a, strlen(a), T0 + 1000)); /* once */
	assert_null(web_code_redeem(&w, b, strlen(b), T0 + WEB_CODE_TTL_MS)); /* expired */
	assert_null(web_code_redeem(&w, b, strlen(b), T0)); /* the late try used it up */
	assert_null(web_code_redeem(&w, "zz", 2, T0));
	assert_null(web_code_redeem(&w, NULL, 0, T0));
	assert_null(web_code_redeem(&w, a, strlen(a) - 1, T0));
	web_auth_destroy(&w);
}

static void test_code_cap(void **state)
{
	(void)state;
	web_auth_init(&w, WEB_CODE_TTL_MS);
	char first[WEB_CODE_HEX + 1], c[WEB_CODE_HEX + 1];
	web_code_new(&w, T0, first);
	for (int i = 1; i <= WEB_MAX_CODES; i++)
		web_code_new(&w, T0 + (uint64_t)i, c);
	/* The 17th dropped the oldest; the newest still works. */
	assert_null(web_code_redeem(&w, first, WEB_CODE_HEX, T0 + 100));
	assert_non_null(web_code_redeem(&w, c, WEB_CODE_HEX, T0 + 100));
	web_auth_destroy(&w);
}

static struct web_session *new_session(uint64_t now, char id_out[WEB_SECRET_HEX + 1])
{
	char code[WEB_CODE_HEX + 1];
	web_code_new(&w, now, code);
	struct web_session *s = web_code_redeem(&w, code, WEB_CODE_HEX, now);
	assert_non_null(s);
	web_session_id_hex(s, id_out);
	return s;
}

static void test_sessions(void **state)
{
	(void)state;
	web_auth_init(&w, WEB_CODE_TTL_MS);
	char id[WEB_SECRET_HEX + 1], csrf[WEB_SECRET_HEX + 1], first[WEB_SECRET_HEX + 1];
	struct web_session *s = new_session(T0, first);
	assert_ptr_equal(web_session_find(&w, first, WEB_SECRET_HEX, T0 + 5), s);
	assert_int_equal(web_session_expires_in(s, T0), WEB_SESSION_TTL_S);
	web_session_csrf_hex(s, csrf);
	assert_string_not_equal(csrf, first);
	assert_true(web_session_csrf_ok(s, csrf));
	char padded[WEB_SECRET_HEX + 4];
	snprintf(padded, sizeof padded, " %s ", csrf);
	assert_true(web_session_csrf_ok(s, padded));
	csrf[0] = csrf[0] == '0' ? '1' : '0';
	assert_false(web_session_csrf_ok(s, csrf));
	assert_false(web_session_csrf_ok(s, NULL));
	assert_false(web_session_csrf_ok(s, ""));
	assert_false(web_session_csrf_ok(NULL, csrf));
	/* 12 hours, absolute. */
	assert_null(web_session_find(&w, first, WEB_SECRET_HEX, T0 + WEB_SESSION_TTL_MS));
	s = new_session(T0, first);
	for (int i = 1; i <= WEB_MAX_SESSIONS; i++)
		new_session(T0 + (uint64_t)i, id);
	assert_null(web_session_find(&w, first, WEB_SECRET_HEX, T0 + 100)); /* evicted */
	s = web_session_find(&w, id, WEB_SECRET_HEX, T0 + 100);
	assert_non_null(s);
	web_session_end(s);
	assert_null(web_session_find(&w, id, WEB_SECRET_HEX, T0 + 100)); /* logged out */
	assert_null(web_session_find(&w, "00", 2, T0));
	web_auth_destroy(&w);
}

static bool cookie(const char *header, const char *want)
{
	const char *cur = header, *v;
	size_t n;
	while (web_cookie_next(&cur, "shoal_session", &v, &n))
		if (n == strlen(want) && memcmp(v, want, n) == 0)
			return true;
	return false;
}

static void test_cookie_header(void **state)
{
	(void)state;
	assert_true(cookie("shoal_session=abc", "abc"));
	assert_true(cookie("a=1; shoal_session=abc; b=2", "abc"));
	assert_true(cookie("  a=1 ;shoal_session = abc  ;", "abc"));
	assert_true(cookie("a=1;\tshoal_session=\"abc\"", "abc"));
	assert_true(cookie("shoal_session=old; shoal_session=abc", "abc")); /* every one tried */
	assert_true(cookie("flag; shoal_session=abc", "abc"));
	assert_true(cookie("shoal_session=", ""));
	assert_false(cookie("xshoal_session=abc", "abc"));
	assert_false(cookie("shoal_sessionx=abc", "abc"));
	assert_false(cookie("a=shoal_session=abc", "abc"));
	assert_false(cookie("", "abc"));
	assert_false(cookie(";;;", "abc"));
	const char *cur = NULL, *v;
	size_t n;
	assert_false(web_cookie_next(&cur, "shoal_session", &v, &n));
}

static void test_origin(void **state)
{
	(void)state;
	assert_true(web_origin_matches("http://127.0.0.1:7881", "127.0.0.1:7881"));
	assert_true(web_origin_matches("http://LOCALHOST:7881", "localhost:7881"));
	assert_true(web_origin_matches("http://[::1]:7881", "[::1]:7881"));
	assert_false(web_origin_matches("https://127.0.0.1:7881", "127.0.0.1:7881"));
	assert_false(web_origin_matches("http://127.0.0.1:7882", "127.0.0.1:7881"));
	assert_false(web_origin_matches("http://127.0.0.1:7881/", "127.0.0.1:7881"));
	assert_false(web_origin_matches("http://evil.example", "127.0.0.1:7881"));
	assert_false(web_origin_matches("null", "127.0.0.1:7881"));
	assert_false(web_origin_matches("http://", ""));
	assert_false(web_origin_matches(NULL, "127.0.0.1:7881"));
	assert_false(web_origin_matches("http://127.0.0.1:7881", NULL));
}

static void test_names(void **state)
{
	(void)state;
	assert_true(web_file_name_ok("app.js"));
	assert_true(web_file_name_ok("Icon-2_x.png"));
	assert_false(web_file_name_ok(""));
	assert_false(web_file_name_ok(".hidden"));
	assert_false(web_file_name_ok(".."));
	assert_false(web_file_name_ok("a/b"));
	assert_false(web_file_name_ok("..%2f"));
	assert_false(web_file_name_ok("a b"));
	assert_false(web_file_name_ok("a\\b"));
	char longname[WEB_MAX_NAME + 2];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_false(web_file_name_ok(longname));
	assert_string_equal(web_content_type("index.html"), "text/html; charset=utf-8");
	assert_string_equal(web_content_type("app.js"), "text/javascript; charset=utf-8");
	assert_string_equal(web_content_type("x.CSS"), "text/css; charset=utf-8");
	assert_string_equal(web_content_type("i.svg"), "image/svg+xml");
	assert_null(web_content_type("README"));
	assert_null(web_content_type("a.exe"));
	assert_null(web_content_type("a.js.map"));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_code_once_and_ttl), cmocka_unit_test(test_code_cap),
		cmocka_unit_test(test_sessions),          cmocka_unit_test(test_cookie_header),
		cmocka_unit_test(test_origin),            cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
