"""Storage API (`/storage/api/v1`): instances, data elements and their bytes, applications.

Follows Altinn's Storage controllers (altinn-api.md §2): plain-text 400/404 bodies, empty 403s,
instance documents with platform self links, and data downloads with the stored content type
and a Content-Disposition built from the element's filename. Downloads are streamed from the
content object and, like Storage's DataController, ignore Range (whole body, 200) unless the
platform was started with --ranges, which makes them honour a single byte range (206/416).
"""

import urllib.parse

from . import auth, dates, query, web

PREFIX = "/storage/api/v1"

# RFC 8187 attr-char: what may stay unescaped in filename*.
_ATTR_CHARS = "!#$&+-.^_`|~"


def content_disposition(filename):
    """`attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`.

    The quoted fallback replaces non-ASCII and control characters with `_` (as ASP.NET does)
    and escapes `"` and `\\`; filename* carries the exact name.
    """
    fallback = []
    for ch in filename:
        if ch in '"\\':
            fallback.append("\\" + ch)
        elif 0x20 <= ord(ch) < 0x7F:
            fallback.append(ch)
        else:
            fallback.append("_")
    star = urllib.parse.quote(filename, safe=_ATTR_CHARS, encoding="utf-8")
    return "attachment; filename=\"%s\"; filename*=UTF-8''%s" % ("".join(fallback), star)


def _find_instance(store, req):
    inst = store.instance(req.params.get("partyId"), req.params["instanceGuid"])
    if inst is None:
        raise web.HttpError(web.text(404, "Unable to find instance %s" %
                                     req.params["instanceGuid"]))
    if not req.principal.may_read_instance(inst):
        raise web.HttpError(auth.forbidden())
    return inst


def data_response(req, inst, element, ranges=True):
    """The bytes of `element` as a Response, honouring Range when `ranges`."""
    size = element.size
    headers = [("Content-Type", element.content_type)]
    if element.filename:
        headers.append(("Content-Disposition", content_disposition(element.filename)))
    headers.append(("Last-Modified", dates.http_date(element.last_changed)))
    if not ranges:
        return web.Response(200, headers, content=element.content)
    headers.append(("Accept-Ranges", "bytes"))
    wanted = web.parse_range(req.headers.get("Range"), size)
    if wanted is None:
        return web.Response(200, headers, content=element.content)
    if wanted == web.UNSATISFIABLE:
        return web.Response(416, [("Content-Range", "bytes */%d" % size)])
    start, end = wanted
    headers.append(("Content-Range", "bytes %d-%d/%d" % (start, end - 1, size)))
    return web.Response(206, headers, content=element.content, start=start, end=end)


def register(router, platform):
    store = platform.store

    def get_instances(req):
        return query.search(req, store)

    def get_instance(req):
        with store.lock:
            inst = _find_instance(store, req)
            return web.json_response(inst.to_json(req.base_url,
                                                  app_owner=req.principal.same_org(inst.org)))

    def get_data_elements(req):
        with store.lock:
            inst = _find_instance(store, req)
            return web.json_response(
                {"dataElements": [e.to_json(inst, req.base_url) for e in
                                  inst.visible_data(req.principal.same_org(inst.org))]})

    def get_data(req):
        with store.lock:
            inst = store.instance(req.params["partyId"], req.params["instanceGuid"])
            if inst is None:
                return web.text(404, "Unable to find any instance with id: %s/%s." % (
                    req.params["partyId"], req.params["instanceGuid"]))
            if not req.principal.may_read_instance(inst):
                return auth.forbidden()
            element = inst.data_element(req.params["dataGuid"].lower())
            if element is None:
                return web.text(404, "Unable to find any data element with id: %s." %
                                req.params["dataGuid"])
            if not req.principal.is_org:
                element.is_read = True      # Storage marks non-owner reads
            return data_response(req, inst, element, platform.options.ranges)

    def complete(req):
        with store.lock:
            inst = _find_instance(store, req)
            principal = req.principal
            if not principal.is_org:
                return auth.forbidden()
            if not inst.confirmed_by(principal.org):
                now = dates.now_ticks()
                inst.confirmations.append((principal.org, now))
                store.touch(inst, by=principal.subject, ticks=now)
            return web.json_response(inst.to_json(req.base_url))

    def get_application(req):
        app = store.app("%s/%s" % (req.params["org"], req.params["app"]))
        if app is None:
            return web.text(404, "Cannot find application %s/%s in storage" % (
                req.params["org"], req.params["app"]))
        return web.json_response(app.to_json())

    def get_applications(req):
        apps = store.apps(req.params["org"])
        return web.json_response({"applications": [a.to_json() for a in apps]})

    inst_path = PREFIX + "/instances/{partyId:int}/{instanceGuid:guid}"
    router.add("GET", PREFIX + "/instances", get_instances)
    router.add("GET", inst_path, get_instance)
    router.add("GET", PREFIX + "/instances/{instanceGuid:guid}", get_instance)
    router.add("GET", inst_path + "/dataelements", get_data_elements)
    router.add("GET", inst_path + "/data/{dataGuid:guid}", get_data)
    router.add("POST", inst_path + "/complete", complete)
    router.add("GET", PREFIX + "/applications/{org}/{app}", get_application, auth=False)
    router.add("GET", PREFIX + "/applications/{org}", get_applications, auth=False)
