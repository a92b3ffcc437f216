"""helmet_sim."""
