"""Model families built from the shared blocks in `layers`."""
