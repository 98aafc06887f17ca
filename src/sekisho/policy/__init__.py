"""Assurance policy: the AAL of every proof, the tiers file, and what a tier admits
(ARCHITECTURE.md "Layout as it grows"). Nothing here imports web or storage code."""
