"""The voice pipeline, stage by stage (design notes §3).

Visitor audio, per WebSocket frame, synchronously (microseconds each):
    AudioInput: resample to 16 kHz → reframe into 20 ms → VAD turn detection  (input.py)

A reply, per turn, as async stages joined by queues and cancelled together on interruption:
    speech-to-text → chat model → sentence aggregation → text-to-speech → paced audio out  (reply.py)

VoiceSession (voice/session.py) wires the two through its parts (voice/parts/): the turn part feeds
frames to AudioInput and answers turns; the replies part runs and interrupts ReplyPipelines.
"""
