"""Run tracking: plain files always, experiment trackers (W&B) when configured."""

from dl_core.tracking.files import FileTracker

__all__ = ["FileTracker"]
