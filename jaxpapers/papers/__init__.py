"""One package per paper; each registers its experiments in `<paper>/experiment.py`."""
