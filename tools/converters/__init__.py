"""Converters behind tools/convert.py: ONNX import (onnx_import), torchvision state dicts
(torchvision), the graph vocabulary of issue 14 (graph) and shared helpers (common)."""
