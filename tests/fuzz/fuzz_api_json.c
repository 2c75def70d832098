/* fuzz_api_json.c: the control API's input checks: JSON bodies (depth scan,
 * then jansson with duplicate keys refused), Host headers and bearer tokens. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "node/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > API_MAX_BODY)
		return 0;
	/* As api.c does: refuse deep nesting before jansson sees it. */
	if (api_json_depth((const char *)data, size) <= API_MAX_JSON_DEPTH) {
		json_error_t err;
		json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
		if (j && json_is_object(j)) {
			/* The fields handlers read. */
			(void)json_string_value(json_object_get(j, "share"));
			(void)json_string_value(json_object_get(j, "link"));
			(void)json_array_size(json_object_get(j, "peers"));
		}
		json_decref(j);
	}
	/* Header checks take NUL-terminated text. */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	static const uint8_t token[API_TOKEN_LEN] = { 1, 2, 3 };
	(void)api_host_allowed(text, 7881, "127.0.0.1");
	(void)api_host_allowed(text, 7881, "::1");
	(void)api_bearer_ok(text, token);
	free(text);
	return 0;
}
