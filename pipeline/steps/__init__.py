"""The Lambda steps: one module per state, each a thin ``handler`` -> logic -> adapters.

A handler's exceptions propagate: their class name is the Step Functions error name that Retry
and Catch match. This package imports nothing, so a Lambda loads only its own step's module;
``registry`` names them all for the CDK app and the local Lambda runtime.
"""
