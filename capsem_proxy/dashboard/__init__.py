"""The live dashboard at /dashboard: static files (plain HTML/JS/CSS, no build step) reading the
admin API, and the login cookie that lets a browser use it."""

from capsem_proxy.dashboard.assets import Asset, DashboardAssets
from capsem_proxy.dashboard.session import COOKIE_NAME, DashboardSessions

__all__ = ["COOKIE_NAME", "Asset", "DashboardAssets", "DashboardSessions"]
