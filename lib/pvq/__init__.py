"""pvq: the library behind the course *Pruning vs Quantization: Which is Better?*.

Kuzmin, Nagel, van Baalen, Behboodi, Blankevoort, NeurIPS 2023 (arXiv 2307.02973).
Each module holds one idea; notebooks import them and explain them.
"""

__version__ = "0.1.0"
