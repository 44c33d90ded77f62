"""Versioned SQL migrations, one folder per dialect (``sqlite/``, ``mysql/``).

Each file is ``NNNN_name.sql`` with a ``-- migrate:up`` part and a
``-- migrate:down`` part; statements end with ``;`` at the end of a line.
See :mod:`persistence.migrate` for how they are applied.
"""
