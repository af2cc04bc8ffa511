"""Datasets: one module per family. Cells: LymphoMNIST IDX files, a built-in synthetic generator and
bring-your-own folders / .npz files, all turned into one `CellData` split (see `cells.py`)."""
