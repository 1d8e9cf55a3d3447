/* fuzz_answers.c - the small answers: ProblemDetails and other error
 * bodies, process states, a data element's id, and what the token
 * endpoints (Maskinporten, the exchange) send back. */
#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char buf[512], *a = NULL, *b = NULL;
	int64_t expires_in;
	bool ended;
	char *s;

	json_problem_text(text, size, buf, sizeof(buf));
	json_process_summary(text, size, buf, sizeof(buf));
	json_oauth_error(text, size, buf, sizeof(buf));
	json_outbox_problem(text, size, &a, &b);
	free(a);
	free(b);
	a = b = NULL;
	if (json_outbox_parse_process(text, size, &a, &ended) == 0)
		free(a);
	if (json_outbox_parse_element_id(text, size, &a, &b) == 0) {
		free(a);
		free(b);
	}
	a = b = NULL;
	if (json_parse_mp_token(text, size, &a, &expires_in) == 0)
		free(a);
	if (json_parse_string_answer(text, size, &a) == 0)
		free(a);
	s = fuzz_cstr(data, size);
	{
		struct jwt_claims claims;
		struct timespec ts;

		json_jwt_claims(s, &claims);
		json_parse_time(s, &ts);
	}
	free(s);
	return 0;
}
