"""RKNN-Toolkit2 example scripts ported to this compiler: only the import line changed."""
