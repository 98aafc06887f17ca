"""Fixtures the admin tests share with the tier tests: the policy file with the
``standard``, ``high_value`` and ``moving`` tiers."""

from tests.integration.test_tiers import policy_file

__all__ = ["policy_file"]
