"""OCR with the PP-OCR models (RapidOCR on CPU, PaddleOCR on GPU)."""
