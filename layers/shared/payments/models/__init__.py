"""Request and response models of both endpoints (pydantic v2)."""
