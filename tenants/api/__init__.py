"""The Mem0-platform-compatible REST API (mem0.MemoryClient works against it with host= changed)."""
