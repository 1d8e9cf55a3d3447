"""Command line: parse options, seed the store, listen, print the URL, serve until a signal."""

import argparse
import signal
import sys
import threading

from . import VERSION, scale, seed, server

DESCRIPTION = """\
A local stand-in for the Altinn 3 platform, for altinnfs's demo, tests and benchmarks.
One server answers every API on one host:port, with the real paths, JSON shapes, paging and
status codes (see scripts/localtest/README.md in the altinnfs project), plus test tokens, a request log and fault
injection. Once listening it prints exactly one line to stdout:
  altinn-localtest listening on http://HOST:PORT
"""

EPILOG = """\
endpoints (all but the anonymous ones need "Authorization: Bearer <token from /Home/...>"):
  GET  /Home/GetTestOrgToken/{org}?orgNumber=&scopes=     org token (text/plain JWT)
  GET  /Home/GetTestUserToken/{userId}?partyId=&authLevel= user token
  GET  /storage/api/v1/instances?org=|appId=&...           query (filters, order, size,
                                                           continuationToken; next link)
  GET  /storage/api/v1/instances/{partyId}/{guid}          one instance
  GET  /storage/api/v1/instances/{partyId}/{guid}/dataelements
  GET  /storage/api/v1/instances/{partyId}/{guid}/data/{dataGuid}   bytes, Range support
  POST /storage/api/v1/instances/{partyId}/{guid}/complete         confirm as the org
  GET  /storage/api/v1/applications/{org}[/{app}]          app metadata (anonymous)
  GET  /{org}/{app}/api/v1/applicationmetadata             app metadata (anonymous)
  POST /{org}/{app}/instances[?instanceOwnerPartyId=]      create: JSON template or multipart
                                                           (part "instance" + data parts)
  GET|DELETE /{org}/{app}/instances/{partyId}/{guid}       InstanceResponse / soft|hard delete
  POST /{org}/{app}/instances/{partyId}/{guid}/data?dataType=   upload (app-lib's rules)
  GET|PUT|DELETE .../instances/{partyId}/{guid}/data/{dataGuid} read / replace / delete
  GET  .../process; PUT .../process/next, .../process/completeProcess
  POST .../complete; PUT .../substatus                     owner operations (org token)
  GET  /events/api/v1/app/{org}/{app}?after=|from=&to=&party=&unit=&type=&size=
                                                           poll app events (org token;
                                                           "next" header, min event age)
  GET  /events/api/v1/events?resource=&after=&subject=&type=&size=
                                                           generic events (scope
                                                           altinn:events.subscribe)
  POST /events/api/v1/subscriptions                        webhook subscription (JSON);
                                                           validation event, then one
                                                           CloudEvent per POST, retried
  GET  /events/api/v1/subscriptions[/{id}]                 own subscriptions; DELETE {id}
  POST /maskinporten/token                                 Maskinporten: a JWT grant
                                                           (RS256, registered client) for
                                                           an access token (no bearer)
  GET  /authentication/api/v1/exchange/maskinporten        that access token as bearer ->
                                                           an Altinn token (quoted for
                                                           Accept: application/json)

  POST /broker/api/v1/filetransfer                         Broker: initialize (JSON); also
                                                           GET (search), POST .../upload
                                                           (multipart), GET|POST
                                                           .../{id}[/details|/upload|
                                                           /download|/confirmdownload],
                                                           TUS .../upload/tus/{id}

admin API (no auth, not logged, not faulted):
  GET    /_localtest/requests[?since=SEQ]   request log (seq, time, method, path, query,
                                            range, status, bytes, auth); DELETE clears it
  POST   /_localtest/faults                 {"path","method","count", one of "status"
                                            (+"retry_after"), "delay_ms", "drop",
                                            "truncate", "hang", "stall",
                                            "trickle_bps", "endless" (a status);
                                            "after": true = do the work,
                                            then fault}; path: prefix, "*" = one
                                            segment, final "$" = exact; GET lists,
                                            DELETE clears
  POST   /_localtest/apps                   add/replace application metadata
                                            (+"_process": [{"id","altinnTaskType"}])
  GET    /_localtest/instances[?appId=&partyId=]   full instance documents
  GET    /_localtest/data/{dataGuid}        stored bytes of a data element
  POST   /_localtest/parties                register a party; GET lists the register
  POST   /_localtest/instances              add an instance with data (JSON)
  DELETE /_localtest/instances/{partyId}/{guid}
  PUT    /_localtest/instances/{partyId}/{guid}/data/{dataGuid}   replace bytes (raw body)
  POST   /_localtest/tokens/expire-all      invalidate every token issued so far
  POST   /_localtest/events                 publish {"org","app","type","partyId",
                                            "instanceGuid","alternativeSubject","count"}
                                            -> {"count","ids"}; GET counts, DELETE clears
  GET    /_localtest/events/settings        minEventAge, webhookRetryScale,
                                            allowHttpWebhooks; PUT changes them
  GET    /_localtest/webhooks[?since=&subscription=]   delivery attempts; DELETE clears
  GET    /_localtest/subscriptions          every subscription (+ pending); DELETE all
  GET    /_localtest/maskinporten           issuer (the grant's aud), tokenEndpoint, clients
  POST   /_localtest/maskinporten/clients   register {"clientId","kid","publicKeyPem",
                                            "scopes","orgNumber","org"}; GET lists
  POST   /_localtest/maskinporten/clients/{id}/revoke   (and /reinstate); DELETE .../{id}
  GET    /_localtest/maskinporten/log[?since=SEQ]   grants and exchanges, with their secrets
  POST   /_localtest/broker/resources   add a Broker resource; GET lists; DELETE .../{id}
  GET    /_localtest/broker/transfers   every transfer (+ .../{id}/content, POST .../{id}/expire, .../{id}/corrupt)
  GET    /_localtest/broker/settings    scanDelay, malware, cutUploadAfter, cutCount,
                                        cutStatus, storageNotReady, rateLimits; PUT changes

seed "demo": ttd/soknad (1,200 instances, 300 parties) and ttd/tilskudd (fixed test
instances 50001/5a1e0000-0000-4000-8000-000000000001 with awkward file names and
50002/b16f0000-0000-4000-8000-000000000002 with a 256 MiB element). Details in
scripts/localtest/README.md.
"""


