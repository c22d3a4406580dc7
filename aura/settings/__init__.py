"""Settings package: ``base`` is the deployment (everything from the environment), ``test`` tightens it for tests."""
