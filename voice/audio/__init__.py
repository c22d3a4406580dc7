"""Audio stages of the voice pipeline: framing, resampling and turn detection."""
