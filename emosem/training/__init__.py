"""Training stage: Accelerate loop, atomic checkpoints, exact resume."""
