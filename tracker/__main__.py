from tracker.cli import entry

entry()
