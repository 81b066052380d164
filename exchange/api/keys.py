"""Typed keys for what the application and each request carry."""

from __future__ import annotations

import asyncio

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from exchange.alerts import Alerter
from exchange.delivery import DeliveryWorker
from exchange.intake import Intake
from exchange.metrics import Metrics
from exchange.model import System
from exchange.settings import Settings
from exchange.store.db import Pool
from exchange.trust.signing import Signer
from exchange.ui_sessions import LoginThrottle

SETTINGS = web.AppKey("settings", Settings)
DATABASE_URL = web.AppKey("database_url", str)
POOL = web.AppKey("pool", Pool)
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
SIGNER = web.AppKey("signer", Signer)
# Held by the one evidence request of the process that waits for the background sealer.
SEALER_WAITER = web.AppKey("sealer_waiter", asyncio.Lock)
INTAKE = web.AppKey("intake", Intake)
WORKER = web.AppKey("worker", DeliveryWorker)
METRICS = web.AppKey("metrics", Metrics)
ALERTER = web.AppKey("alerter", Alerter)

LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)

CALLER = web.RequestKey("caller", System)
VXP_PARAMS = web.RequestKey("vxp_params", dict)
