"""Per-sample processing: the framework that runs one processor per sample, and the processors."""
