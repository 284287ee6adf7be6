"""Review topics (BERTopic on review sentences), their side-files, and the per-review vectors."""
