"""VidP pipeline: subtitle burn-in and compression on AWS Step Functions, and on one machine."""

__version__ = "0.1.0"
"""The product's version (pyproject.toml's, checked by a test): the Lambda bundle has no package
metadata to read it from."""
