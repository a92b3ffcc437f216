"""What lockers publish, validated, stored and folded into derived state."""
