"""One place that turns every failure into the contract's JSON error shape."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from exchange.api.auth import is_vxp
from exchange.errors import DatabaseUnavailable, ExchangeError, InvalidInput
from exchange.logs import get_logger
from exchange.store.db import DATABASE_AWAY, DataError
from exchange.vxp.protocol import VxpFailure

log = get_logger(__name__)


def error_response(error: ExchangeError) -> web.Response:
    return web.json_response(error.as_dict(), status=error.status, headers=error.headers())


# The facade's ErrorCode for a failure, by its HTTP status.
VXP_CODES = {code: str(code) for code in (400, 401, 403, 404, 409, 410, 413, 422, 429, 503)}


def vxp_failure(error: ExchangeError) -> VxpFailure:
    """A native refusal said in VXP terms: the native code and message in ErrorDesc."""
    details = "; ".join(str(detail) for detail in error.details[:3])
    return VxpFailure(
        error.status,
        VXP_CODES.get(error.status, "500"),
        f"{error.code}: {error.message}" + (f" ({details})" if details else ""),
    )


@web.middleware
async def vxp_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Inside ``error_middleware``: failures of facade operations answered in VXP fields."""
    try:
        return await handler(request)
    except Exception as failure:
        if not is_vxp(request.match_info.route.handler):
            raise
        # Every answer of the facade carries status, ErrorCode and ErrorDesc, whatever failed.
        return _vxp_answer(request, failure)


def _vxp_answer(request: web.Request, failure: Exception) -> web.Response:
    if isinstance(failure, web.HTTPException) and failure.status < 400:
        raise failure
    headers: dict[str, str] = {}
    if isinstance(failure, VxpFailure):
        answer = failure
    elif isinstance(failure, ExchangeError):
        answer = vxp_failure(failure)
    elif isinstance(failure, DATABASE_AWAY):
        log.warning("request.database_away", method=request.method, path=request.path, error=repr(failure))
        answer = VxpFailure(503, "503", "the database is not reachable; try again shortly")
        headers["Retry-After"] = "2"
    elif isinstance(failure, DataError):
        log.info("request.data_error", method=request.method, path=request.path, error=str(failure))
        answer = vxp_failure(
            InvalidInput("a value in the request is out of range or cannot be stored; check its parameters")
        )
    elif isinstance(failure, web.HTTPException):
        answer = VxpFailure(failure.status, str(failure.status), failure.reason)
    else:
        log.exception("request.failed", method=request.method, path=request.path)
        answer = VxpFailure(500, "500", "the server failed; see its log")
    body = answer.body(with_doc_id=request.path.endswith("/sendEdoc"))
    return web.json_response(body, status=answer.http_status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ExchangeError as error:
        if request.path.startswith("/ui/") and error.status in (401, 403):
            return _login_page(request, error)
        return error_response(error)
    except VxpFailure as failure:
        return web.json_response(
            failure.body(with_doc_id=request.path.endswith("/sendEdoc")), status=failure.http_status
        )
    except DATABASE_AWAY as away:
        # PostgreSQL restarting or unreachable: nothing was acknowledged, so the caller may retry.
        log.warning("request.database_away", method=request.method, path=request.path, error=repr(away))
        away_error = DatabaseUnavailable("the database is not reachable; try again shortly")
        return web.json_response(away_error.as_dict(), status=503, headers={"Retry-After": "2"})
    except DataError as error:
        # Input that passed our checks but not PostgreSQL's (a NUL character, a number out of range):
        # the caller's fault. Say so in our words; the database's own text is for the log only.
        log.info("request.data_error", method=request.method, path=request.path, error=str(error))
        return error_response(
            InvalidInput("a value in the request is out of range or cannot be stored; check its parameters")
        )
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        # The contract names 413 "too_large"; other statuses keep aiohttp's reason as their code.
        code = "too_large" if http_error.status == 413 else http_error.reason.lower().replace(" ", "_")
        body = {"error": {"code": code, "message": http_error.reason, "details": []}}
        return web.json_response(body, status=http_error.status, headers=_kept_headers(http_error))
    except ConnectionError:
        # The client went away (or was cut off for a limit) mid-request: aiohttp closes quietly.
        raise
    except Exception:
        log.exception("request.failed", method=request.method, path=request.path)
        body = {
            "error": {"code": "internal_error", "message": "the server failed; see its log", "details": []}
        }
        return web.json_response(body, status=500)


def _login_page(request: web.Request, error: ExchangeError) -> web.Response:
    """People reach /ui/ in a browser: show the login form rather than JSON."""
    message = None if error.status == 401 and "required" in error.message else error.message
    return aiohttp_jinja2.render_template(
        "ui/login.html", request, {"message": message, "caller": None}, status=error.status
    )


def _kept_headers(http_error: web.HTTPException) -> dict[str, str]:
    # 405 must keep its Allow header; the rest of aiohttp's headers describe its plain-text body.
    allow = http_error.headers.get("Allow")
    return {"Allow": allow} if allow else {}
