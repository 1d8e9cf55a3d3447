/* endpoints.c - which part of the platform a URL is, for the metrics.
 *
 * By its path, as the platform's services are laid out: Storage's
 * applications, instances and data elements, the Events API, the token
 * exchange of Authentication, the apps' own API under /{org}/{app}/, and
 * Maskinporten's /token. http.c labels every attempt with it, so the
 * metrics can tell a slow Storage from a slow app. */
#include "http.h"

#include <string.h>

enum metrics_endpoint http_endpoint_class(const char *url)
{
	const char *p = strstr(url, "://");

	p = p ? strchr(p + 3, '/') : NULL;
	if (!p)
		return METRICS_EP_OTHER;
	if (strncmp(p, "/storage/api/v1/applications", 29) == 0)
		return METRICS_EP_APPLICATIONS;
	if (strncmp(p, "/storage/api/v1/instances", 25) == 0)
		return strstr(p, "/data/") ? METRICS_EP_DATA : METRICS_EP_INSTANCES;
	if (strncmp(p, "/events/api/", 12) == 0)
		return METRICS_EP_EVENTS;
	if (strncmp(p, "/authentication/api/", 20) == 0)
		return METRICS_EP_AUTH;
	if (strncmp(p, "/token", 6) == 0 && (p[6] == '\0' || p[6] == '?'))
		return METRICS_EP_MASKINPORTEN;
	if (strstr(p, "/instances"))
		return METRICS_EP_APP;
	return METRICS_EP_OTHER;
}
