"""The ASGI entry point: `uvicorn capsem_proxy.server:app`."""

from capsem_proxy.app import create_app

app = create_app()
