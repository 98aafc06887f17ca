"""HTTP: pages and the JSON API, both thin translations onto :mod:`sekisho.service`."""
