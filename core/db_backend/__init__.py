"""django-tenants' PostgreSQL backend with django-prometheus' query metrics."""
