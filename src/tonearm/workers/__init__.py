"""Background work: the job runner and its task registry."""
