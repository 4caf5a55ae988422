"""sendoff: the brain and the wiring. Nothing here imports slack_bolt or slack_sdk."""

__version__ = "0.1.0"
