"""Teacher, student, distillation loss, the training loop, checkpoints and the export to the QuantModel IR."""
