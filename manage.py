#!/usr/bin/env python
"""Django's command-line utility. In a checkout it works like `make run`: development settings and the
embedded PostgreSQL/Redis under .data/dev (see aura/development.py); AURA_ENV=production (the Docker
image) uses only what the environment configures."""

import sys

if __name__ == "__main__":
    from aura.development import use_development_environment

    use_development_environment()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
