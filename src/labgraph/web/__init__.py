"""The web face of a release: SPARQL endpoint, Cool URIs, dumps, catalogue and pages."""
