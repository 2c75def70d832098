/* test_config.c: settings from defaults, shoal.conf and flags. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/settings.h"

static void test_defaults(void **state)
{
	(void)state;
	struct node_config cfg;
	setenv("SHOAL_DATA_DIR", "/tmp/shoal-x", 1);
	assert_int_equal(config_defaults(&cfg), 0);
	assert_string_equal(cfg.data_dir, "/tmp/shoal-x");
	unsetenv("SHOAL_DATA_DIR");
	setenv("XDG_DATA_HOME", "/xdg", 1);
	assert_int_equal(config_defaults(&cfg), 0);
	assert_string_equal(cfg.data_dir, "/xdg/shoal");
	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/home/u", 1);
	assert_int_equal(config_defaults(&cfg), 0);
	assert_string_equal(cfg.data_dir, "/home/u/.local/share/shoal");
	/* downloads: $XDG_DOWNLOAD_DIR when absolute, else ~/Downloads */
	unsetenv("XDG_DOWNLOAD_DIR");
	assert_int_equal(config_defaults(&cfg), 0);
	assert_string_equal(cfg.download_dir, "/home/u/Downloads");
	setenv("XDG_DOWNLOAD_DIR", "relative/dl", 1);
	assert_int_equal(config_defaults(&cfg), 0);
	assert_string_equal(cfg.download_dir, "/home/u/Downloads");
	setenv("XDG_DOWNLOAD_DIR", "/media/dl", 1);
	assert_int_equal(config_defaults(&cfg), 0);
	assert_string_equal(cfg.download_dir, "/media/dl");
	unsetenv("XDG_DOWNLOAD_DIR");
	assert_int_equal(cfg.peer_port, CONFIG_DEFAULT_PEER_PORT);
	assert_int_equal(cfg.api_port, CONFIG_DEFAULT_API_PORT);
	assert_string_equal(cfg.api_bind, "127.0.0.1");
	assert_int_equal(cfg.encryption, ENCRYPTION_PREFER);
	assert_int_equal(cfg.cipher, CIPHER_AUTO);
	assert_string_equal(config_cipher_name(cfg.cipher), "auto");
	assert_int_equal(cfg.crypto_threads, -1);
	/* auto: on the loop below 4 CPUs, then one per 4 CPUs, at most 4 */
	assert_int_equal(config_crypto_threads(&cfg, 1), 0);
	assert_int_equal(config_crypto_threads(&cfg, 2), 0);
	assert_int_equal(config_crypto_threads(&cfg, 3), 0);
	assert_int_equal(config_crypto_threads(&cfg, 4), 1);
	assert_int_equal(config_crypto_threads(&cfg, 8), 2);
	assert_int_equal(config_crypto_threads(&cfg, 64), CONFIG_AUTO_CRYPTO_THREADS_MAX);
	assert_int_equal(cfg.upload_limit, 0);
}

