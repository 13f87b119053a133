"""`serve(config)`: run the app under uvicorn, on loopback by default, with TLS and worker processes
when asked. With ``workers > 1`` each worker process loads the model and batches on its own; uvicorn
imports the app from :func:`app_from_env` with the config passed as JSON in ``FRUGAL_SERVE_CONFIG``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from fastapi import FastAPI

from frugalml._net import check_bind, check_free
from frugalml.serve._config import ServeConfig

__all__ = ["app_from_env", "serve"]

log = logging.getLogger(__name__)

_ENV = "FRUGAL_SERVE_CONFIG"


def app_from_env() -> FastAPI:
    """The app for the config in ``$FRUGAL_SERVE_CONFIG`` (uvicorn's factory for worker processes)."""
    from frugalml.compress.artifact import remove_decrypted
    from frugalml.serve._app import create_app

    return create_app(ServeConfig.model_validate_json(os.environ[_ENV]), on_shutdown=remove_decrypted)


def serve(config: ServeConfig, *, on_listen: Callable[[], None] | None = None) -> None:
    """Serve until interrupted (blocking); ``on_listen`` is called once the models are loaded, just before
    uvicorn starts listening."""
    import uvicorn

    from frugalml.compress.artifact import remove_decrypted
    from frugalml.serve._app import create_app

    config = config.checked()
    check_bind(config.host, config.port, what="frugal serve", exposes="query the model")
    if config.api_key_file is None and config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("no --api-key-file: anyone who can reach %s:%d can use the model", config.host, config.port)
    check_free(config.host, config.port)
    tls = {"ssl_certfile": str(config.ssl_certfile), "ssl_keyfile": str(config.ssl_keyfile)} if config.ssl_certfile else {}
    common = {"host": config.host, "port": config.port, "log_level": "warning", "timeout_keep_alive": 5, **tls}
    # Load everything before listening: a bad model or reference dataset is one error line (exit 2), not
    # uvicorn's start-up traceback. With workers, this process loads once to check, each worker for itself.
    app = create_app(config, on_shutdown=remove_decrypted)
    app.state.server.start()
    if on_listen is not None:
        on_listen()
    if config.workers > 1:
        del app
        remove_decrypted()  # this process only checked the model; each worker decrypts its own copy
        os.environ[_ENV] = config.model_dump_json()
        uvicorn.run("frugalml.serve._run:app_from_env", factory=True, workers=config.workers, **common)
    else:
        uvicorn.run(app, **common)
