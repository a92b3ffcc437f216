"""helmet_cloud."""