static void test_set_values(void **state)
{
	(void)state;
	struct node_config cfg;
	char err[256];
	assert_int_equal(config_defaults(&cfg), 0);
	assert_int_equal(config_set(&cfg, "port", "7000", err, sizeof err), 0);
	assert_int_equal(cfg.peer_port, 7000);
	assert_int_equal(config_set(&cfg, "api-port", "0", err, sizeof err), 0);
	assert_int_equal(cfg.api_port, 0);
	assert_int_equal(config_set(&cfg, "upload-limit", "500K", err, sizeof err), 0);
	assert_int_equal(cfg.upload_limit, 500 * 1024);
	assert_int_equal(config_set(&cfg, "download-limit", "2M", err, sizeof err), 0);
	assert_int_equal(cfg.download_limit, 2 * 1024 * 1024);
	assert_int_equal(config_set(&cfg, "bootstrap", "127.0.0.1:6881,[::1]:7000", err, sizeof err), 0);
	assert_int_equal(config_set(&cfg, "bootstrap", "", err, sizeof err), 0);
	assert_string_equal(cfg.bootstrap, "");
	assert_int_equal(config_set(&cfg, "download-dir", "/srv/dl", err, sizeof err), 0);
	assert_string_equal(cfg.download_dir, "/srv/dl");
	assert_int_equal(config_set(&cfg, "encryption", "require", err, sizeof err), 0);
	assert_int_equal(cfg.encryption, ENCRYPTION_REQUIRE);
	assert_int_equal(config_set(&cfg, "cipher", "xchacha20poly1305", err, sizeof err), 0);
	assert_int_equal(cfg.cipher, CIPHER_XCHACHA);
	assert_string_equal(config_cipher_name(cfg.cipher), "xchacha20poly1305");
	assert_int_equal(config_set(&cfg, "cipher", "auto", err, sizeof err), 0);
	assert_int_equal(cfg.cipher, CIPHER_AUTO);
	assert_int_equal(config_set(&cfg, "cipher", "xchacha", err, sizeof err), 0);
	assert_int_equal(cfg.cipher, CIPHER_XCHACHA);
	assert_int_equal(config_set(&cfg, "crypto-threads", "0", err, sizeof err), 0);
	assert_int_equal(config_crypto_threads(&cfg, 8), 0);
	assert_int_equal(config_set(&cfg, "crypto-threads", "16", err, sizeof err), 0);
	assert_int_equal(config_crypto_threads(&cfg, 2), 16);
	assert_int_equal(config_set(&cfg, "crypto-threads", "auto", err, sizeof err), 0);
	assert_int_equal(cfg.crypto_threads, -1);
	assert_int_equal(config_set(&cfg, "log-level", "debug", err, sizeof err), 0);
	assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
	assert_int_equal(config_set(&cfg, "api-bind", "::1", err, sizeof err), 0);
	assert_int_equal(config_set(&cfg, "no-upload", "true", err, sizeof err), 0);
	assert_true(cfg.no_upload);
}

static void test_set_rejects(void **state)
{
	(void)state;
	struct node_config cfg;
	char err[256];
	assert_int_equal(config_defaults(&cfg), 0);
	struct node_config before = cfg;
	assert_int_equal(config_set(&cfg, "port", "0", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "port"));
	assert_int_equal(config_set(&cfg, "port", "70000", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "upload-limit", "fast", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "bootstrap", "nohostport", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "bootstrap", "a:1,,b:2", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "api-bind", "localhost", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "encryption", "maybe", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "cipher", "aes", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "auto or xchacha20poly1305"));
	assert_int_equal(config_set(&cfg, "cipher", "", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "crypto-threads", "17", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "crypto-threads"));
	assert_int_equal(config_set(&cfg, "crypto-threads", "-1", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "crypto-threads", "", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "crypto-threads", "2x", err, sizeof err), -EINVAL);
	assert_int_equal(config_set(&cfg, "download-dir", "Downloads", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "absolute"));
	assert_int_equal(config_set(&cfg, "colour", "blue", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "unknown setting 'colour'"));
	assert_memory_equal(&cfg, &before, sizeof cfg); /* failures change nothing */
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/shoal-test-config-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof path, "%s/shoal.conf", dir);
	struct node_config cfg;
	char err[512];
	assert_int_equal(config_defaults(&cfg), 0);

	/* Missing file: defaults stand. */
	assert_int_equal(config_load_file(&cfg, path, err, sizeof err), 0);
	assert_int_equal(cfg.peer_port, CONFIG_DEFAULT_PEER_PORT);

	write_file(path, "# a comment\n\nport = 7001   # trailing\nupload-limit=1M\n"
			 "bootstrap = \"127.0.0.1:9000\"\n");
	assert_int_equal(config_load_file(&cfg, path, err, sizeof err), 0);
	assert_int_equal(cfg.peer_port, 7001);
	assert_int_equal(cfg.upload_limit, 1024 * 1024);
	assert_string_equal(cfg.bootstrap, "127.0.0.1:9000");
	/* A flag applied afterwards wins. */
	assert_int_equal(config_set(&cfg, "port", "7002", err, sizeof err), 0);
	assert_int_equal(cfg.peer_port, 7002);

	write_file(path, "port = 7003\nbogus line\n");
	assert_int_equal(config_load_file(&cfg, path, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, ":2:"));
	write_file(path, "data-dir = /elsewhere\n");
	assert_int_equal(config_load_file(&cfg, path, err, sizeof err), -EINVAL);
	write_file(path, "port = lots\n");
	assert_int_equal(config_load_file(&cfg, path, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, ":1: invalid port"));
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_set_values),
		cmocka_unit_test(test_set_rejects),
		cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
