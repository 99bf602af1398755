"""The ASGI entry point uvicorn imports: `tonearm.http.asgi:app`. Built on import by design
(each uvicorn worker process builds its own container); nothing else imports this module."""

from tonearm import logs
from tonearm.bootstrap import bootstrap
from tonearm.config import Settings
from tonearm.http.app import create_app

_settings = Settings()
logs.configure(json=_settings.log_json, level=_settings.log_level)
app = create_app(bootstrap(_settings))
