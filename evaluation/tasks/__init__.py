"""lm-eval task files and their shared hooks (``utils.py``), generated from the benchmark registry."""
