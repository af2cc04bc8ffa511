"""The QuantModel IR: a framework-free fixed-point network and its integer reference (the definition of correct)."""
