"""The outside world: broker, broker security, database engine, SMS, webhooks, metrics, key files."""
