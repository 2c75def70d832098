/* test_api_auth.c: Host header policy, bearer token check, JSON depth, token file. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/util.h"
#include "node/api.h"

static void test_host(void **state)
{
	(void)state;
	assert_true(api_host_allowed("127.0.0.1:7881", 7881, "127.0.0.1"));
	assert_true(api_host_allowed("localhost:7881", 7881, "127.0.0.1"));
	assert_true(api_host_allowed("LocalHost:7881", 7881, "127.0.0.1"));
	assert_true(api_host_allowed("[::1]:7881", 7881, "::1"));
	assert_false(api_host_allowed("127.0.0.1:7882", 7881, "127.0.0.1"));
	assert_false(api_host_allowed("127.0.0.1", 7881, "127.0.0.1"));
	assert_false(api_host_allowed("evil.example:7881", 7881, "127.0.0.1"));
	assert_false(api_host_allowed("localhost.evil.example:7881", 7881, "127.0.0.1"));
	assert_false(api_host_allowed("127.0.0.1.nip.io:7881", 7881, "127.0.0.1"));
	assert_false(api_host_allowed("", 7881, "127.0.0.1"));
	assert_false(api_host_allowed(NULL, 7881, "127.0.0.1"));
	assert_false(api_host_allowed("[::1]", 7881, "::1"));
	assert_false(api_host_allowed("[::1]x:7881", 7881, "::1"));
	assert_false(api_host_allowed("127.0.0.1:7881x", 7881, "127.0.0.1"));
	/* With an explicit non-loopback bind, that literal is accepted too. */
	assert_true(api_host_allowed("10.1.2.3:7881", 7881, "10.1.2.3"));
	assert_false(api_host_allowed("10.1.2.4:7881", 7881, "10.1.2.3"));
	assert_true(api_host_allowed("[fd00::5]:7881", 7881, "fd00::5"));
}

static void test_bearer(void **state)
{
	(void)state;
	uint8_t token[API_TOKEN_LEN];
	for (size_t i = 0; i < sizeof token; i++)
		token[i] = (uint8_t)(i * 7 + 1);
	char hex[2 * API_TOKEN_LEN + 1], header[128];
	hex_encode(token, sizeof token, hex);
	snprintf(header, sizeof header, "Bearer %s", hex);
	assert_true(api_bearer_ok(header, token));
	snprintf(header, sizeof header, "bearer %s", hex);
	assert_true(api_bearer_ok(header, token));
	assert_false(api_bearer_ok(NULL, token));
	assert_false(api_bearer_ok("", token));
	assert_false(api_bearer_ok(hex, token)); /* no scheme */
	snprintf(header, sizeof header, "Basic %s", hex);
	assert_false(api_bearer_ok(header, token));
	hex[5] = hex[5] == '0' ? '1' : '0';
	snprintf(header, sizeof header, "Bearer %s", hex);
	assert_false(api_bearer_ok(header, token));
	snprintf(header, sizeof header, "Bearer %.63s", hex);
	assert_false(api_bearer_ok(header, token));
}

static void test_json_depth(void **state)
{
	(void)state;
	assert_int_equal(api_json_depth("{}", 2), 1);
	assert_int_equal(api_json_depth("{\"a\":[1,{\"b\":[]}]}", 18), 4);
	const char *s = "{\"a\":\"[[[[{{{{\"}";
	assert_int_equal(api_json_depth(s, strlen(s)), 1);
	s = "{\"a\":\"\\\"[[[\"}";
	assert_int_equal(api_json_depth(s, strlen(s)), 1);
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	assert_int_equal(api_json_depth(deep, sizeof deep), 100);
}

static void test_token_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/shoal-test-token-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], err[512];
	snprintf(path, sizeof path, "%s/api.token", dir);
	uint8_t a[API_TOKEN_LEN], b[API_TOKEN_LEN];
	assert_int_equal(api_token_load_or_create(path, a, err, sizeof err), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 65);
	assert_int_equal(api_token_load_or_create(path, b, err, sizeof err), 0);
	assert_memory_equal(a, b, sizeof a); /* stable across restarts */
	/* Loose permissions get tightened. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(api_token_load_or_create(path, b, err, sizeof err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A damaged token file is an error, not silently replaced. */
	FILE *f = fopen(path, "w");
	fputs("nothex\n", f);
	fclose(f);
	assert_int_equal(api_token_load_or_create(path, b, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "valid API token"));
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_bearer),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_token_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
