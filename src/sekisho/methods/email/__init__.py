"""Email link + code sign-in."""
