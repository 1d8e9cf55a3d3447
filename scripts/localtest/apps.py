"""App API (`/{org}/{app}/...`): what each deployed app serves on its own host.

The local platform serves every app on one host, so the app is picked from the first two path
segments. Only the anonymous metadata read is here today; instance creation, data upload and
process/next (altinn-api.md §3) are to be registered from this module too, using
`find_app` for the 404 an unknown app gives.
"""

from . import web


def find_app(store, req):
    app = store.app("%s/%s" % (req.params["org"], req.params["app"]))
    if app is None:
        raise web.HttpError(web.empty(404))
    return app


def register(router, platform):
    store = platform.store

    def application_metadata(req):
        return web.json_response(find_app(store, req).to_json())

    router.add("GET", "/{org}/{app}/api/v1/applicationmetadata", application_metadata,
               auth=False)
