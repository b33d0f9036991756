"""dynamo-iac: NVIDIA Dynamo serving graphs as code."""
__version__ = "0.1.0"
