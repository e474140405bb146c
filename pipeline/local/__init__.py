"""The embedded local AWS: the real state machine on one machine (``pipeline.local.aws.LocalAws``).

Nothing is imported here: ``python -m pipeline.local.token_task`` (a container task) must not
pay for importing moto.
"""
