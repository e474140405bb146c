"""The AWS deployment (CDK): one construct per capability, composed by ``stack.VidpStack``."""
