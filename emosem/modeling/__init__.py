"""Model stage: SAM segmenter, emotion projector, prefix adapter, LoRA language model."""
