"""What a session tells its user: the terminal summary and the written reports."""
