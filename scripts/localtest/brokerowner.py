"""Broker's service-owner endpoint for resources (ResourceController.cs):
`PUT|GET /broker/api/v1/resource/{resourceId}`, scope `altinn:serviceowner`.

Resources are registered with the admin API (they stand for the Resource Registry's); the
service owner may then configure them as ConfigureResourceHandler.cs allows: the caller must
be the resource's service owner (401 `BRO-00006`); `maxFileTransferSize` < 0 is 11, 0 is 12,
above 50 GB without approval for unscanned transfers 13, above the global maximum 22;
`fileTransferTimeToLive` must be an ISO 8601 duration (14) of at most 365 days (15),
`purgeFileTransferGracePeriod` likewise (17) of at most 24 hours (18). Success is 204. GET
answers the settings with durations in .NET's TimeSpan format (`30.00:00:00`, `02:00:00`),
null where never set, 400 `BRO-00025` for a resource Broker does not know.
"""

import json

from . import broker, brokerapi, web
from .brokermodel import (MAX_GRACE, MAX_TTL, MAX_UPLOAD_SIZE, MAX_VIRUS_SCAN_SIZE,
                          parse_duration)

SCOPE = "altinn:serviceowner"


def timespan(seconds):
    """.NET TimeSpan.ToString(): `[d.]hh:mm:ss[.fffffff]`."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    text = "%02d:%02d:%02d" % (rest // 3600, rest % 3600 // 60, rest % 60)
    frac = seconds - whole
    if frac:
        text += ".%07d" % round(frac * 1e7)
    return ("%d." % days if days else "") + text


def _error(code):
    return web.HttpError(brokerapi.problem(broker.BrokerError(code)))


def _duration(value, bad, too_long, cap):
    if not isinstance(value, str):
        raise brokerapi.validation({"$": ["The JSON value could not be converted to "
                                          "System.String."]})
    try:
        seconds = parse_duration(value)
    except (ValueError, TypeError):
        raise _error(bad)
    if seconds > cap:
        raise _error(too_long)
    return seconds


def register(router, platform):
    service = platform.broker
    path = "/broker/api/v1/resource/{resourceId}"

    def owned(req):
        brokerapi.check_accept(req)
        if not req.principal.has_scope(SCOPE):
            raise web.HttpError(web.empty(403))
        caller = broker.caller_org(req.principal.claims)
        resource = service.resource(req.params["resourceId"])
        return caller, resource

    def put(req):
        caller, resource = owned(req)
        if brokerapi.content_type(req) != "application/json":
            raise brokerapi.media_problem(415)
        try:
            doc = json.loads(req.body().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise brokerapi.validation({"$": [str(e)]})
        if not isinstance(doc, dict):
            raise brokerapi.validation({"resourceExt": ["The resourceExt field is required."]})
        if resource is None:
            raise _error(5)
        if caller != resource.service_owner:
            raise _error(6)
        size = doc.get("maxFileTransferSize")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool):
                raise brokerapi.validation({"$.maxFileTransferSize": [
                    "The JSON value could not be converted to System.Nullable`1[System.Int64]."]})
            if size < 0:
                raise _error(11)
            if size == 0:
                raise _error(12)
            if size > MAX_VIRUS_SCAN_SIZE and not resource.approved_no_scan:
                raise _error(13)
            if size > MAX_UPLOAD_SIZE:
                raise _error(22)
        ttl = grace = None
        if doc.get("fileTransferTimeToLive") is not None:
            ttl = _duration(doc["fileTransferTimeToLive"], 14, 15, MAX_TTL)
        if doc.get("purgeFileTransferGracePeriod") is not None:
            grace = _duration(doc["purgeFileTransferGracePeriod"], 17, 18, MAX_GRACE)
        with service.lock:
            if size is not None:
                resource.max_size = size
            if ttl is not None:
                resource.ttl, resource.ttl_set = ttl, True
            if grace is not None:
                resource.grace, resource.grace_set = grace, True
            if doc.get("purgeFileTransferAfterAllRecipientsConfirmed") is not None:
                resource.purge_after_confirm = bool(
                    doc["purgeFileTransferAfterAllRecipientsConfirmed"])
            if doc.get("useManifestFileShim") is not None:
                resource.shim = bool(doc["useManifestFileShim"])
            if doc.get("externalServiceCodeLegacy") is not None:
                resource.service_code = str(doc["externalServiceCodeLegacy"])
            if doc.get("externalServiceEditionCodeLegacy") is not None:
                resource.service_edition = doc["externalServiceEditionCodeLegacy"]
            if doc.get("requiredParty") is not None:
                resource.required_party = broker.without_prefix(doc["requiredParty"]) or None
        return web.empty(204)

    def get(req):
        if req.method == "HEAD":
            return web.empty(405, [("Allow", "GET, PUT")])
        caller, resource = owned(req)
        if resource is None:
            raise _error(25)
        if caller != resource.service_owner:
            raise _error(6)
        with service.lock:
            return web.json_response({
                "maxFileTransferSize": resource.max_size,
                "fileTransferTimeToLive": timespan(resource.ttl) if resource.ttl_set else None,
                "purgeFileTransferAfterAllRecipientsConfirmed": resource.purge_after_confirm,
                "purgeFileTransferGracePeriod": (timespan(resource.grace)
                                                 if resource.grace_set else None),
                "useManifestFileShim": resource.shim,
                "externalServiceCodeLegacy": resource.service_code,
                "externalServiceEditionCodeLegacy": resource.service_edition,
                "requiredParty": resource.required_party})

    router.add("PUT", path, put)
    router.add("GET", path, get)
