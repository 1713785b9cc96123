"""chatbackend: a FastAPI chat backend speaking the Microsoft AI Chat Protocol."""

from chatbackend.app import create_app
from chatbackend.settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
