/* test_bmeta.c - what a Broker sidecar may say (json_bmeta.c), checked
 * against Broker's own limits before anything is sent: the members and
 * their kinds, 10 properties, keys of 50 and values of 3000 UTF-16
 * units (a character outside the BMP counts twice, as .NET's
 * string.Length does), a reference of 1 to 4096; and an overview's
 * statuses in one line, by name or by number. The exit status is the
 * number of failures. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_broker.h"

#include "check.h"

/* "<n> times s", JSON-quoted, as a member value */
static char *repeat(const char *s, int n)
{
	size_t k = strlen(s);
	char *out = malloc(k * (size_t)n + 3), *p = out;

	*p++ = '"';
	for (int i = 0; i < n; i++, p += k)
		memcpy(p, s, k);
	*p++ = '"';
	*p = '\0';
	return out;
}

/* Parses text: 0 when ok is expected, else an error starting with field. */
static void meta(const char *text, bool ok, const char *field)
{
	struct broker_meta m;
	char err[300] = "";
	int r = broker_meta_parse(text, strlen(text), &m, err, sizeof(err));

	if (ok) {
		CHECK(r == 0, "%.60s: accepted (%s)", text, err);
		if (r == 0)
			broker_meta_clear(&m);
	} else {
		CHECK(r < 0 && strncmp(err, field, strlen(field)) == 0,
		      "%.60s: refused naming %s (%s)", text, field, err);
	}
}

static void limits(void)
{
	char buf[20000], *v;

	meta("{}", true, NULL);
	meta("{\"recipients\":[\"314000005\"],\"propertyList\":{\"a\":\"b\"},"
	     "\"sendersFileTransferReference\":\"sak-1\"}", true, NULL);
	meta("[1]", false, "not a JSON object");
	meta("{\"recipients\":[", false, "not JSON");
	meta("{\"recipients\":\"314000005\"}", false, "recipients");
	meta("{\"recipients\":[\"31400000\"]}", false, "recipients[0]");
	meta("{\"recipients\":[314000005]}", false, "recipients[0]");
	meta("{\"propertyList\":{\"a\":1}}", false, "propertyList.a");
	meta("{\"propertyList\":[]}", false, "propertyList");
	meta("{\"Recipients\":[]}", false, "Recipients");
	meta("{\"recipients\":[],\"recipients\":[]}", false, "not JSON");
	meta("{\"propertyList\":{\"1\":\"\",\"2\":\"\",\"3\":\"\",\"4\":\"\",\"5\":\"\",\"6\":\"\","
	     "\"7\":\"\",\"8\":\"\",\"9\":\"\",\"10\":\"\"}}", true, NULL);
	meta("{\"propertyList\":{\"1\":\"\",\"2\":\"\",\"3\":\"\",\"4\":\"\",\"5\":\"\",\"6\":\"\","
	     "\"7\":\"\",\"8\":\"\",\"9\":\"\",\"10\":\"\",\"11\":\"\"}}", false, "propertyList");
	/* a value of 1500 emoji is 3000 units; 1501 is 3002; 3000 letters
	 * of two UTF-8 bytes each are 3000 units */
	v = repeat("\xf0\x9f\x98\x80", 1500);
	snprintf(buf, sizeof(buf), "{\"propertyList\":{\"k\":%s}}", v);
	meta(buf, true, NULL);
	free(v);
	v = repeat("\xf0\x9f\x98\x80", 1501);
	snprintf(buf, sizeof(buf), "{\"propertyList\":{\"k\":%s}}", v);
	meta(buf, false, "propertyList.k");
	free(v);
	v = repeat("\xc3\xa6", 3000);
	snprintf(buf, sizeof(buf), "{\"propertyList\":{\"k\":%s}}", v);
	meta(buf, true, NULL);
	free(v);
	v = repeat("k", 51);
	snprintf(buf, sizeof(buf), "{\"propertyList\":{%s:\"v\"}}", v);
	meta(buf, false, "propertyList");
	free(v);
	v = repeat("r", 4096);
	snprintf(buf, sizeof(buf), "{\"sendersFileTransferReference\":%s}", v);
	meta(buf, true, NULL);
	free(v);
	v = repeat("r", 4097);
	snprintf(buf, sizeof(buf), "{\"sendersFileTransferReference\":%s}", v);
	meta(buf, false, "sendersFileTransferReference");
	free(v);
	meta("{\"sendersFileTransferReference\":\"\"}", false, "sendersFileTransferReference");
}

static void what_is_kept(void)
{
	const char *t = "{\"recipients\":[\"314000005\",\"313000001\"],"
			"\"propertyList\":{\"b\":\"2\",\"a\":\"1\"}}";
	struct broker_meta m;
	char err[200];

	CHECK(broker_meta_parse(t, strlen(t), &m, err, sizeof(err)) == 0, "parsed (%s)", err);
	CHECK(m.recipients[0] && strcmp(m.recipients[0], "314000005") == 0 && m.recipients[1] &&
		      !m.recipients[2],
	      "recipients in order");
	CHECK(m.property_list && strcmp(m.property_list, "{\"a\":\"1\",\"b\":\"2\"}") == 0,
	      "propertyList compact: %s", m.property_list);
	CHECK(m.reference == NULL, "no reference given");
	broker_meta_clear(&m);
}

static void signature(void)
{
	char *s = broker_overview_signature(
		"{\"fileTransferStatus\":\"Published\",\"recipients\":["
		"{\"recipient\":\"0192:313000001\",\"currentRecipientFileTransferStatusCode\":"
		"\"DownloadConfirmed\"},{\"recipient\":\"0192:314000005\","
		"\"currentRecipientFileTransferStatusCode\":1}]}");

	CHECK(s && strcmp(s, "Published 0192:313000001=DownloadConfirmed "
			     "0192:314000005=DownloadStarted") == 0,
	      "signature: %s", s ? s : "(null)");
	free(s);
	s = broker_overview_signature("{\"recipients\":[]}");
	CHECK(s == NULL, "no status, no signature");
	free(s);
	s = broker_overview_signature("not json");
	CHECK(s == NULL, "not an overview");
	free(s);
}

int main(void)
{
	limits();
	what_is_kept();
	signature();
	if (failures)
		fprintf(stderr, "%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
