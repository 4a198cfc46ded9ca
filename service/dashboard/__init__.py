"""The web dashboard: static HTML, CSS and vanilla JavaScript served at /dashboard, reading the v1 API."""
