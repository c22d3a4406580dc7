"""The parts a voice session is wired from (voice/session.py), one job each.

A frame goes forward through them: transport → ``turns`` (audio input, speech detection, the visitor's
turn) → ``replies`` → transport. Beside that path: ``admission`` (flood and bad-input limits, the plan's
quota), ``heard`` (what the listener heard of each reply), ``memory`` (history, summaries, the visitor's
profile), ``understanding`` (emotion and intent of visitor turns), ``timers`` (idle and length limits,
ending or transferring once the last words are heard). No part imports the session: it hands them
callables.
"""
