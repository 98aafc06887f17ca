"""Sign-in methods. Each advances a flow and reports a proof; none creates a session."""
