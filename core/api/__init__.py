"""The REST API's framework: API-key authentication that enters the key's tenant, scopes, rate limits,
one error shape, cursor pages and the OpenAPI schema. Resources live in each domain app's ``api/``."""
