"""The local embedding model: all-MiniLM-L6-v2 on onnxruntime, built from shipped weights."""
