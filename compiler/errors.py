"""User-facing errors (see `dialects.errors`, where the class lives so that every layer can
raise it)."""

from dialects.errors import CompilerError

__all__ = ["CompilerError"]
