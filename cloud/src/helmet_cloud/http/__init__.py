"""The HTTP face: the JSON API and the HTML pages, both thin over the services."""
