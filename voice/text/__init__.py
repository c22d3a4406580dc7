"""Text stages of the voice pipeline: speakable pieces and what the visitor heard."""