def parse_seed(spec):
    """A --seed value: 'demo', 'none', 'scale:N' (scale.py), or several joined by '+'
    ('demo+scale:1000'). Returns a function that seeds a store; ValueError when unknown."""
    steps = []
    for part in spec.split("+"):
        if part in seed.SEEDS:
            steps.append(seed.SEEDS[part])
        elif part.startswith("scale:"):
            n = scale.parse_spec(part)
            steps.append(lambda store, n=n: scale.seed_scale(store, n))
        else:
            raise ValueError("unknown seed %r (demo, none, scale:N)" % part)

    def run(store):
        for step in steps:
            step(store)
    return run


def parse_args(argv):
    p = argparse.ArgumentParser(prog="altinn-localtest", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=0,
                   help="port to listen on; 0 picks a free one (default: %(default)s)")
    p.add_argument("--seed", default="demo",
                   help="initial data: 'demo' (org ttd with apps soknad and tilskudd), "
                        "'none' (no apps or instances), 'scale:N' (app ttd/skala with N "
                        "instances made on demand), or several joined by '+' "
                        "(default: %(default)s)")
    p.add_argument("--token-lifetime", type=int, default=3600, metavar="SECONDS",
                   help="lifetime of issued tokens, the exp claim: test tokens, Maskinporten "
                        "access tokens and exchanged tokens (default: %(default)s)")
    p.add_argument("--quiet", action="store_true",
                   help="no per-request log lines on stderr")
    p.add_argument("--ranges", action="store_true",
                   help="honour a single byte range on data downloads (206/416); default: "
                        "ignore Range (always 200 with the whole body, no Accept-Ranges), as "
                        "Storage's DataController does")
    p.add_argument("--no-ranges", action="store_true",
                   help="the default (ignore Range); accepted for old scripts")
    p.add_argument("--min-event-age", type=float, default=30, metavar="SECONDS",
                   help="events polling hides events registered less than this long ago, "
                        "as the platform does; webhooks do not wait (default: %(default)g)")
    p.add_argument("--allow-http-webhooks", action="store_true",
                   help="accept http:// subscription endpoints on loopback hosts (127.0.0.0/8, "
                        "::1, localhost); default: https only, like the platform")
    p.add_argument("--webhook-retry-scale", type=float, default=1.0, metavar="FACTOR",
                   help="multiply the webhook retry schedule (10 s, 30 s, 1 m, 5 m, 10 m, "
                        "30 m, 1 h, 3 h, 6 h, 12 h, 12 h, then dead-letter) by FACTOR, e.g. "
                        "0.01 in tests (default: %(default)g)")
    p.add_argument("--enforce-data-type-task-id", action="store_true",
                   help="refuse writes to a data type whose taskId is not the current task "
                        "(409), as apps with EnforceDataTypeTaskId do; default: off, as "
                        "app-lib's default")
    p.add_argument("--version", action="version", version="altinn-localtest " + VERSION)
    args = p.parse_args(argv)
    if args.token_lifetime < 1:
        p.error("--token-lifetime must be at least 1 second")
    if args.min_event_age < 0:
        p.error("--min-event-age must not be negative")
    if args.webhook_retry_scale < 0:
        p.error("--webhook-retry-scale must not be negative")
    if not 0 <= args.port <= 65535:
        p.error("--port must be 0..65535")
    try:
        args.seeder = parse_seed(args.seed)
    except ValueError as e:
        p.error("--seed: %s" % e)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    options = server.Options(token_lifetime=args.token_lifetime, quiet=args.quiet,
                             ranges=args.ranges, min_event_age=args.min_event_age,
                             allow_http_webhooks=args.allow_http_webhooks,
                             webhook_retry_scale=args.webhook_retry_scale,
                             enforce_data_type_task_id=args.enforce_data_type_task_id)
    platform = server.LocalPlatform(options)
    args.seeder(platform.store)
    if "demo" in args.seed.split("+"):        # also demo+scale:N
        platform.broker.seed_demo()
        platform.correspondence.seed_demo()
    try:
        httpd = server.Server((args.host, args.port), platform)
    except OSError as e:
        sys.stderr.write("altinn-localtest: cannot listen on %s:%d: %s\n" %
                         (args.host, args.port, e.strerror or e))
        return 1

    def stop(signum, frame):
        # shutdown() waits for serve_forever to return, so it must run on another thread.
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    platform.url = httpd.url
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write("altinn-localtest listening on %s\n" % httpd.url)
    sys.stdout.flush()
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    return 0
