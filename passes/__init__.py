"""Passes over the IR, one `ModulePass` per module, registered by name in `registry`."""
