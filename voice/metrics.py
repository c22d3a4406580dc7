"""The voice product's own Prometheus metrics (exposed with the rest at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Labels stay bounded: provider and model come from the router's candidates, capability is llm/stt/tts.
PROVIDER_REQUESTS = Counter(
    "aura_provider_requests_total",
    "Provider attempts by outcome (ok, skipped, or an error kind)",
    ["capability", "provider", "model", "outcome"],
)
PROVIDER_FIRST_TOKEN = Histogram(
    "aura_provider_first_token_seconds",
    "Time from a provider request to its first token, transcript or audio byte",
    ["capability", "provider", "model"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
ROUTER_FAILOVERS = Counter(
    "aura_router_failovers_total",
    "Calls served by a candidate other than the first one planned",
    ["capability"],
)

# Sessions and turns. In multiprocess mode (PROMETHEUS_MULTIPROC_DIR) the gauge sums live processes.
SESSIONS_ACTIVE = Gauge("aura_voice_sessions_active", "Voice sessions open right now", multiprocess_mode="livesum")
SESSIONS_TOTAL = Counter("aura_voice_sessions_total", "Voice sessions ended, by end reason", ["outcome"])
TURNS = Counter("aura_turns_total", "Turns stored, by role", ["role"])
TURN_STAGE = Histogram(
    "aura_turn_stage_seconds",
    "Per-turn latency by stage: endpoint_delay, stt, llm_first_token, tts_first_byte, first_audio, total",
    ["stage"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)
BARGE_INS = Counter("aura_barge_ins_total", "Replies interrupted by the visitor's speech")
VOICE_ERRORS = Counter("aura_voice_errors_total", "Error events sent to widgets, by code", ["code"])

# Semantic end of turn (voice.pipeline.turn_end): the rule tier's verdicts at pauses, and what became of each
# speculative transcript (used as the turn's transcript, dropped because the visitor spoke again, failed).
TURN_END_VERDICTS = Counter("aura_turn_end_verdicts_total", "Verdicts on the words at a pause", ["verdict"])
TURN_END_SPECULATIONS = Counter(
    "aura_turn_end_speculations_total", "Speculative transcripts taken at a pause, by outcome", ["outcome"]
)
# Replies started during a pause, before the turn ended (voice.parts.replies): started, released when the
# turn ended there, dropped when the visitor went on (their tokens are billed, nothing was sent).
PREEMPTIVE_REPLIES = Counter("aura_preemptive_replies_total", "Replies started before the turn ended", ["outcome"])

# Each visitor turn's emotion and intent (voice.understanding). Intents are tenant-named: counted by kind
# (a built-in tool's name, "configured" for the assistant's own, "none"), so the labels stay bounded.
VISITOR_EMOTIONS = Counter(
    "aura_visitor_turn_emotions_total", "Visitor turns by emotion and the tier that labelled them", ["emotion", "tier"]
)
VISITOR_INTENTS = Counter("aura_visitor_turn_intents_total", "Visitor turns by kind of intent", ["kind"])
UNDERSTANDING_MODEL_CALLS = Counter(
    "aura_understanding_model_calls_total", "Slow-tier (chat model) labelling of visitor turns, by outcome", ["outcome"]
)
