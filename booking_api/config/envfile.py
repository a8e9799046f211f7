"""Read the project's .env (if any) into os.environ without overriding real variables.

Every process reads it itself (settings, gunicorn's config, Flower's config), so that
`PORT=9000 make run` or a deployment's environment always wins over the file.
"""

from pathlib import Path

import environ

ENV_FILE = Path(__file__).resolve().parents[2] / ".env"


def load_env_file() -> None:
    if ENV_FILE.exists():
        environ.Env.read_env(ENV_FILE, overwrite=False)
