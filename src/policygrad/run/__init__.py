"""A run on disk: the training loop, checkpoints (safetensors + JSON), resuming, the logger, presets
and configs read back from files. Imports core, fast and algos."""
