"""Search a collection by its emotion stimuli: an index of stimulus regions (embedding + metadata),
queries by example and by emotion with cue filters, near-duplicate groups, result pages."""
