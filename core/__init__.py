"""The platform's infrastructure, below every app: settings helpers, database and Redis helpers,
encryption and signing, logging, outbound-address checks, rate limits, the admin sites and the REST
API's generic parts. It imports no app and nothing of ``aura`` (the composition root)."""
