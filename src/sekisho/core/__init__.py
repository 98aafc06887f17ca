"""The domain: flows, one-time secrets, sessions, policy and audit. No web or storage imports."""
