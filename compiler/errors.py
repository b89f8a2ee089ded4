"""User-facing errors: a problem with the user's input (model, files, options), reported by
the command line as one line and exit code 2. Anything else escaping is a bug."""


class CompilerError(Exception):
    """Bad input. The message is one line, names the ONNX node or file concerned, and says
    what to do where there is something to do."""
