"""Organizations (tenants), their domains, and the keys that find a tenant from outside."""
