"""Every route of the application, in one place."""

from __future__ import annotations

from aiohttp import web

from exchange.api import bodies, documents, exchange, health, openapi, public, registry, reports, ui, vxp
from exchange.api.errors import error_response

# Package uploads refuse a declared length over the limit before 100 Continue.
_vxp_expect = {"sendEdoc": bodies.expect_package(vxp.send_edoc_refusal, vxp.SDK_TRAILER)}


def setup_health_routes(app: web.Application) -> None:
    """What every process serves, a worker-only one included."""
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)


def setup_routes(app: web.Application) -> None:
    setup_health_routes(app)

    app.router.add_get("/v1/openapi.json", openapi.openapi)
    app.router.add_post(
        "/v1/packages", exchange.submit_package, expect_handler=bodies.expect_package(error_response)
    )
    app.router.add_get("/v1/inbox", exchange.inbox)
    app.router.add_get("/v1/deliveries/{delivery_id}/package", exchange.download)
    app.router.add_post("/v1/deliveries/{delivery_id}/ack", exchange.acknowledge)
    app.router.add_get("/v1/messages/{message_id}", exchange.get_message)
    app.router.add_get("/v1/messages/{message_id}/trace", exchange.get_trace)
    app.router.add_get("/v1/messages/{message_id}/evidence", exchange.get_evidence)
    app.router.add_get("/v1/documents", documents.search_documents)
    app.router.add_get("/v1/reports/agencies", reports.agencies_report)

    app.router.add_get("/v1/agencies", registry.list_agencies)
    app.router.add_get("/v1/axis/certificate", registry.axis_certificate)

    app.router.add_get("/v1/admin/agencies", registry.admin_list_agencies)
    app.router.add_post("/v1/admin/agencies", registry.admin_add_agencies)
    app.router.add_get("/v1/admin/systems", registry.admin_list_systems)
    app.router.add_post("/v1/admin/systems", registry.admin_add_system)
    app.router.add_post("/v1/admin/systems/{name}/rotate-key", registry.admin_rotate_key)
    app.router.add_post("/v1/admin/systems/{name}/rotate-secret", registry.admin_rotate_secret)
    app.router.add_post("/v1/admin/systems/{name}/disable", registry.admin_disable_system)
    app.router.add_post("/v1/admin/systems/{name}/enable", registry.admin_enable_system)
    app.router.add_post("/v1/admin/agencies/{organ_id}/approve", registry.admin_approve_agency)
    app.router.add_post("/v1/admin/agencies/{organ_id}/disable", registry.admin_disable_agency)
    app.router.add_post("/v1/admin/agencies/{organ_id}/enable", registry.admin_enable_agency)
    app.router.add_get("/v1/admin/deliveries", documents.list_deliveries)
    for prefix in ("", "/vxp"):  # the SDK calls <endpoint>/<name>; either endpoint form works
        for name, handler in vxp.OPERATIONS.items():
            app.router.add_post(f"{prefix}/{name}", handler, expect_handler=_vxp_expect.get(name))
        app.router.add_get(f"{prefix}/downloadEdoc", vxp.download_edoc)
    app.router.add_get("/public/", public.progress_page)
    app.router.add_get("/public/progress.json", public.progress_json)
    app.router.add_get("/public/progress.csv", public.progress_csv)
    app.router.add_get("/ui/login", ui.login_form)
    app.router.add_post("/ui/login", ui.login)
    app.router.add_post("/ui/logout", ui.logout)
    app.router.add_get("/ui/", ui.search)
    app.router.add_get("/ui/documents/{message_id}", ui.document)
    app.router.add_get("/ui/documents/{message_id}/evidence", ui.evidence)
    app.router.add_get("/ui/operations", ui.operations)
    app.router.add_get("/ui/reports", ui.report)
    app.router.add_get("/ui/reports/export", ui.report_export)
    app.router.add_get("/ui/agencies/{organ_id}", ui.agency)
    app.router.add_post("/v1/admin/deliveries/requeue", documents.requeue)
