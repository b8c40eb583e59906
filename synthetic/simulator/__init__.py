"""The offline expert simulator: an OpenAI-compatible server that plays the three curation experts from the
synthetic world's ground truth (``python -m curation.simulator --port N``). It is the tiny profile's
endpoint and the test double for the expert client."""
