"""helmet_edge."""
