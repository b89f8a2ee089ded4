"""User-facing errors: a problem with the user's input (model, files, options), reported by
the command line as one line and exit code 2. Anything else escaping is a bug.

It lives in the bottom layer so that every layer can raise it (`dialects` imports nothing
of ours; `runtime` never imports `compiler`); `compiler.errors` re-exports it."""


class CompilerError(Exception):
    """Bad input. The message is one line, names the ONNX node or file concerned, and says
    what to do where there is something to do."""
