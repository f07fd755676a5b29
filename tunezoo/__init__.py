"""tunezoo: tuning-record datasets and pretrained cost models for TVM MetaSchedule."""

__version__ = "0.1.0"
