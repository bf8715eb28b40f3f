"""recstore: keeps meeting recordings moving between S3, DRACOON, Kaltura and VidyoReplay."""

__version__ = "0.1.0"
